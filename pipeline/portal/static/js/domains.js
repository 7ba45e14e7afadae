/** The domains list (GET domains), fetched once per page load. */

import { api } from './api.js';

let cached = null;

export function loadDomains() {
  cached ||= api.get('/domains').catch((error) => {
    cached = null;
    throw error;
  });
  return cached;
}

export const isDetection = (domain) => domain?.type === 'ObjectDetection';
