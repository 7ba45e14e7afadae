/** Exporting an iteration: start an export (platform, flavor, precision), watch its status, download it. */

import { api } from './api.js';
import { errorBox, openDialog } from './dialog.js';
import { field, h } from './dom.js';
import { announce } from './status.js';

const POLL_MS = 2000;
let optionsRequest;

/** platform -> {flavors, precisions}: what Seer exports (pipeline/contract/exports.py, served by the portal). */
function exportOptions() {
  optionsRequest ??= fetch('/portal/export-options.json').then((response) => response.json());
  return optionsRequest;
}

function choices(select, values, describe = (value) => value) {
  select.replaceChildren(...values.map((value) => h('option', { value: value ?? '' }, describe(value))));
  select.closest('.field').hidden = values.length < 2;
}

const percent = (share) => `${(share * 100).toFixed(1)} %`;

/** What the export job's parity check found on the training images (Seer's `parity` extension), for a Done one. */
function parityText(parity) {
  const rule = parity.unknownAgreement === undefined ? '' : `; unknown verdict kept on ${percent(parity.unknownAgreement)}`;
  return `Agrees with the service on ${percent(parity.agreement)} of ${parity.images} training images${rule}`;
}

function exportRow(item) {
  const status = h('span', { class: `status status-${item.status.toLowerCase()}` }, item.status);
  if (item.status === 'Failed' && item.reason) status.title = item.reason;
  const download = item.status === 'Done' && item.downloadUri
    ? h('a', { href: item.downloadUri, class: 'button small', download: '' }, 'Download')
    : null;
  let detail = null;
  if (item.status === 'Failed' && item.reason) detail = item.reason;
  else if (item.status === 'Done' && item.parity) detail = parityText(item.parity);
  return h('tr', {},
    h('td', {}, item.platform),
    h('td', {}, item.flavor || '—'),
    h('td', {}, item.precision || 'FP32'),
    h('td', {}, status, detail ? h('div', { class: 'hint' }, detail) : null),
    h('td', {}, download));
}

export async function openExportDialog(ctx, iteration) {
  const options = await exportOptions();
  const platforms = (iteration.exportableTo || []).filter((name) => options[name]);
  const platform = h('select', { name: 'platform', autofocus: true },
    ...platforms.map((name) => h('option', { value: name }, name)));
  const flavor = h('select', { name: 'flavor' });
  const precision = h('select', { name: 'precision' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Export');
  const errors = errorBox();
  const form = h('form', { class: 'dialog-form export-form' },
    field('Platform', platform),
    field('Flavor', flavor),
    field('Precision', precision, 'FP16 and INT8 are smaller and faster; Seer checks they agree with the service.'),
    errors.element,
    h('div', { class: 'dialog-actions' }, submit));
  const body = h('tbody', {});
  const list = h('div', { class: 'table-wrap' }, h('table', { class: 'exports' },
    h('thead', {}, h('tr', {}, ...['Platform', 'Flavor', 'Precision', 'Status', ''].map((t) => h('th', {}, t)))),
    body));
  const path = `${ctx.base}/iterations/${iteration.id}/export`;
  let timer;

  const showOptions = () => {
    const spec = options[platform.value] || { flavors: [null], precisions: ['FP32'] };
    choices(flavor, spec.flavors, (value) => value ?? 'Default');
    choices(precision, spec.precisions);
  };
  const refresh = async () => {
    clearTimeout(timer);
    const exports = await api.get(path);
    body.replaceChildren(...exports.map(exportRow));
    if (!exports.length) body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No exports yet.')));
    if (dialog.open && exports.some((item) => item.status === 'Exporting')) timer = setTimeout(refresh, POLL_MS);
  };

  platform.addEventListener('change', showOptions);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.clear();
    submit.disabled = true;
    try {
      await api.post(path, { query: { platform: platform.value, flavor: flavor.value, precision: precision.value } });
      announce(`Exporting ${iteration.name} to ${platform.value}.`);
      await refresh();
    } catch (error) {
      errors.show(error);
    } finally {
      submit.disabled = false;
    }
  });
  const dialog = openDialog({ title: `Export ${iteration.name}`, wide: true, content: h('div', {}, form, list),
    onClose: () => clearTimeout(timer) });
  showOptions();
  try {
    await refresh();
  } catch (error) {
    errors.show(error);
  }
}
