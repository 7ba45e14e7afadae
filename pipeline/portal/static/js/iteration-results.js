/** An iteration's evaluation as the API gives it: performance at a threshold, the per-image results, and the
 * tags a result predicts. Shared by the Performance page and the iteration comparison. */

import { api } from './api.js';

const IMAGE_PAGE = 100;

export const performanceOf = (ctx, iteration, threshold, overlap = 0.5) =>
  api.get(`${ctx.base}/iterations/${iteration.id}/performance`, { threshold, overlapThreshold: ctx.detection ? overlap : undefined });

/** Every image's out-of-fold result (GetImagePerformances, page by page). */
export async function imagePerformances(ctx, iteration) {
  const all = [];
  for (;;) {
    const page = await api.get(`${ctx.base}/iterations/${iteration.id}/performance/images`, { take: IMAGE_PAGE, skip: all.length });
    all.push(...page);
    if (page.length < IMAGE_PAGE) return all;
  }
}

/** The tags the model predicts at `threshold` (Multiclass: the top one if it is above the threshold; a detector:
 * every tag with a box at or above it). */
export function predictedTags(ctx, image, threshold) {
  const above = image.predictions.filter((p) => p.probability >= threshold);
  if (ctx.multilabel || ctx.detection) return [...new Set(above.map((p) => p.tagId))];
  const top = above.sort((a, b) => b.probability - a.probability)[0];
  return top ? [top.tagId] : [];
}
