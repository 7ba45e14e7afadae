/** Training Images: the tag panel (filters with image counts, tagging status), the image grid with selection,
 * upload, tagging and deleting. */

import { api, chunks } from '../api.js';
import { rememberView } from '../deep-link.js';
import { confirmDialog, errorBox, openDialog } from '../dialog.js';
import { h, uid } from '../dom.js';
import { openImageDialog } from '../image-dialog.js';
import { trainedTagCounts } from '../iteration-results.js';
import { iterationSelect } from '../iteration-select.js';
import { announce } from '../status.js';
import { suggestionsPanel } from '../suggested-view.js';
import { tagPicker } from '../tag-picker.js';
import { imageTile, selectionBar } from '../tiles.js';
import { openUploadDialog } from '../upload.js';

const PAGE = 60;
// A status is the taggingStatus GetImages takes, or SEVERAL: Seer's multipleTags, the images a Multiclass project
// cannot train on (offered there only, and only while there are some).
const SEVERAL = 'MultipleTags';
const STATUSES = [['All', 'All'], ['Tagged', 'Tagged'], ['Untagged', 'Untagged'], [SEVERAL, 'Two tags or more']];
const statusQuery = (status) => (status === SEVERAL ? { taggingStatus: 'All', multipleTags: true } : { taggingStatus: status });

/** Add or remove tags on the selected images (POST / DELETE images/tags). */
function openTagSelected(ctx, ids, done) {
  const picker = tagPicker(ctx, { legend: `Tags for ${ids.length} selected image${ids.length === 1 ? '' : 's'}` });
  const errors = errorBox();
  const add = h('button', { type: 'button', class: 'button primary' }, 'Add to images');
  const remove = h('button', { type: 'button', class: 'button' }, 'Remove from images');
  const dialog = openDialog({
    title: 'Tag images',
    content: h('div', {}, picker.element, errors.element, h('div', { class: 'dialog-actions' }, remove, add)),
  });
  const run = async (action, verb) => {
    errors.clear();
    const tagIds = picker.selectedIds();
    if (!tagIds.length) return errors.show({ message: 'Choose at least one tag.' });
    try {
      await action(tagIds);
      announce(`${verb} ${tagIds.length} tag${tagIds.length === 1 ? '' : 's'} on ${ids.length} images.`);
      dialog.close();
      await done();
    } catch (error) {
      errors.show(error);
    }
  };
  add.addEventListener('click', () => run(async (tagIds) => {
    const pairs = ids.flatMap((imageId) => tagIds.map((tagId) => ({ imageId, tagId })));
    for (const batch of chunks(pairs, 64)) await api.post(`${ctx.base}/images/tags`, { json: { tags: batch } });
  }, 'Added'));
  remove.addEventListener('click', () => run(async (tagIds) => {
    for (const batch of chunks(ids, 64)) await api.del(`${ctx.base}/images/tags`, { imageIds: batch, tagIds });
  }, 'Removed'));
}

