/** The settings dialog: the Training and Prediction keys this browser sends, and the endpoint to use them with. */

import { formDialog } from './dialog.js';
import { field, h } from './dom.js';
import { DEV_KEYS, getKey, onLoopback, setKeys } from './keys.js';
import { announce } from './status.js';

function keyInput(kind) {
  return h('input', {
    type: 'password',
    name: kind,
    autocomplete: 'off',
    spellcheck: 'false',
    value: getKey(kind),
    placeholder: onLoopback() ? DEV_KEYS[kind] : '',
    required: kind === 'training',
  });
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
  formDialog({
    title: 'Settings',
    fields,
    submitLabel: 'Save',
    onSubmit: async () => {
      setKeys({ training: training.value, prediction: prediction.value });
      announce('Keys saved.');
      onSaved?.();
    },
  });
}
