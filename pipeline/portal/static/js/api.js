/** The Custom Vision REST API as the portal uses it: Training API v3.3 and Prediction API v3.0, same origin. */

import { getKey } from './keys.js';

const TRAINING_BASE = '/customvision/v3.3/training';
export const PREDICTION_BASE = '/customvision/v3.0/Prediction';

/** What the portal says when Seer refuses a key: the API's own 401 text is Azure's, about subscriptions and
 * regional endpoints, which means nothing for a self-hosted server. */
const REFUSED_KEY = {
  training: `Seer at ${location.origin} refused this Training key. Use the server's SEER_TRAINING_KEY setting `
    + '(on loopback with no keys set: the development keys). Settings (the gear, top right) changes it.',
  prediction: `Seer at ${location.origin} refused this Prediction key. Use the server's SEER_PREDICTION_KEY `
    + 'setting (on loopback with no keys set: the development keys).',
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function buildUrl(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    params.set(name, Array.isArray(value) ? value.join(',') : String(value));
  }
  const text = params.toString();
  return `${TRAINING_BASE}${path}${text ? `?${text}` : ''}`;
}

async function toError(status, text) {
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the status text */
  }
  if (status === 401) {
    window.dispatchEvent(new CustomEvent('seer:unauthorized'));
    return new ApiError(status, body.code || 'Unauthorized', REFUSED_KEY.training);
  }
  return new ApiError(status, body.code || `HTTP${status}`, body.message || text || `HTTP ${status}`);
}

async function call(method, path, { query, json, body } = {}) {
  const headers = { 'Training-Key': getKey('training') };
  let payload = body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(buildUrl(path, query), { method, headers, body: payload });
  } catch {
    throw new ApiError(0, 'NetworkError', 'Could not reach the Seer server. Is it running?');
  }
  const text = await response.text();
  if (!response.ok) throw await toError(response.status, text);
  return text ? JSON.parse(text) : null;
}

/** Training API calls; paths are relative to /customvision/v3.3/training. */
export const api = {
  get: (path, query) => call('GET', path, { query }),
  post: (path, options) => call('POST', path, options),
  patch: (path, json) => call('PATCH', path, { json }),
  del: (path, query) => call('DELETE', path, { query }),
};

/**
 * POST multipart image data with upload progress (fetch cannot report it). Resolves with the parsed body for
 * 200 and 207 (a partly failed batch); rejects with an ApiError otherwise.
 */
export function uploadImages(path, query, formData, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', buildUrl(path, query));
    xhr.setRequestHeader('Training-Key', getKey('training'));
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onerror = () => reject(new ApiError(0, 'NetworkError', 'The upload was interrupted.'));
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(await toError(xhr.status, xhr.responseText));
    };
    xhr.send(formData);
  });
}

/** Whether Seer accepts `key` for the Training or Prediction API, asked with a request that changes nothing
 * (the key is checked before routing, so an unknown path answers 404 with a good key and 401 with a bad one).
 * Throws an ApiError naming the key when it is refused or the server cannot be reached. */
export async function checkKey(kind, key) {
  const path = kind === 'training' ? `${TRAINING_BASE}/projects` : `${PREDICTION_BASE}/key-check`;
  const header = kind === 'training' ? 'Training-Key' : 'Prediction-Key';
  let response;
  try {
    response = await fetch(path, { headers: { [header]: key } });
  } catch {
    throw new ApiError(0, 'NetworkError', 'Could not reach the Seer server. Is it running?');
  }
  if (response.status === 401) throw new ApiError(401, 'Unauthorized', REFUSED_KEY[kind]);
}

/** Chunks of at most `size` items, for endpoints with per-request limits. */
export function chunks(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `items` in order, split into batches for calls with limits: a new batch starts when `full(batch, item)` says
 * that adding `item` would take the current, non-empty batch past a limit. */
export function inBatches(items, full) {
  const batches = [];
  let batch = [];
  for (const item of items) {
    if (batch.length && full(batch, item)) {
      batches.push(batch);
      batch = [];
    }
    batch.push(item);
  }
  if (batch.length) batches.push(batch);
  return batches;
}
