/** Quick Test: send an image file or URL to a trained iteration and show the predictions. */

import { api } from '../api.js';
import { chooseLinked, rememberView } from '../deep-link.js';
import { errorBox } from '../dialog.js';
import { dropFiles, field, h, uid } from '../dom.js';
import { iterationSelect } from '../iteration-select.js';
import { predictionView } from '../prediction-view.js';
import { announce } from '../status.js';

export async function renderQuickTest(panel, ctx, params, signal) {
  const iterations = await iterationSelect(ctx);
  if (signal.aborted) return;
  chooseLinked(iterations.select, params.get('iteration'));
  iterations.select.addEventListener('change', () => rememberView(ctx, 'quicktest', { iteration: iterations.select.value }));
  const heading = h('h2', { tabindex: '-1' }, 'Quick Test');
  if (!iterations.iterations.length) {
    panel.replaceChildren(h('div', { class: 'page narrow' }, heading,
      h('p', { class: 'empty' }, 'Train the project first: Quick Test needs a trained iteration.')));
    return;
  }
  const errors = errorBox();
  const result = h('div', { class: 'quick-test-result', 'aria-live': 'polite' });
  let threshold = 0.5;
  let last = null;
  const show = () => {
    if (last) result.replaceChildren(predictionView({ ...last, detection: ctx.detection, threshold }));
  };

  async function run(call, src) {
    errors.clear();
    result.replaceChildren(h('p', { class: 'loading' }, 'Predicting…'));
    try {
      const prediction = await call();
      last = { src, predictions: prediction.predictions, unknown: prediction.unknown };
      show();
      announce('Prediction ready.');
    } catch (error) {
      result.replaceChildren();
      errors.show(error);
    }
  }

  const fileId = uid('quick-file');
  const file = h('input', { type: 'file', id: fileId, accept: 'image/*', class: 'visually-hidden' });
  const testFile = (chosen) => {
    if (!chosen) return;
    const body = new FormData();
    body.append('imageData', chosen, chosen.name);
    run(() => api.post(`${ctx.base}/quicktest/image`, { query: { iterationId: iterations.select.value }, body }),
      URL.createObjectURL(chosen));
  };
  file.addEventListener('change', () => {
    testFile(file.files[0]);
    file.value = '';
  });
  const drop = h('div', { class: 'drop-zone compact' }, h('label', { for: fileId, class: 'button' }, 'Browse local files'),
    file, h('p', { class: 'hint' }, 'or drop an image here. JPG, PNG, BMP or GIF; up to 4 MB.'));
  dropFiles(drop, (files) => testFile(files[0]));
  const url = h('input', { type: 'url', placeholder: 'https://example.com/image.jpg', required: true });
  const urlForm = h('form', { class: 'inline-add' }, field('Image URL', url),
    h('button', { type: 'submit', class: 'button primary' }, 'Test URL'));
  urlForm.addEventListener('submit', (event) => {
    event.preventDefault();
    run(() => api.post(`${ctx.base}/quicktest/url`, { query: { iterationId: iterations.select.value }, json: { url: url.value } }),
      url.value);
  });
  const thresholdInput = h('input', { type: 'range', min: 0, max: 100, value: 50 });
  const thresholdOut = h('output', {}, '50%');
  thresholdInput.addEventListener('input', () => {
    threshold = Number(thresholdInput.value) / 100;
    thresholdOut.textContent = `${thresholdInput.value}%`;
    show();
  });
  const thresholdField = field('Show objects with probability of at least', thresholdInput);
  thresholdField.querySelector('label').append(' ', thresholdOut);

  panel.replaceChildren(h('div', { class: 'page narrow quick-test' },
    heading,
    h('p', {}, 'Test the model with an image it has not seen. The result is kept under Predictions.'),
    iterations.element,
    h('div', { class: 'quick-test-inputs' },
      drop,
      urlForm),
    ctx.detection ? thresholdField : null,
    errors.element,
    result));
}
