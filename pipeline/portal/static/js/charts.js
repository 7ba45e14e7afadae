/** Charts drawn as inline SVG / tables: the precision-recall curve and the confusion matrix. */

import { h, percent, svg } from './dom.js';

const W = 320;
const H = 240;
const PAD = { left: 44, right: 22, top: 12, bottom: 40 }; // right: room for the "100%" tick's second half
const x = (recall) => PAD.left + recall * (W - PAD.left - PAD.right);
const y = (precision) => H - PAD.bottom - precision * (H - PAD.top - PAD.bottom);

/** `points`: [{threshold, precision, recall}] from the API; `current`: the point at the chosen threshold, which
 * the curve passes through (between the sampled thresholds a straight segment would miss it). Thresholds at which
 * nothing is predicted (recall 0) have no precision to draw and are left out, the current one too. */
export function precisionRecallCurve(points, current) {
  const shown = current?.recall > 0 ? current : null;
  const sorted = [...points, ...(shown ? [shown] : [])].filter((p) => p.recall > 0)
    .sort((a, b) => a.recall - b.recall || b.precision - a.precision);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const description = sorted.map((p) => `threshold ${percent(p.threshold)}: precision ${percent(p.precision)}, `
    + `recall ${percent(p.recall)}`).join('; ');
  return svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'pr-curve', role: 'img', 'aria-label': `Precision-recall curve. ${description}` },
    ticks.map((t) => [
      svg('line', { x1: x(0), x2: x(1), y1: y(t), y2: y(t), class: 'grid-line' }),
      svg('line', { x1: x(t), x2: x(t), y1: y(0), y2: y(1), class: 'grid-line' }),
      svg('text', { x: PAD.left - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, `${t * 100}%`),
      svg('text', { x: x(t), y: H - PAD.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, `${t * 100}%`),
    ]),
    svg('text', { x: x(0.5), y: H - 4, class: 'axis-label', 'text-anchor': 'middle' }, 'Recall'),
    svg('text', { x: 12, y: y(0.5), class: 'axis-label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${y(0.5)})` },
      'Precision'),
    svg('polyline', { class: 'curve', points: sorted.map((p) => `${x(p.recall)},${y(p.precision)}`).join(' ') }),
    sorted.map((p) => svg('circle', { cx: x(p.recall), cy: y(p.precision), r: 3, class: 'point' },
      svg('title', {}, `Threshold ${percent(p.threshold)}`))),
    shown
      ? svg('circle', { cx: x(shown.recall), cy: y(shown.precision), r: 6, class: 'current-point' },
        svg('title', {}, `Current threshold ${percent(shown.threshold)}`))
      : null,
  );
}

/** A table of counts: rows are the tagged (actual) tag, columns the predicted one; `None` is below threshold. */
export function confusionMatrix(labels, pairs) {
  const columns = [...labels, { id: '', name: 'None' }];
  const count = (actual, predicted) => pairs.filter((p) => p.actual === actual && p.predicted === predicted).length;
  return h(
    'table',
    { class: 'confusion' },
    h('caption', {}, 'Confusion matrix', h('span', { class: 'hint' }, ' (rows: tagged, columns: predicted)')),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tagged \\ Predicted'),
      columns.map((c) => h('th', { scope: 'col' }, c.name)))),
    h('tbody', {}, labels.map((row) => {
      const total = pairs.filter((p) => p.actual === row.id).length || 1;
      return h('tr', {}, h('th', { scope: 'row' }, row.name), columns.map((column) => {
        const n = count(row.id, column.id);
        const cell = h('td', { class: column.id === row.id ? 'diagonal' : '' }, n);
        cell.style.setProperty('--share', n / total);
        return cell;
      }));
    })),
  );
}
