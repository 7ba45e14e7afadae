/** A tab's view in the address (#/projects/{id}/{tab}?name=value...), so that a reload or a shared link opens the
 * same view. */

/** Write `values` (empty ones left out) into the address without a navigation: changing a filter is not a step
 * the Back button should undo, and the page is already showing it. */
export function rememberView(ctx, tab, values) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value) query.set(name, value);
  const text = query.toString();
  history.replaceState(null, '', `#/projects/${ctx.project.id}/${tab}${text ? `?${text}` : ''}`);
}

/** Choose `wanted` in `select` when it is one of its options (a link can name an iteration since deleted). */
export function chooseLinked(select, wanted) {
  if (wanted && [...select.options].some((option) => option.value === wanted)) select.value = wanted;
}
