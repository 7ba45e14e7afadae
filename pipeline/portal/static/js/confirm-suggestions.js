/** Confirm suggestions in bulk: whole-image tags through CreateImageTags, a detector's boxes through
 * CreateImageRegions, in the batch sizes the API takes. An image's labels travel together, so when a call is
 * refused (one image deleted meanwhile fails its whole batch) the batch is sent again image by image: the failures
 * are then exactly the images at fault, and every other image stays confirmed. */

import { api, ApiError, chunks, inBatches } from './api.js';

const KINDS = {
  tags: {
    limit: 128, // CreateImageTags' most entries per call
    path: 'images/tags',
    entry: (imageId, p) => ({ imageId, tagId: p.tagId }),
    body: (entries) => ({ tags: entries }),
    exceeded: 'The image already has as many tags as it may have.',
  },
  regions: {
    limit: 64, // CreateImageRegions' most regions per call
    path: 'images/regions',
    entry: (imageId, p) => ({ imageId, tagId: p.tagId, ...p.boundingBox }),
    body: (entries) => ({ regions: entries }),
    exceeded: 'The image already has as many regions as it may have.',
  },
};

/** Whole groups (one per image) packed into batches of at most `limit` entries; a group larger than the limit
 * is a batch of its own (sent in several calls). */
const pack = (groups, limit) => inBatches(groups, (batch, group) => entryCount(batch) + group.entries.length > limit);
const entryCount = (groups) => groups.reduce((total, group) => total + group.entries.length, 0);

/** Send a batch; an entry the API answers as exceeded fails its image. Throws the API's error for the call. */
async function send(ctx, kind, batch, failed) {
  for (const entries of chunks(batch.flatMap((group) => group.entries), kind.limit)) {
    const summary = await api.post(`${ctx.base}/${kind.path}`, { json: kind.body(entries) });
    for (const entry of summary.exceeded) failed.set(entry.imageId, new ApiError(200, 'Exceeded', kind.exceeded));
  }
}

/** The refused batch again, one image a call, so each image's own error is known. */
async function sendEach(ctx, kind, batch, failed) {
  for (const group of batch) {
    try {
      await send(ctx, kind, [group], failed);
    } catch (error) {
      failed.set(group.imageId, error);
    }
  }
}

/**
 * `plans`: [{imageId, labels}] where labels are the predictions to apply (suggestedLabels). Resolves with the ids
 * confirmed and a Map of the failed ones to their error; `onProgress(done)` counts images as their batch ends.
 */
export async function confirmSuggestions(ctx, plans, onProgress) {
  const kind = ctx.detection ? KINDS.regions : KINDS.tags;
  const failed = new Map();
  const groups = [];
  for (const { imageId, labels } of plans) {
    if (labels.length) groups.push({ imageId, entries: labels.map((label) => kind.entry(imageId, label)) });
    else failed.set(imageId, new ApiError(0, 'NoSuggestion', 'Nothing is suggested at or above the threshold.'));
  }
  let done = failed.size;
  for (const batch of pack(groups, kind.limit)) {
    try {
      await send(ctx, kind, batch, failed);
    } catch (error) {
      if (batch.length === 1) failed.set(batch[0].imageId, error);
      else await sendEach(ctx, kind, batch, failed);
    }
    done += batch.length;
    onProgress(done);
  }
  return { confirmed: groups.map((group) => group.imageId).filter((id) => !failed.has(id)), failed };
}
