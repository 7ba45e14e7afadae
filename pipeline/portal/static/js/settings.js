/** The settings dialog: the Training and Prediction keys this browser sends, and the endpoint to use them with.
 * Keys are checked against the server before they are saved, so a wrong key is named at once. */

import { checkKey } from './api.js';
import { formDialog } from './dialog.js';
import { field, h } from './dom.js';
import { DEV_KEYS, getKey, hasTrainingKey, onLoopback, setKeys } from './keys.js';
import { announce } from './status.js';

const PLACEHOLDERS = { training: 'Paste the Training-Key', prediction: 'Paste the Prediction-Key (optional)' };

function keyInput(kind) {
  return h('input', {
    type: 'password',
    name: kind,
    autocomplete: 'off',
    spellcheck: 'false',
    value: getKey(kind),
    placeholder: PLACEHOLDERS[kind],
    required: kind === 'training',
  });
}

/** What the page shows when the dialog was closed without a Training key: how to get back to it. */
function renderNoKeys(onSaved) {
  const main = document.getElementById('main');
  const enter = h('button', { type: 'button', class: 'button primary' }, 'Enter keys');
  enter.addEventListener('click', () => openSettings(onSaved));
  main.replaceChildren(h('div', { class: 'page narrow no-keys' },
    h('h1', {}, 'Seer needs a Training key'),
    h('p', {}, 'Projects, images and training are behind the Training-Key, as in Custom Vision. Enter it here, or '
      + 'any time with the gear (Settings) at the top right.'),
    enter));
  enter.focus();
}

export function openSettings(onSaved) {
  const training = keyInput('training');
  const prediction = keyInput('prediction');
  const useDev = h('button', { type: 'button', class: 'button' }, 'Use the development keys');
  useDev.addEventListener('click', () => {
    training.value = DEV_KEYS.training;
    prediction.value = DEV_KEYS.prediction;
  });
  const show = h('input', { type: 'checkbox' });
  show.addEventListener('change', () => {
    for (const input of [training, prediction]) input.type = show.checked ? 'text' : 'password';
  });
  const fields = h(
    'div',
    {},
    h('p', {}, 'Seer uses the same keys as Custom Vision: a Training-Key for projects and training, a '
      + 'Prediction-Key for the prediction endpoint. They are kept in this browser only.'),
    field('Training key', training),
    field('Prediction key', prediction),
    h('label', { class: 'checkbox' }, show, ' Show keys'),
    h('p', { class: 'hint' }, 'Endpoint: ', h('code', {}, location.origin)),
    onLoopback()
      ? h('div', { class: 'dev-keys' }, h('p', { class: 'hint' }, 'On this machine Seer accepts its documented '
        + 'development keys when no keys are configured.'), useDev)
      : null,
  );
  let saved = false;
  formDialog({
    title: 'Settings',
    fields,
    submitLabel: 'Save',
    onSubmit: async () => {
      await checkKey('training', training.value.trim());
      if (prediction.value.trim()) await checkKey('prediction', prediction.value.trim());
      setKeys({ training: training.value, prediction: prediction.value });
      saved = true;
      announce('Keys checked and saved.');
    },
    onClose: () => {
      if (saved) onSaved?.();
      else if (!hasTrainingKey()) renderNoKeys(onSaved);
    },
  });
}
