/** Suggested tags and regions from a trained iteration (Custom Vision's Smart Labeler): ask the model for them
 * (SuggestTagsAndRegions, which also stores them per iteration), read the stored ones back by tag and threshold
 * (QuerySuggestedImages, QuerySuggestedImageCount), and the rule for what confirming one applies. */

import { api, chunks } from './api.js';

const SUGGEST_BATCH = 64; // SuggestTagsAndRegions' most imageIds per call

/** Suggest for `imageIds`, a call per batch; `onProgress(done)` after each. */
export async function requestSuggestions(ctx, iterationId, imageIds, onProgress) {
  let done = 0;
  for (const batch of chunks(imageIds, SUGGEST_BATCH)) {
    await api.post(`${ctx.base}/tagsandregions/suggestions`, { query: { iterationId, imageIds: batch } });
    done += batch.length;
    onProgress(done);
  }
}

/** The filter as the API takes it: no tag ids means every tag of the project. */
const tagFilter = ({ tagIds, threshold }) => ({ tagIds: tagIds.length ? tagIds : undefined, threshold });

/** The first page of untagged images whose stored suggestion passes `filter`; its answer's token is the query for
 * the next page (`nextSuggested`) while it has a continuation. `filter.labelFirst`: Seer's "label these first"
 * order (typical images unlike those before them) instead of the most uncertain first. */
export function querySuggested(ctx, iterationId, filter, maxCount) {
  return nextSuggested(ctx, iterationId, { ...tagFilter(filter), labelFirst: filter.labelFirst || undefined, maxCount });
}

export function nextSuggested(ctx, iterationId, token) {
  return api.post(`${ctx.base}/images/suggested`, { query: { iterationId }, json: token });
}

/** {tagId: number of untagged images suggested that tag at or above the threshold}, for every tag. */
export function countSuggested(ctx, iterationId, threshold) {
  return api.post(`${ctx.base}/images/suggested/count`, { query: { iterationId }, json: { threshold } });
}

/**
 * What confirming a stored suggestion applies: its predictions of the chosen tags (all, when none are chosen) at
 * or above the threshold, likeliest first. A detector's image gets every such box; a Multiclass image only the
 * likeliest tag, since it carries one.
 */
export function suggestedLabels(ctx, suggestion, { tagIds, threshold }) {
  const wanted = new Set(tagIds);
  const kept = suggestion.predictions
    .filter((p) => p.probability >= threshold && (!wanted.size || wanted.has(p.tagId)))
    .sort((a, b) => b.probability - a.probability);
  return ctx.detection || ctx.multilabel ? kept : kept.slice(0, 1);
}
