/** One training image, large: its tags (classification) or its regions (object detection), and Delete.
 * Labelling goes image to image: Previous / Next (or the arrow keys) walk the grid's images, and the keys 1-9
 * toggle the project's first nine tags on the image (a detector: choose the tag for new regions). */

import { api } from './api.js';
import { confirmDialog, openDialog } from './dialog.js';
import { h, percent } from './dom.js';
import { NO_ITERATION, suggestionsFor } from './labeller.js';
import { regionEditor } from './regions.js';
import { announce } from './status.js';

const TAG_KEYS = 9;

/** The first nine tags with their key, as the shortcuts see them. */
const shortcutTags = (ctx) => ctx.tags.slice(0, TAG_KEYS);

function tagEditor(ctx, image, onChanged) {
  const chips = h('ul', { class: 'chips', 'aria-label': 'Tags of this image' });
  const select = h('select', { 'aria-label': 'Tag to add' });
  const add = h('button', { type: 'button', class: 'button small' }, 'Add tag');
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const run = async (action) => {
    error.hidden = true;
    try {
      await action();
      [image] = await api.get(`${ctx.base}/images/id`, { imageIds: image.id });
      onChanged(image);
      render();
    } catch (e) {
      error.textContent = `${e.code}: ${e.message}`;
      error.hidden = false;
    }
  };
  function render() {
    const on = new Set(image.tags.map((t) => t.tagId));
    chips.replaceChildren(...image.tags.map((tag) => {
      const remove = h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove tag ${tag.tagName}` }, '×');
      remove.addEventListener('click', () =>
        run(() => api.del(`${ctx.base}/images/tags`, { imageIds: image.id, tagIds: tag.tagId })));
      return h('li', { class: 'chip' }, tag.tagName, remove);
    }));
    if (!image.tags.length) chips.append(h('li', { class: 'hint' }, 'Untagged'));
    const free = ctx.tags.filter((t) => !on.has(t.id));
    select.replaceChildren(...free.map((t) => h('option', { value: t.id }, t.name)));
    select.disabled = add.disabled = free.length === 0;
  }
  add.addEventListener('click', () =>
    run(() => api.post(`${ctx.base}/images/tags`, { json: { tags: [{ imageId: image.id, tagId: select.value }] } })));
  render();

  /** Put the tag on or take it off; in a Multiclass project it replaces the image's other tags. */
  function toggle(tag) {
    const has = image.tags.some((t) => t.tagId === tag.id);
    run(async () => {
      if (has) return api.del(`${ctx.base}/images/tags`, { imageIds: image.id, tagIds: tag.id });
      const others = ctx.multilabel ? [] : image.tags.map((t) => t.tagId);
      if (others.length) await api.del(`${ctx.base}/images/tags`, { imageIds: image.id, tagIds: others });
      return api.post(`${ctx.base}/images/tags`, { json: { tags: [{ imageId: image.id, tagId: tag.id }] } });
    });
  }

  const suggest = h('button', { type: 'button', class: 'button small' }, 'Suggest tags');
  const suggested = h('div', { class: 'suggested-tags', 'aria-live': 'polite' });
  suggest.addEventListener('click', async () => {
    suggested.replaceChildren(h('p', { class: 'loading' }, 'Asking the newest trained iteration…'));
    try {
      const result = await suggestionsFor(ctx, image.id);
      if (!result) return suggested.replaceChildren(h('p', { class: 'hint' }, NO_ITERATION));
      const on = new Set(image.tags.map((t) => t.tagId));
      const offers = result.predictions.filter((p) => !on.has(p.tagId));
      suggested.replaceChildren(
        h('p', { class: 'hint' }, offers.length ? `${result.iteration.name} suggests (click to accept):`
          : `${result.iteration.name} suggests nothing more for this image.`),
        h('ul', { class: 'chips', 'aria-label': 'Suggested tags' }, offers.map((p) => {
          const accept = h('button', { type: 'button', class: 'chip suggestion',
            'aria-label': `Accept suggested tag ${p.tagName} (${percent(p.probability)})` }, `${p.tagName} ${percent(p.probability)}`);
          accept.addEventListener('click', () => {
            accept.parentElement.remove();
            toggle(ctx.tags.find((t) => t.id === p.tagId));
          });
          return h('li', {}, accept);
        })));
    } catch (e) {
      suggested.replaceChildren(h('p', { class: 'field-error', role: 'alert' }, `${e.code}: ${e.message}`));
    }
  });

  const keys = shortcutTags(ctx).map((tag, i) => h('li', {}, h('kbd', {}, String(i + 1)), ` ${tag.name}`));
  return {
    element: h('div', { class: 'image-tags' }, h('h3', {}, 'Tags'), chips, h('div', { class: 'inline-add' }, select, add),
      error, h('div', { class: 'inline-add' }, suggest), suggested,
      keys.length ? h('ul', { class: 'shortcut-list keyboard-only', 'aria-label': 'Tag keys' }, keys) : null),
    toggle,
  };
}

/** Whether a key press belongs to the focused control (typing, a select, a region moved by the arrows). */
const ownsKeys = (target) => target.closest('input, select, textarea, .region');

/** Open `images[index]`; `onChanged()` runs once on close if anything changed. */
export function openImageDialog(ctx, images, index, onChanged) {
  const shown = [...images];
  let current = index;
  let changed = false;
  let editor = null;
  const body = h('div', {});
  const position = h('span', { class: 'image-position', 'aria-live': 'polite' });
  const previous = h('button', { type: 'button', class: 'button small', 'aria-keyshortcuts': 'ArrowLeft',
    'aria-label': 'Previous image' }, '‹ Previous');
  const next = h('button', { type: 'button', class: 'button small', 'aria-keyshortcuts': 'ArrowRight',
    'aria-label': 'Next image' }, 'Next ›');
  const remove = h('button', { type: 'button', class: 'button danger-text' }, 'Delete image');
  const updated = (image) => {
    shown[current] = image;
    changed = true;
  };

  function show(i) {
    current = i;
    const image = shown[i];
    editor = ctx.detection
      ? regionEditor(ctx, image, updated)
      : tagEditor(ctx, image, updated);
    body.replaceChildren(ctx.detection
      ? editor.element
      : h('div', { class: 'image-detail' },
        h('img', { src: image.resizedImageUri, alt: `Image ${image.width}×${image.height}`, class: 'detail-image' }),
        editor.element));
    position.textContent = `Image ${i + 1} of ${shown.length}`;
    previous.disabled = i === 0;
    next.disabled = i === shown.length - 1;
  }
  const step = (delta) => {
    const target = current + delta;
    if (target >= 0 && target < shown.length) show(target);
  };
  previous.addEventListener('click', () => step(-1));
  next.addEventListener('click', () => step(1));

  const dialog = openDialog({
    title: 'Image details',
    wide: true,
    content: h('div', {},
      h('div', { class: 'image-nav' }, previous, position, next,
        h('span', { class: 'hint keyboard-only' }, '← → move between images; 1-9 apply a tag.')),
      body, h('div', { class: 'dialog-actions' }, remove)),
    onClose: () => changed && onChanged(),
  });
  dialog.addEventListener('keydown', (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || ownsKeys(event.target)) return;
    if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
      event.preventDefault();
      step(event.key === 'ArrowLeft' ? -1 : 1);
      return;
    }
    const tag = /^[1-9]$/.test(event.key) ? shortcutTags(ctx)[Number(event.key) - 1] : null;
    if (!tag) return;
    event.preventDefault();
    if (ctx.detection) editor.useTag(tag);
    else editor.toggle(tag);
  });
  remove.addEventListener('click', () =>
    confirmDialog({
      title: 'Delete image',
      message: 'Delete this image from the training set?',
      confirmLabel: 'Delete',
      action: async () => {
        await api.del(`${ctx.base}/images`, { imageIds: shown[current].id });
        announce('Image deleted.');
        changed = true;
        dialog.close();
      },
    }));
  show(index);
}
