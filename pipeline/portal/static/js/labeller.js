/** The smart labeller's source: what the newest trained iteration suggests for one image (SuggestTagsAndRegions,
 * which also stores it for the Untagged view). */

import { api } from './api.js';
import { trainedIterations } from './iteration-select.js';

/** Suggestions below this probability are not offered (the Untagged view's default threshold too). */
export const OFFER_AT = 0.3;

/** `{ iteration, predictions }` for the image, or null when the project has no trained iteration yet. Only
 * predictions of tags the project still has, at OFFER_AT or above, likeliest first. */
export async function suggestionsFor(ctx, imageId) {
  const [iteration] = await trainedIterations(ctx);
  if (!iteration) return null;
  const [suggestion] = await api.post(`${ctx.base}/tagsandregions/suggestions`,
    { query: { iterationId: iteration.id, imageIds: imageId } });
  const known = new Set(ctx.tags.map((t) => t.id));
  const predictions = (suggestion?.predictions || [])
    .filter((p) => p.probability >= OFFER_AT && known.has(p.tagId))
    .sort((a, b) => b.probability - a.probability);
  return { iteration, predictions };
}

export const NO_ITERATION = 'Train an iteration first: suggestions come from the newest trained one.';
