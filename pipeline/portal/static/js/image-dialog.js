/** One training image, large: its tags (classification) or its regions (object detection), and Delete. */

import { api } from './api.js';
import { confirmDialog, openDialog } from './dialog.js';
import { h } from './dom.js';
import { regionEditor } from './regions.js';
import { announce } from './status.js';

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
  return h('div', { class: 'image-tags' }, h('h3', {}, 'Tags'), chips, h('div', { class: 'inline-add' }, select, add), error);
}

/** Open the image; `onChanged()` runs once on close if anything changed. */
export function openImageDialog(ctx, image, onChanged) {
  let changed = false;
  const mark = () => {
    changed = true;
  };
  const remove = h('button', { type: 'button', class: 'button danger-text' }, 'Delete image');
  const content = ctx.detection
    ? regionEditor(ctx, image, mark)
    : h('div', { class: 'image-detail' },
      h('img', { src: image.resizedImageUri, alt: `Image ${image.width}×${image.height}`, class: 'detail-image' }),
      tagEditor(ctx, image, mark));
  const dialog = openDialog({
    title: 'Image details',
    wide: true,
    content: h('div', {}, content, h('div', { class: 'dialog-actions' }, remove)),
    onClose: () => changed && onChanged(),
  });
  remove.addEventListener('click', () =>
    confirmDialog({
      title: 'Delete image',
      message: 'Delete this image from the training set?',
      confirmLabel: 'Delete',
      action: async () => {
        await api.del(`${ctx.base}/images`, { imageIds: image.id });
        announce('Image deleted.');
        changed = true;
        dialog.close();
      },
    }));
}
