/** Selectable image tiles for the image grids (training images, stored predictions). */

import { h } from './dom.js';

/**
 * One tile: the picture opens the item, the checkbox selects it.
 * `selection` is a Set of ids shared by the grid; `onSelectionChange` runs after each toggle. `overlay`: elements
 * drawn over the picture (boxes), decorative.
 */
export function imageTile({ id, src, label, caption, wrong = false, selection, onSelectionChange, onOpen, overlay }) {
  const check = h('input', { type: 'checkbox', checked: selection?.has(id), 'aria-label': `Select ${label}` });
  check.addEventListener('change', () => {
    if (check.checked) selection.add(id);
    else selection.delete(id);
    tile.classList.toggle('selected', check.checked);
    onSelectionChange?.();
  });
  const open = h('button', { type: 'button', class: 'tile-open', 'aria-label': `Open ${label}` },
    h('img', { src, alt: '', loading: 'lazy' }), overlay);
  open.addEventListener('click', onOpen);
  const tile = h(
    'li',
    { class: `tile${selection?.has(id) ? ' selected' : ''}${wrong ? ' wrong' : ''}` },
    open,
    selection ? h('span', { class: 'tile-check' }, check) : null,
    caption ? h('span', { class: 'tile-caption' }, caption) : null,
  );
  return tile;
}

/** A toolbar line saying how many items are selected, with Select all / Clear. `loadAll()`, where given, loads the
 * pages not shown yet before Select all takes every id. */
export function selectionBar(selection, allIds, onChange, loadAll) {
  const count = h('span', { class: 'selection-count', 'aria-live': 'polite' });
  const all = h('button', { type: 'button', class: 'button small' }, 'Select all');
  const none = h('button', { type: 'button', class: 'button small' }, 'Clear selection');
  all.addEventListener('click', async () => {
    await loadAll?.();
    allIds().forEach((id) => selection.add(id));
    onChange();
  });
  none.addEventListener('click', () => {
    selection.clear();
    onChange();
  });
  const update = () => {
    count.textContent = selection.size ? `${selection.size} selected` : '';
    none.hidden = selection.size === 0;
    all.hidden = allIds().length === 0;
  };
  update();
  return { element: h('div', { class: 'selection-bar' }, all, none, count), update };
}
