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

/** Each tag's image count in the training set `iterationId` was trained on (GetTags with iterationId), by tag id;
 * tags it did not train on are absent. */
export async function trainedTagCounts(ctx, iterationId) {
  const tags = await api.get(`${ctx.base}/tags`, { iterationId });
  return new Map(tags.map((tag) => [tag.id, tag.imageCount]));
}

/** Overlap (intersection over union) of two {left, top, width, height} boxes. */
function iou(a, b) {
  const width = Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left));
  const height = Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));
  const inter = width * height;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/** A detector's result on one image at `threshold` and `overlap`, as mAP counts it: each true region found by a
 * box of its tag overlapping it by at least `overlap` (likeliest boxes first, each box used once); `missed`
 * regions and `extra` boxes are the mistakes. */
export function detectionResult(image, threshold, overlap) {
  const boxes = image.predictions.filter((p) => p.probability >= threshold && p.boundingBox)
    .sort((a, b) => b.probability - a.probability);
  const unmatched = new Set(image.regions.map((_, i) => i));
  let extra = 0;
  for (const box of boxes) {
    const match = [...unmatched].find((i) => image.regions[i].tagId === box.tagId
      && iou(image.regions[i], box.boundingBox) >= overlap);
    if (match === undefined) extra += 1;
    else unmatched.delete(match);
  }
  return { found: image.regions.length - unmatched.size, missed: unmatched.size, extra };
}
