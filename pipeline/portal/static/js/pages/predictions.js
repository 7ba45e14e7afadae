/** Predictions: images sent to the prediction endpoints (and Quick Test), newest first; tag them into the
 * training set or delete them. */

import { api, ApiError, chunks } from '../api.js';
import { chooseLinked, rememberView } from '../deep-link.js';
import { confirmDialog, errorBox, openDialog } from '../dialog.js';
import { field, h, percent } from '../dom.js';
import { iterationSelect } from '../iteration-select.js';
import { predictionView, unknownCaption } from '../prediction-view.js';
import { announce } from '../status.js';
import { tagPicker } from '../tag-picker.js';
import { imageTile, selectionBar } from '../tiles.js';

const PAGE = 48;
const SUGGEST_AT = 0.5;

const top = (stored) => [...stored.predictions].sort((a, b) => b.probability - a.probability)[0];

/** Open one stored prediction; the tags chosen (the suggestions pre-selected) add it to the training set. */
function openStored(ctx, stored, done) {
  const suggested = stored.predictions.filter((p) => p.probability >= SUGGEST_AT);
  const picker = tagPicker(ctx, { legend: 'Tag this image', selected: suggested.map((p) => p.tagId) });
  const errors = errorBox();
  const save = h('button', { type: 'button', class: 'button primary' }, 'Add to training set');
  const dialog = openDialog({
    title: 'Image detail',
    wide: true,
    content: h('div', { class: 'image-detail' },
      predictionView({ src: stored.resizedImageUri, predictions: stored.predictions, detection: ctx.detection, threshold: SUGGEST_AT, unknown: stored.unknown }),
      h('div', {}, picker.element, errors.element, h('div', { class: 'dialog-actions' }, save))),
  });
  save.addEventListener('click', async () => {
    errors.clear();
    const tagIds = picker.selectedIds();
    const regions = ctx.detection
      ? suggested.filter((p) => p.boundingBox && tagIds.includes(p.tagId)).map((p) => ({ tagId: p.tagId, ...p.boundingBox }))
      : undefined;
    try {
      const summary = await api.post(`${ctx.base}/images/predictions`, {
        json: { images: [ctx.detection ? { id: stored.id, regions } : { id: stored.id, tagIds }] },
      });
      const status = summary.images[0]?.status;
      if (status !== 'OK' && status !== 'OKDuplicate') throw new ApiError(200, status, 'The image was not added.');
      announce('Added to the training set.');
      dialog.close();
      await done();
    } catch (error) {
      errors.show(error);
    }
  });
}

export async function renderPredictions(panel, ctx, params, signal) {
  const iterations = await iterationSelect(ctx, { includeAll: true });
  if (signal.aborted) return;
  const tagFilter = h('select', {}, h('option', { value: '' }, 'Any tag'), ctx.tags.map((t) => h('option', { value: t.id }, t.name)));
  // The filter lives in the address: #/projects/{id}/predictions?iteration={id}&tag={id}.
  chooseLinked(iterations.select, params.get('iteration'));
  chooseLinked(tagFilter, params.get('tag'));
  const rememberFilter = () => rememberView(ctx, 'predictions', { iteration: iterations.select.value, tag: tagFilter.value });
  const selection = new Set();
  let results = [];
  let token = null;
  const grid = h('ul', { class: 'image-grid', 'aria-label': 'Predictions' });
  const more = h('button', { type: 'button', class: 'button', hidden: true }, 'Load more');
  const remove = h('button', { type: 'button', class: 'button danger-text', disabled: true }, 'Delete');
  const bar = selectionBar(selection, () => results.map((r) => r.id), () => render());

  function render() {
    grid.replaceChildren(...results.map((stored) => {
      const best = top(stored);
      const caption = unknownCaption(stored.unknown) || (best ? `${best.tagName} ${percent(best.probability)}` : 'No prediction');
      return imageTile({
        id: stored.id,
        src: stored.thumbnailUri,
        label: `prediction ${caption}`,
        caption,
        selection,
        onSelectionChange: updateSelection,
        onOpen: () => openStored(ctx, stored, () => load(false)),
      });
    }));
    if (!results.length) grid.append(h('li', { class: 'empty' }, 'No predictions yet. Images sent to a published iteration or to Quick Test appear here.'));
    updateSelection();
  }

  function updateSelection() {
    bar.update();
    remove.disabled = selection.size === 0;
  }

  async function load(append) {
    const query = append ? token : {
      maxCount: PAGE,
      orderBy: 'Newest',
      iterationId: iterations.select.value || undefined,
      tags: tagFilter.value ? [{ id: tagFilter.value, minThreshold: SUGGEST_AT, maxThreshold: 1 }] : [],
    };
    const page = await api.post(`${ctx.base}/predictions/query`, { json: query });
    if (signal.aborted) return;
    results = append ? results.concat(page.results) : page.results;
    token = page.token;
    if (!append) selection.clear();
    more.hidden = !token?.continuation;
    render();
  }

  for (const filter of [iterations.select, tagFilter]) {
    filter.addEventListener('change', () => {
      rememberFilter();
      load(false);
    });
  }
  more.addEventListener('click', () => load(true));
  remove.addEventListener('click', () => confirmDialog({
    title: 'Delete predictions',
    message: `Delete ${selection.size} stored prediction${selection.size === 1 ? '' : 's'}?`,
    confirmLabel: 'Delete',
    action: async () => {
      for (const batch of chunks([...selection], 64)) await api.del(`${ctx.base}/predictions`, { ids: batch });
      announce('Predictions deleted.');
      await load(false);
    },
  }));

  panel.replaceChildren(h('div', { class: 'workspace' },
    h('aside', { class: 'side-panel', 'aria-labelledby': 'prediction-filters' },
      h('h2', { id: 'prediction-filters' }, 'Filter'), iterations.element,
      field(`Tag (probability ≥ ${percent(SUGGEST_AT)})`, tagFilter)),
    h('div', { class: 'main-panel' },
      h('div', { class: 'toolbar' }, h('h2', { tabindex: '-1', class: 'visually-hidden' }, 'Predictions'), remove, bar.element),
      h('p', { class: 'hint' }, 'Choose an image to check the prediction and add it to the training set with the right tags.'),
      grid, more)));
  await load(false);
}