export async function renderImages(panel, ctx, params, signal) {
  // The filter lives in the URL (#/projects/{id}/images?status=Untagged&tags=id,id&iteration=id), so a refresh or
  // a shared link opens the same view.
  const linkedStatus = params.get('status');
  const state = {
    status: STATUSES.some(([value]) => value === linkedStatus) ? linkedStatus : 'All',
    tagIds: new Set((params.get('tags') || '').split(',').filter(Boolean)),
    iterationId: params.get('iteration') || '', // '': today's images; else the images that iteration trained on
    images: [],
    more: false,
  };
  // The iteration choice loads after the first images and counts are asked for (a browser opens six connections to
  // a server, and the images are what the page is for), unless the link names an iteration: that one is checked
  // first (one since deleted falls back to today's images).
  const iterationSlot = h('div');
  const loadIterations = () => iterationSelect(ctx, { label: 'Images of', includeAll: true, allLabel: 'Today’s training set' })
    .then((iterations) => {
      if (signal.aborted) return;
      iterations.select.value = state.iterationId;
      state.iterationId = iterations.select.value;
      iterations.element.hidden = !iterations.iterations.length;
      iterations.select.addEventListener('change', () => {
        state.iterationId = iterations.select.value;
        filterChanged();
        refresh();
      });
      iterationSlot.replaceChildren(iterations.element);
    });
  const linked = Boolean(state.iterationId);
  if (linked) await loadIterations();
  if (signal.aborted) return;
  const rememberFilter = () => rememberView(ctx, 'images', {
    status: state.status === 'All' ? '' : state.status,
    tags: [...state.tagIds].join(','),
    iteration: state.iterationId,
  });
  const oneTagEach = !ctx.multilabel && !ctx.detection; // a Multiclass project: an image with two tags cannot train
  let latestLoad = 0; // loadImages' calls, numbered: only the newest sets the list
  let latestTags = 0; // renderTags' calls, likewise
  const selection = new Set();
  const counts = h('div', { class: 'status-toggle', role: 'group', 'aria-label': 'Tagging status' });
  const tagList = h('ul', { class: 'tag-list' });
  const grid = h('ul', { class: 'image-grid', 'aria-label': 'Training images' });
  const summary = h('p', { class: 'grid-summary', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'button', hidden: true }, 'Load more');
  const addImages = h('button', { type: 'button', class: 'button primary' }, '+ Add images');
  const tagSelected = h('button', { type: 'button', class: 'button', disabled: true }, 'Tag images');
  const deleteSelected = h('button', { type: 'button', class: 'button danger-text', disabled: true }, 'Delete');
  const bar = selectionBar(selection, () => state.images.map((i) => i.id), () => renderGrid());
  const plainActions = h('span', { class: 'toolbar-group' }, tagSelected, deleteSelected, bar.element);
  const plainList = h('div', {}, summary, grid, more);
  const suggestions = suggestionsPanel(ctx, {
    shownIds: () => state.images.map((i) => i.id),
    onActive: (active) => {
      plainActions.hidden = plainList.hidden = active;
    },
    onConfirmed: refresh,
    signal,
  });

  const caption = (image) => (ctx.detection
    ? `${image.regions.length} region${image.regions.length === 1 ? '' : 's'}`
    : image.tags.map((t) => t.tagName).join(', ') || 'Untagged');

  /** An empty grid under a filter says so, rather than suggesting the project has no images. */
  function emptyText() {
    if (state.status === 'All' && !state.tagIds.size && !state.iterationId) {
      return 'No images here yet. Use “Add images” or drop files on this page.';
    }
    const tags = ctx.tags.filter((t) => state.tagIds.has(t.id)).map((t) => t.name);
    const what = { All: 'images', [SEVERAL]: 'images with two tags or more' }[state.status] ?? `${state.status.toLowerCase()} images`;
    return `No ${what}${tags.length ? ` with the tag ${tags.join(' or ')}` : ''} match this filter.`;
  }

  function renderGrid() {
    grid.replaceChildren(...state.images.map((image, index) => imageTile({
      id: image.id,
      src: image.thumbnailUri,
      label: `image ${index + 1} (${caption(image)})`,
      caption: caption(image),
      selection,
      onSelectionChange: updateSelection,
      onOpen: () => openImageDialog(ctx, state.images, index, refresh),
    })));
    if (!state.images.length) grid.append(h('li', { class: 'empty' }, emptyText()));
    more.hidden = !state.more;
    updateSelection();
  }

  function updateSelection() {
    bar.update();
    tagSelected.disabled = deleteSelected.disabled = selection.size === 0;
    tagSelected.hidden = ctx.detection;
  }

  /** A new filter: into the address, and the grid empties at once, so that nothing (Select all, Tag images, a
   * tile) acts on the last filter's images while the new ones load. */
  function filterChanged() {
    rememberFilter();
    state.images = [];
    state.more = false;
    selection.clear();
    summary.textContent = '';
    grid.replaceChildren(h('li', { class: 'loading' }, 'Loading…'));
    more.hidden = true;
    updateSelection();
  }

  async function loadImages(append = false) {
    const load = ++latestLoad;
    const skip = append ? state.images.length : 0;
    const query = { ...statusQuery(state.status), tagIds: [...state.tagIds], iterationId: state.iterationId, take: PAGE, skip };
    const page = await api.get(`${ctx.base}/images`, query);
    // An earlier filter's answer arriving late would otherwise replace the list, and Select all would take
    // images the grid no longer shows.
    if (signal.aborted || load !== latestLoad) return;
    state.images = append ? state.images.concat(page) : page;
    state.more = page.length === PAGE;
    if (!append) selection.clear();
    summary.textContent = `Showing ${state.images.length} image${state.images.length === 1 ? '' : 's'}`;
    renderGrid();
  }

  async function renderTags() {
    const render = ++latestTags;
    const iterationId = state.iterationId;
    const [tags, tagged, untagged, several, trainedCounts] = await Promise.all([
      ctx.loadTags(),
      api.get(`${ctx.base}/images/tagged/count`, { iterationId }),
      api.get(`${ctx.base}/images/untagged/count`, { iterationId }),
      oneTagEach ? api.get(`${ctx.base}/images/count`, { iterationId, multipleTags: true }) : 0,
      iterationId ? trainedTagCounts(ctx, iterationId) : null,
    ]);
    if (render !== latestTags) return; // an earlier call's counts arriving late would hide the newer ones
    const imageCount = (tag) => (trainedCounts ? trainedCounts.get(tag.id) ?? 0 : tag.imageCount);
    const number = { All: tagged + untagged, Tagged: tagged, Untagged: untagged, [SEVERAL]: several };
    const offered = STATUSES.filter(([value]) => value !== SEVERAL || several || state.status === SEVERAL);
    counts.replaceChildren(...offered.map(([value, label]) => {
      const button = h('button', { type: 'button', class: value === SEVERAL ? 'toggle several' : 'toggle', 'aria-pressed': String(state.status === value) },
        `${label} (${number[value]})`);
      button.addEventListener('click', () => {
        state.status = value;
        filterChanged();
        renderTags();
        loadImages();
        if (value === 'Untagged') suggestions.open();
        else suggestions.close();
      });
      return button;
    }));
    tagList.replaceChildren(...tags.map((tag) => {
      const id = uid('filter');
      const box = h('input', { type: 'checkbox', id, checked: state.tagIds.has(tag.id) });
      box.addEventListener('change', () => {
        if (box.checked) state.tagIds.add(tag.id);
        else state.tagIds.delete(tag.id);
        filterChanged();
        loadImages();
      });
      const del = h('button', { type: 'button', class: 'icon-button small', 'aria-label': `Delete tag ${tag.name}` }, '×');
      del.addEventListener('click', () => confirmDialog({
        title: 'Delete tag',
        message: `Delete the tag “${tag.name}”? It is removed from its ${tag.imageCount} images; the images stay.`,
        confirmLabel: 'Delete tag',
        action: async () => {
          await api.del(`${ctx.base}/tags/${tag.id}`);
          state.tagIds.delete(tag.id);
          rememberFilter();
          await refresh();
        },
      }));
      return h('li', { class: tag.type === 'Negative' ? 'negative' : '' },
        box, h('label', { for: id }, h('span', { class: 'tag-name' }, tag.name), h('span', { class: 'count' }, imageCount(tag))), del);
    }));
    if (!tags.length) tagList.append(h('li', { class: 'hint' }, 'No tags yet.'));
  }

  async function refresh() {
    await Promise.all([loadImages(), renderTags()]);
  }

  const newTag = h('input', { id: uid('tag-name'), autocomplete: 'off', placeholder: 'Tag name', required: true });
  const tagForm = h('form', { class: 'inline-add' }, h('label', { for: newTag.id, class: 'visually-hidden' }, 'New tag'),
    newTag, h('button', { type: 'submit', class: 'button small' }, 'Add'));
  const tagError = errorBox();
  tagForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    tagError.clear();
    try {
      await api.post(`${ctx.base}/tags`, { query: { name: newTag.value.trim() } });
      newTag.value = '';
      await renderTags();
    } catch (error) {
      tagError.show(error);
    }
  });

  addImages.addEventListener('click', () => openUploadDialog(ctx, null, refresh));
  more.addEventListener('click', () => loadImages(true));
  tagSelected.addEventListener('click', () => openTagSelected(ctx, [...selection], refresh));
  deleteSelected.addEventListener('click', () => confirmDialog({
    title: 'Delete images',
    message: `Delete ${selection.size} image${selection.size === 1 ? '' : 's'} from the training set?`,
    confirmLabel: 'Delete',
    action: async () => {
      for (const batch of chunks([...selection], 64)) await api.del(`${ctx.base}/images`, { imageIds: batch });
      announce(`Deleted ${selection.size} images.`);
      await refresh();
    },
  }));

  const workspace = h(
    'div',
    { class: 'workspace' },
    h('aside', { class: 'side-panel', 'aria-labelledby': 'tags-heading' },
      h('h2', { id: 'tags-heading' }, 'Tags'), iterationSlot, counts, tagList, tagForm, tagError.element),
    h('div', { class: 'main-panel' },
      h('div', { class: 'toolbar' }, h('h2', { tabindex: '-1', class: 'visually-hidden' }, 'Training images'),
        addImages, plainActions),
      suggestions.element, plainList),
  );
  workspace.addEventListener('dragover', (event) => event.preventDefault());
  workspace.addEventListener('drop', (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) openUploadDialog(ctx, event.dataTransfer.files, refresh);
  });
  panel.replaceChildren(workspace);
  await Promise.all([refresh(), linked ? null : loadIterations()]); // refresh's requests go out first
  if (state.status === 'Untagged') suggestions.open();
}
