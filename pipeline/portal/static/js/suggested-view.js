/** The untagged view's suggestions: choose a trained iteration, have it suggest tags (a detector: regions) for the
 * untagged images shown, see each image's suggestion, narrow them by tag and threshold, and confirm them in bulk
 * or one by one. Confirmed images are tagged, so they leave the untagged view. The suggestions are the API's,
 * stored per iteration: coming back shows them again without asking the model. */

import { confirmSuggestions } from './confirm-suggestions.js';
import { errorBox, openDialog } from './dialog.js';
import { debounce, field, h, percent, placeBox, slider, uid } from './dom.js';
import { iterationSelect } from './iteration-select.js';
import { predictionView } from './prediction-view.js';
import { announce } from './status.js';
import {
  countSuggested, nextSuggested, querySuggested, requestSuggestions, suggestedLabels,
} from './suggestions.js';
import { imageTile, selectionBar } from './tiles.js';

const PAGE = 60;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A box normalised to the picture, moved onto its square tile (the picture centre-cropped: object-fit cover). */
function onTile(box, width, height) {
  const side = Math.min(width, height);
  const sx = width / side;
  const sy = height / side;
  return { left: (box.left - 0.5) * sx + 0.5, top: (box.top - 0.5) * sy + 0.5, width: box.width * sx, height: box.height * sy };
}

function tileBoxes(suggestion, labels) {
  return labels.map((label) => {
    const el = h('span', { class: 'tile-box', 'aria-hidden': 'true' });
    placeBox(el, onTile(label.boundingBox, suggestion.width, suggestion.height));
    return el;
  });
}

function describe(ctx, labels) {
  if (ctx.detection) return `${plural(labels.length, 'region')}: ${[...new Set(labels.map((l) => l.tagName))].join(', ')}`;
  return labels.map((l) => `${l.tagName} ${percent(l.probability)}`).join(', ');
}

function failureReport(failed, total) {
  return [
    h('p', {}, h('strong', {}, `${failed.size} of ${plural(total, 'image')} not confirmed`),
      ' (the others were). Those still listed stay selected, to try again.'),
    h('ul', { class: 'failed-list' }, [...failed].map(([id, error]) =>
      h('li', {}, `Image ${id}: `, h('strong', {}, error.code), `: ${error.message}`))),
  ];
}

/**
 * The panel, hidden until `open()` (the Untagged filter chosen). `shownIds()`: the untagged images the page has
 * loaded; `onActive(active)` runs when the suggestions take the place of the plain image list or give it back;
 * `onConfirmed()` after images were tagged.
 */
