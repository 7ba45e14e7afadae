/** Publishing an iteration to the Prediction API, unpublishing it, and how to call its prediction URL. */

import { api, PREDICTION_BASE } from './api.js';
import { confirmDialog, formDialog, openDialog } from './dialog.js';
import { field, h } from './dom.js';
import { getKey } from './keys.js';
import { announce } from './status.js';

const DEFAULT_RESOURCE = 'seer';

/** Whether the iteration can be served in Seer's INT8 mode: a compact domain's iteration with a Done ONNX INT8
 * export (the server quantizes nothing at publish time: it serves that export). */
async function hasInt8Export(ctx, iteration) {
  if (!ctx.domain?.exportable) return false;
  const exports = await api.get(`${ctx.base}/iterations/${iteration.id}/export`);
  return exports.some((e) => e.platform === 'ONNX' && e.precision === 'INT8' && e.status === 'Done');
}

function precisionField(int8) {
  const precision = h('select', { name: 'precision' },
    h('option', { value: 'FP32' }, 'FP32: the model as trained'),
    h('option', { value: 'INT8', disabled: !int8 }, 'INT8: its ONNX INT8 export'));
  return [precision, field('Serving precision', precision, int8
    ? 'INT8 answers faster on a CPU; its export check compared it with the trained model.'
    : 'To serve INT8, first export this iteration to ONNX in INT8 (Export).')];
}

export async function openPublishDialog(ctx, iteration, done) {
  const name = h('input', { name: 'publishName', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}',
    value: iteration.name.replace(/[^A-Za-z0-9._-]/g, ''), autofocus: true });
  const resource = h('input', { name: 'predictionId', value: DEFAULT_RESOURCE });
  // Seer's INT8 serving mode is for compact domains only; other projects see no precision at all.
  const [precision, precisionChoice] = ctx.domain?.exportable
    ? precisionField(await hasInt8Export(ctx, iteration)) : [null, null];
  formDialog({
    title: `Publish ${iteration.name}`,
    fields: h('div', {},
      field('Model name', name, 'Part of the prediction URL: letters, digits, “.”, “-” and “_”.'),
      precisionChoice,
      // Custom Vision publishes to an Azure prediction resource; Seer serves every published model itself and
      // only keeps the id for clients that send one, so the field is optional and tucked away.
      h('details', { class: 'advanced' }, h('summary', {}, 'Custom Vision compatibility'),
        field('Prediction resource id (optional)', resource, 'Seer serves published models from this server. '
          + 'The id is stored only for Custom Vision clients that read it back; leave it as it is.'))),
    submitLabel: 'Publish',
    onSubmit: async () => {
      const int8 = precision?.value === 'INT8';
      await api.post(`${ctx.base}/iterations/${iteration.id}/publish`, {
        query: {
          publishName: name.value,
          predictionId: resource.value.trim() || DEFAULT_RESOURCE,
          precision: int8 ? 'INT8' : undefined,
        },
      });
      announce(`${iteration.name} published as ${name.value}${int8 ? ' (INT8)' : ''}.`);
      await done();
    },
  });
}

/** "Published as NAME", with the serving precision when it is Seer's INT8 mode. */
export function publishedLabel(iteration) {
  const mode = iteration.servingPrecision === 'INT8' ? ' (INT8)' : '';
  return `Published as ${iteration.publishName}${mode}`;
}

export function confirmUnpublish(ctx, iteration, done) {
  confirmDialog({
    title: 'Unpublish',
    message: `Stop serving ${iteration.name} at its prediction URL (“${iteration.publishName}”)? Applications `
      + 'calling it will get errors.',
    confirmLabel: 'Unpublish',
    action: async () => {
      await api.del(`${ctx.base}/iterations/${iteration.id}/publish`);
      announce(`${iteration.name} unpublished.`);
      await done();
    },
  });
}

function copyable(label, text) {
  const code = h('pre', { class: 'code', tabindex: '0', 'aria-label': label }, text);
  const copy = h('button', { type: 'button', class: 'button small' }, 'Copy');
  copy.setAttribute('aria-label', `Copy ${label}`);
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      announce('Copied to the clipboard.');
    } catch {
      getSelection().selectAllChildren(code);
      announce('Selected; press Ctrl+C to copy.');
    }
  });
  return h('div', { class: 'copyable' }, h('div', { class: 'copyable-header' }, h('h3', {}, label), copy), code);
}

function predictionUrl(ctx, iteration, kind) {
  const task = ctx.detection ? 'detect' : 'classify';
  return `${location.origin}${PREDICTION_BASE}/${ctx.project.id}/${task}/iterations/${encodeURIComponent(iteration.publishName)}/${kind}`;
}

export function openPredictionUrlDialog(ctx, iteration) {
  const key = getKey('prediction') || '<your prediction key>';
  const imageUrl = predictionUrl(ctx, iteration, 'image');
  const urlUrl = predictionUrl(ctx, iteration, 'url');
  openDialog({
    title: 'How to use the Prediction API',
    wide: true,
    content: h('div', { class: 'prediction-url' },
      h('h3', {}, 'If you have an image URL:'),
      copyable('Image URL endpoint', urlUrl),
      h('p', {}, 'Set the ', h('code', {}, 'Prediction-Key'), ' header and ', h('code', {}, 'Content-Type: application/json'),
        '; the body is ', h('code', {}, '{"Url": "https://example.com/image.png"}'), '.'),
      copyable('curl with an image URL', `curl -X POST "${urlUrl}" \\\n  -H "Prediction-Key: ${key}" \\\n`
        + '  -H "Content-Type: application/json" \\\n  -d \'{"Url": "https://example.com/image.png"}\''),
      h('h3', {}, 'If you have an image file:'),
      copyable('Image file endpoint', imageUrl),
      copyable('curl with an image file', `curl -X POST "${imageUrl}" \\\n  -H "Prediction-Key: ${key}" \\\n`
        + '  -H "Content-Type: application/octet-stream" \\\n  --data-binary @image.jpg')),
  });
}
