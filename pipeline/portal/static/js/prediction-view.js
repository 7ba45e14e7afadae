/** An image with its predictions: tags sorted by probability, and for detection the boxes drawn over it. With the
 * project's unknownDetection on, a prediction's `unknown` says whether the image is none of the tags. */

import { h, percent, placeBox } from './dom.js';

function box(prediction) {
  const el = h('div', { class: 'prediction-box', 'aria-hidden': 'true' },
    h('span', {}, `${prediction.tagName} ${percent(prediction.probability)}`));
  placeBox(el, prediction.boundingBox);
  return el;
}

export function unknownCaption(unknown) {
  return unknown?.isUnknown ? 'Unknown (none of the tags)' : null;
}

function unknownNotice(unknown) {
  if (!unknown) return null;
  const score = `unknown score ${unknown.score.toFixed(3)}, threshold ${unknown.threshold.toFixed(3)}`;
  return unknown.isUnknown
    ? h('p', { class: 'unknown-verdict', role: 'status' }, h('strong', {}, unknownCaption(unknown)),
      h('span', { class: 'hint' }, ` This image is unlike the training images (${score}); the probabilities below are still the model's.`))
    : h('p', { class: 'hint' }, `Like the training images (${score}).`);
}

export function predictionView({ src, alt = 'Tested image', predictions, detection = false, threshold = 0, unknown = null }) {
  const sorted = [...predictions].sort((a, b) => b.probability - a.probability);
  const shown = detection ? sorted.filter((p) => p.probability >= threshold) : sorted;
  const figure = h('div', { class: 'prediction-figure' }, h('img', { src, alt }),
    detection ? shown.filter((p) => p.boundingBox).map(box) : null);
  const table = h(
    'table',
    { class: 'predictions-table' },
    h('caption', {}, detection ? `Objects with probability ≥ ${percent(threshold)}` : 'Predictions'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tag'), h('th', { scope: 'col' }, 'Probability'))),
    h('tbody', {}, shown.map((p) => {
      const bar = h('span', { class: 'bar' });
      bar.style.setProperty('--value', p.probability);
      return h('tr', {}, h('td', {}, p.tagName), h('td', { class: 'probability' }, bar, percent(p.probability)));
    })),
  );
  if (!shown.length) table.append(h('tbody', {}, h('tr', {}, h('td', { colspan: 2 }, 'Nothing above the threshold.'))));
  return h('div', { class: 'prediction-view' }, figure, h('div', {}, unknownNotice(unknown), table));
}