export function suggestionsPanel(ctx, { shownIds, onActive, onConfirmed, signal }) {
  const state = {
    open: false, active: false, any: false, tagIds: new Set(), threshold: 0.5, labelFirst: true, results: [], token: null,
  };
  let select = null;
  let generation = 0;
  let busy = false;
  const selection = new Set();
  const headingId = uid('suggestions');
  const iterationBox = h('div', { class: 'suggest-iteration' });
  const get = h('button', { type: 'button', class: 'button primary' }, 'Get suggestions');
  const toggle = h('button', { type: 'button', class: 'button', hidden: true });
  const progress = h('p', { class: 'hint', role: 'status' });
  const errors = errorBox();
  const report = h('div', { class: 'error-box', role: 'alert', hidden: true });
  const tagChoices = h('div', { class: 'tag-choices' });
  const counts = new Map();
  const threshold = slider('Suggestion threshold', state.threshold, debounce((value) => {
    state.threshold = value;
    reload();
  }, 250));
  const order = h('select', {},
    h('option', { value: 'first', selected: true }, 'Label these first'),
    h('option', { value: 'uncertain' }, 'Most uncertain first'));
  order.addEventListener('change', () => {
    state.labelFirst = order.value === 'first';
    reload();
  });
  const confirm = h('button', { type: 'button', class: 'button primary', disabled: true }, 'Confirm suggestions');
  const bar = selectionBar(selection, () => state.results.map((s) => s.id), () => renderGrid(), loadRest);
  const summary = h('p', { class: 'grid-summary', 'aria-live': 'polite' });
  const grid = h('ul', { class: 'image-grid suggested', 'aria-label': 'Suggested images' });
  const more = h('button', { type: 'button', class: 'button', hidden: true }, 'Load more');
  const filters = h('div', { class: 'suggest-filters', hidden: true },
    h('fieldset', {}, h('legend', {}, 'Suggested tag (none chosen: any)'), tagChoices), threshold,
    field('Order', order, 'Label these first: images typical of many others and unlike those listed before them, '
      + 'which teach the model most in the first rounds of labelling.'));
  const results = h('div', { hidden: true },
    h('div', { class: 'toolbar' }, confirm, bar.element), report, summary, grid, more);
  const element = h('div', { hidden: true },
    h('section', { class: 'suggestions', 'aria-labelledby': headingId },
      h('div', { class: 'suggest-head' }, h('h3', { id: headingId }, 'Suggested tags'), iterationBox, get, toggle),
      progress, errors.element, filters),
    results);

  const filter = () => ({ tagIds: [...state.tagIds], threshold: state.threshold, labelFirst: state.labelFirst });
  const iterationName = () => select.selectedOptions[0]?.textContent || '';

  function setBusy(value) {
    busy = value;
    get.disabled = value || !select?.value;
    updateSelection();
  }

  function setActive(active) {
    state.active = active;
    filters.hidden = results.hidden = !active;
    toggle.hidden = !state.any;
    toggle.textContent = active ? 'Show all untagged' : 'Show suggestions';
    onActive(active);
  }

  function updateSelection() {
    bar.update();
    confirm.disabled = busy || selection.size === 0;
  }

  function renderGrid() {
    const chosen = filter();
    grid.replaceChildren(...state.results.map((suggestion, index) => {
      const labels = suggestedLabels(ctx, suggestion, chosen);
      const caption = describe(ctx, labels);
      return imageTile({
        id: suggestion.id,
        src: suggestion.thumbnailUri,
        label: `suggested image ${index + 1} (${caption})`,
        caption,
        selection,
        onSelectionChange: updateSelection,
        onOpen: () => openSuggestion(suggestion),
        overlay: ctx.detection ? tileBoxes(suggestion, labels) : null,
      });
    }));
    if (!state.results.length) {
      grid.append(h('li', { class: 'empty' },
        `No untagged image has a suggestion${state.tagIds.size ? ' of the chosen tags' : ''} at or above ${percent(state.threshold)}.`));
    }
    more.hidden = !state.token?.continuation;
    summary.textContent = `Showing ${plural(state.results.length, 'suggested image')}${more.hidden ? '' : ' (more to load)'}`;
    updateSelection();
  }

  /** The tag checkboxes, built once per iteration so the focus stays on them while their counts change. */
  function buildTagChoices() {
    counts.clear();
    tagChoices.replaceChildren(...ctx.tags.map((tag) => {
      const id = uid('suggested-tag');
      const box = h('input', { type: 'checkbox', id, checked: state.tagIds.has(tag.id) });
      box.addEventListener('change', () => {
        if (box.checked) state.tagIds.add(tag.id);
        else state.tagIds.delete(tag.id);
        reload();
      });
      const count = h('span', { class: 'count' });
      counts.set(tag.id, count);
      return h('div', { class: 'checkbox' }, box, h('label', { for: id }, `${tag.name} `, count));
    }));
  }

  /** The counts per tag and the first page for the current iteration, tags and threshold. */
  async function reload() {
    const mine = ++generation;
    errors.clear();
    try {
      const [perTag, page] = await Promise.all([
        countSuggested(ctx, select.value, state.threshold),
        querySuggested(ctx, select.value, filter(), PAGE),
      ]);
      if (signal.aborted || mine !== generation) return;
      for (const [tagId, count] of counts) count.textContent = `(${perTag[tagId] ?? 0})`;
      state.results = page.results;
      state.token = page.token;
      selection.clear();
      renderGrid();
    } catch (error) {
      if (!signal.aborted) errors.show(error);
    }
  }

  /** The next page; false when it could not be read (the error is shown). */
  async function loadMore() {
    const mine = generation;
    try {
      const page = await nextSuggested(ctx, select.value, state.token);
      if (signal.aborted || mine !== generation) return false;
      state.results = state.results.concat(page.results);
      state.token = page.token;
      renderGrid();
      return true;
    } catch (error) {
      errors.show(error);
      return false;
    }
  }

  /** Every page of the filtered set, for Select all. */
  async function loadRest() {
    while (state.token?.continuation && (await loadMore()));
  }

  /** Show the iteration's stored suggestions if it has any for untagged images, else the plain list. */
  async function probe() {
    const mine = ++generation;
    errors.clear();
    buildTagChoices();
    try {
      const any = Object.values(await countSuggested(ctx, select.value, 0)).some((n) => n > 0);
      if (signal.aborted || mine !== generation || !state.open) return;
      state.any = any;
      progress.textContent = any ? ''
        : `${iterationName()} has suggested nothing for the untagged images yet: “Get suggestions” asks it.`;
      setActive(any);
      if (any) await reload();
    } catch (error) {
      if (!signal.aborted) errors.show(error);
    }
  }

  /** Confirm these suggestions as the filter stands; returns the Map of failed image ids to their error. */
  async function confirmThese(chosen) {
    const rule = filter();
    const plans = chosen.map((suggestion) => ({ imageId: suggestion.id, labels: suggestedLabels(ctx, suggestion, rule) }));
    setBusy(true);
    try {
      const { confirmed, failed } = await confirmSuggestions(ctx, plans, (done) => {
        progress.textContent = `Confirming: ${done} of ${plural(plans.length, 'image')}…`;
      });
      const message = `Confirmed ${plural(confirmed.length, 'image')}${failed.size ? `; ${failed.size} failed` : ''}.`;
      progress.textContent = message;
      announce(message);
      try {
        await onConfirmed();
      } catch (error) {
        errors.show(error);
      }
      await reload();
      for (const suggestion of state.results) if (failed.has(suggestion.id)) selection.add(suggestion.id);
      renderGrid();
      return failed;
    } finally {
      setBusy(false);
    }
  }

  function openSuggestion(suggestion) {
    const labels = suggestedLabels(ctx, suggestion, filter());
    const problem = errorBox();
    const ok = h('button', { type: 'button', class: 'button primary', disabled: !labels.length }, 'Confirm suggestion');
    const what = ctx.detection
      ? `Confirming adds ${plural(labels.length, 'region')} (probability ≥ ${percent(state.threshold)}).`
      : `Confirming tags the image ${labels.map((l) => l.tagName).join(', ')}.`;
    const dialog = openDialog({
      title: 'Suggested tags',
      wide: true,
      content: h('div', {},
        predictionView({
          src: suggestion.resizedImageUri,
          alt: 'Suggested image',
          predictions: ctx.detection ? labels : suggestion.predictions,
          detection: ctx.detection,
          threshold: state.threshold,
        }),
        h('p', {}, labels.length ? what : 'Nothing is suggested at or above the threshold.'),
        problem.element,
        h('div', { class: 'dialog-actions' }, ok)),
    });
    ok.addEventListener('click', async () => {
      problem.clear();
      ok.disabled = true;
      const failed = await confirmThese([suggestion]);
      if (failed.size) {
        problem.show(failed.get(suggestion.id));
        ok.disabled = false;
      } else {
        dialog.close();
      }
    });
  }

  get.addEventListener('click', async () => {
    const ids = shownIds();
    errors.clear();
    if (!ids.length) {
      progress.textContent = 'There are no untagged images to suggest tags for.';
      return;
    }
    setBusy(true);
    try {
      await requestSuggestions(ctx, select.value, ids, (done) => {
        progress.textContent = `Getting suggestions: ${done} of ${plural(ids.length, 'image')}…`;
      });
      if (signal.aborted || !state.open) return;
      progress.textContent = `${iterationName()} suggested tags for ${plural(ids.length, 'image')}.`;
      state.any = true;
      setActive(true);
      await reload();
    } catch (error) {
      errors.show(error);
    } finally {
      setBusy(false);
    }
  });
  toggle.addEventListener('click', () => {
    setActive(!state.active);
    if (state.active) reload();
  });
  more.addEventListener('click', loadMore);
  confirm.addEventListener('click', async () => {
    report.hidden = true;
    const chosen = state.results.filter((s) => selection.has(s.id));
    const failed = await confirmThese(chosen);
    if (failed.size) {
      report.replaceChildren(...failureReport(failed, chosen.length));
      report.hidden = false;
    }
  });

  return {
    element,
    /** Show the panel with the trained iterations (newest Completed first) and the chosen one's suggestions. */
    async open() {
      state.open = true;
      element.hidden = false;
      try {
        const iterations = await iterationSelect(ctx);
        if (signal.aborted || !state.open) return;
        select = iterations.select;
        select.addEventListener('change', probe);
        iterationBox.replaceChildren(iterations.element);
        iterationBox.hidden = get.hidden = !iterations.iterations.length;
        setBusy(false);
        if (iterations.iterations.length) return await probe();
        progress.textContent = 'Train an iteration to get suggested tags for the untagged images.';
        state.any = false;
        setActive(false);
      } catch (error) {
        if (!signal.aborted) errors.show(error);
      }
    },
    close() {
      state.open = false;
      generation += 1;
      element.hidden = true;
      if (state.active) setActive(false);
    },
  };
}
