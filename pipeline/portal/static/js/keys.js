/** The API keys, kept in this browser's localStorage. */

const STORAGE = { training: 'seer.trainingKey', prediction: 'seer.predictionKey' };

/** Seer's documented development keys, valid only when the server runs on loopback with no keys configured. */
export const DEV_KEYS = { training: 'seer-dev-training-key', prediction: 'seer-dev-prediction-key' };

export function getKey(kind) {
  return localStorage.getItem(STORAGE[kind]) || '';
}

export function setKeys(keys) {
  for (const [kind, value] of Object.entries(keys)) localStorage.setItem(STORAGE[kind], value.trim());
}

export function hasTrainingKey() {
  return Boolean(getKey('training'));
}

export function onLoopback() {
  return ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
}
