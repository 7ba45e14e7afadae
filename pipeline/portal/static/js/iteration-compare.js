/** Two iterations side by side: overall and per-tag precision, recall and AP at one threshold, and the images
 * whose predicted tags changed between them (each iteration's out-of-fold results, matched by image id). */

import { chooseLinked } from './deep-link.js';
import { openDialog } from './dialog.js';
import { debounce, field, h, percent, slider } from './dom.js';
import { imagePerformances, performanceOf, predictedTags } from './iteration-results.js';

const METRICS = [['precision', 'Precision'], ['recall', 'Recall'], ['averagePrecision', 'A.P.']];

function metricCells(a, b) {
  return METRICS.flatMap(([key]) => {
    const change = a && b ? b[key] - a[key] : 0;
    return [
      h('td', {}, a ? percent(a[key]) : '–'),
      h('td', { class: change > 0 ? 'better' : change < 0 ? 'worse' : '' }, b ? percent(b[key]) : '–'),
    ];
  });
}

function metricsTable(ctx, names, a, b) {
  const tags = new Map();
  for (const tag of [...a.perTagPerformance, ...b.perTagPerformance]) tags.set(tag.id, tag.name);
  const perTag = (perf, id) => perf.perTagPerformance.find((t) => t.id === id);
  return h('table', { class: 'per-tag compare' },
    h('caption', {}, `${names[0]} against ${names[1]}`),
    h('thead', {},
      h('tr', {}, h('th', { scope: 'col', rowspan: 2 }, 'Tag'),
        METRICS.map(([, label]) => h('th', { scope: 'colgroup', colspan: 2 }, label))),
      h('tr', {}, METRICS.flatMap(() => names.map((name) => h('th', { scope: 'col' }, name))))),
    h('tbody', {},
      h('tr', { class: 'overall' }, h('th', { scope: 'row' }, ctx.detection ? 'All (mAP)' : 'All'), metricCells(a, b)),
      [...tags].map(([id, name]) => h('tr', {}, h('th', { scope: 'row' }, name), metricCells(perTag(a, id), perTag(b, id))))));
}

function changedImages(ctx, names, imagesA, imagesB, threshold) {
  const byId = new Map(imagesA.map((image) => [image.id, image]));
  const tagName = (id) => ctx.tags.find((t) => t.id === id)?.name || id;
  const said = (image) => predictedTags(ctx, image, threshold).map(tagName).sort().join(', ') || 'nothing';
  const changed = imagesB.filter((image) => byId.has(image.id) && said(byId.get(image.id)) !== said(image));
  const shared = imagesB.filter((image) => byId.has(image.id)).length;
  return h('div', {},
    h('h3', {}, `Images whose prediction changed (${changed.length} of ${shared} in both)`),
    changed.length
      ? h('ul', { class: 'image-grid small', 'aria-label': 'Changed predictions' }, changed.map((image) => {
        const tagged = image.tags.map((t) => t.tagName).join(', ') || 'untagged';
        const text = `Tagged ${tagged}: ${names[0]} predicted ${said(byId.get(image.id))}, ${names[1]} ${said(image)}`;
        return h('li', { class: 'tile compare-tile' },
          h('img', { src: image.thumbnailUri, alt: text, loading: 'lazy' }),
          h('span', { class: 'tile-caption', 'aria-hidden': 'true' }, `tagged ${tagged}`, h('br'),
            `${names[0]}: ${said(byId.get(image.id))}`, h('br'), `${names[1]}: ${said(image)}`));
      }))
      : h('p', { class: 'hint' }, 'Both iterations predict the same tags for every image they share.'));
}

/** Compare `iteration` with one of `others` (Completed iterations of the same project). */
/** Compare `iteration` with one of `others` (`against`, else the first); `onChoice(id)` hears the iteration compared
 * with, and null once the dialog closes (the Performance page keeps it in the address). */
export function openCompareDialog(ctx, iteration, others, { against = null, onChoice = () => {} } = {}) {
  const other = h('select', {}, others.map((i) => h('option', { value: i.id }, i.name)));
  chooseLinked(other, against);
  let threshold = 0.5;
  let latest = 0;
  const body = h('div', { 'aria-live': 'polite' });
  async function render() {
    const mine = ++latest;
    const against = others.find((i) => i.id === other.value);
    body.replaceChildren(h('p', { class: 'loading' }, 'Comparing…'));
    try {
      const [a, b, imagesA, imagesB] = await Promise.all([
        performanceOf(ctx, against, threshold), performanceOf(ctx, iteration, threshold),
        imagePerformances(ctx, against), imagePerformances(ctx, iteration),
      ]);
      if (mine !== latest) return;
      const names = [against.name, iteration.name];
      body.replaceChildren(metricsTable(ctx, names, a, b), changedImages(ctx, names, imagesA, imagesB, threshold));
    } catch (error) {
      if (mine === latest) body.replaceChildren(h('div', { class: 'error-box', role: 'alert' }, `${error.code}: ${error.message}`));
    }
  }
  other.addEventListener('change', () => {
    onChoice(other.value);
    render();
  });
  openDialog({
    title: `Compare ${iteration.name}`,
    wide: true,
    content: h('div', { class: 'iteration-compare' },
      h('div', { class: 'sliders' }, field('Compare with', other), slider('Probability threshold', threshold, debounce((value) => {
        threshold = value;
        render();
      }, 250))),
      body),
    onClose: () => onChoice(null),
  });
  onChoice(other.value);
  render();
}
