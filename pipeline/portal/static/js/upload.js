/** The Add images dialog: drop or pick many files, choose tags, upload in batches with per-file progress and
 * each file's ImageCreateResult status. */

import { inBatches, uploadImages } from './api.js';
import { openDialog } from './dialog.js';
import { dropFiles, h, uid } from './dom.js';
import { announce } from './status.js';
import { tagPicker } from './tag-picker.js';

const BATCH_FILES = 16;
const BATCH_BYTES = 16 * 1024 * 1024;

/** What each ImageCreateStatus means to a person. */
const STATUS_TEXT = {
  OK: 'Uploaded',
  OKDuplicate: 'Already in the project (duplicate)',
  ErrorSource: 'Could not read the file',
  ErrorImageFormat: 'Not a supported image (use JPG, PNG, BMP or GIF)',
  ErrorImageSize: 'Too large (training images may be at most 6 MB)',
  ErrorImageDimensions: 'Image dimensions out of range',
  ErrorStorage: 'Storage failed; try again',
  ErrorLimitExceed: 'The project has reached its image limit',
  ErrorTagLimitExceed: 'Too many tags on this image',
  ErrorRegionLimitExceed: 'Too many regions on this image',
  ErrorNegativeAndRegularTagOnSameImage: 'An image cannot have the Negative tag and a regular tag',
  ErrorUnknown: 'Unknown error',
};

const succeeded = (status) => status === 'OK' || status === 'OKDuplicate';

/** Split file rows into requests of at most BATCH_FILES files and about BATCH_BYTES bytes. */
const batches = (rows) => inBatches(rows, (batch, row) => batch.length >= BATCH_FILES
  || batch.reduce((bytes, r) => bytes + r.file.size, 0) + row.file.size > BATCH_BYTES);

function fileRow(file) {
  const progress = h('progress', { max: 1, value: 0, 'aria-label': `Upload progress of ${file.name}` });
  const status = h('span', { class: 'file-status' }, 'Waiting');
  const row = h('li', { class: 'file-row' }, h('span', { class: 'file-name' }, file.name), progress, status);
  return {
    file,
    row,
    progress(fraction) {
      progress.value = fraction;
      status.textContent = fraction < 1 ? 'Uploading…' : 'Processing…';
    },
    done(code, message) {
      progress.value = 1;
      row.classList.add(succeeded(code) ? 'ok' : 'failed');
      status.replaceChildren(succeeded(code) ? '' : h('strong', {}, `${code}: `), message);
    },
  };
}

async function uploadBatch(ctx, rows, tagIds) {
  const form = new FormData();
  rows.forEach((r) => form.append('imageData', r.file, r.file.name));
  const offsets = [];
  let total = 0;
  for (const r of rows) {
    offsets.push(total);
    total += r.file.size;
  }
  const onProgress = (loaded) =>
    rows.forEach((r, i) => r.progress(Math.max(0, Math.min(1, (loaded - offsets[i]) / (r.file.size || 1)))));
  try {
    const summary = await uploadImages(`${ctx.base}/images`, { tagIds }, form, onProgress);
    rows.forEach((r, i) => {
      const status = summary.images[i]?.status || 'ErrorUnknown';
      r.done(status, STATUS_TEXT[status] || status);
    });
    return summary.images.map((result) => result.status);
  } catch (error) {
    rows.forEach((r) => r.done(error.code, error.message));
    return rows.map(() => error.code);
  }
}

/** Open the dialog, optionally with files already dropped on the page; `onDone` runs after an upload. */
export function openUploadDialog(ctx, initialFiles, onDone) {
  let files = [...(initialFiles || [])];
  const inputId = uid('files');
  const input = h('input', { type: 'file', id: inputId, multiple: true, accept: 'image/*', class: 'visually-hidden' });
  const drop = h(
    'div',
    { class: 'drop-zone' },
    h('p', {}, 'Drag and drop images here, or'),
    h('label', { for: inputId, class: 'button' }, 'Browse local files'),
    input,
    h('p', { class: 'hint' }, 'JPG, PNG, BMP or GIF; up to 6 MB each.'),
  );
  const chosen = h('p', { class: 'chosen-count', 'aria-live': 'polite' });
  const list = h('ul', { class: 'file-list' });
  const picker = ctx.detection ? null : tagPicker(ctx, { legend: 'My tags (applied to every uploaded image)' });
  const untagged = h('p', { class: 'warning', hidden: true },
    'No tag is ticked: these images will be uploaded untagged (find them under Untagged).');
  const warnIfUntagged = () => {
    untagged.hidden = !picker || files.length === 0 || picker.selectedIds().length > 0;
  };
  picker?.onChange(warnIfUntagged);
  const summary = h('p', { class: 'upload-summary', role: 'status' });
  const upload = h('button', { type: 'button', class: 'button primary', disabled: true }, 'Upload');
  const close = h('button', { type: 'button', class: 'button' }, 'Cancel');

  const setFiles = (more) => {
    files = files.concat([...more]);
    chosen.textContent = `${files.length} file${files.length === 1 ? '' : 's'} chosen`;
    list.replaceChildren(...files.map((f) => h('li', { class: 'file-row' }, h('span', { class: 'file-name' }, f.name))));
    upload.disabled = files.length === 0;
    upload.textContent = `Upload ${files.length} file${files.length === 1 ? '' : 's'}`;
    warnIfUntagged();
  };
  input.addEventListener('change', () => setFiles(input.files));
  dropFiles(drop, setFiles);

  upload.addEventListener('click', async () => {
    upload.disabled = true;
    drop.hidden = true;
    untagged.hidden = true;
    if (picker) picker.element.disabled = true;
    const rows = files.map(fileRow);
    list.replaceChildren(...rows.map((r) => r.row));
    const tagIds = picker ? picker.selectedIds() : [];
    const statuses = [];
    for (const batch of batches(rows)) statuses.push(...await uploadBatch(ctx, batch, tagIds));
    const ok = statuses.filter((s) => s === 'OK').length;
    const duplicates = statuses.filter((s) => s === 'OKDuplicate').length;
    const failed = statuses.length - ok - duplicates;
    summary.textContent = `${ok} uploaded, ${duplicates} duplicate${duplicates === 1 ? '' : 's'}, ${failed} failed.`;
    announce(summary.textContent);
    close.textContent = 'Done';
    upload.hidden = true;
    close.focus();
    await onDone();
  });
  const dialog = openDialog({
    title: 'Add images',
    wide: true,
    content: h('div', { class: 'upload' }, drop, chosen, picker?.element, untagged, list, summary,
      h('div', { class: 'dialog-actions' }, close, upload)),
  });
  close.addEventListener('click', () => dialog.close());
  if (files.length) setFiles([]);
  return dialog;
}
