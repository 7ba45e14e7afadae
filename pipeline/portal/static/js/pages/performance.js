/** Performance: the iterations (left) and the selected one's precision, recall and AP, overall and per tag, at a
 * threshold chosen with sliders (recomputed by the API); PR curve, confusion matrix and per-image results. */

import { api } from '../api.js';
import { rememberView } from '../deep-link.js';
import { confirmDialog, formDialog, openDialog } from '../dialog.js';
import { debounce, field, formatDate, h, newestFirst, percent, slider } from '../dom.js';
import { confusionMatrix, precisionRecallCurve } from '../charts.js';
import { predictionView } from '../prediction-view.js';
import { openExportDialog } from '../export.js';
import { openCompareDialog } from '../iteration-compare.js';
import {
  detectionResult, imagePerformances, performanceOf, predictedTags, trainedTagCounts,
} from '../iteration-results.js';
import { confirmUnpublish, openPredictionUrlDialog, openPublishDialog, publishedLabel } from '../publish.js';
import { announce, showError } from '../status.js';

const CURVE_THRESHOLDS = Array.from({ length: 11 }, (_, i) => i / 10);

function isWrong(ctx, image, threshold) {
  const truth = new Set(image.tags.map((t) => t.tagId));
  const predicted = predictedTags(ctx, image, threshold);
  return predicted.length !== truth.size || predicted.some((id) => !truth.has(id));
}

function metric(label, value, deviation) {
  return h('div', { class: 'metric' }, h('span', { class: 'metric-value' }, percent(value)),
    h('span', { class: 'metric-label' }, label),
    deviation ? h('span', { class: 'metric-deviation' }, `± ${percent(deviation)}`) : null);
}

function iterationButton(iteration, selected, onSelect) {
  const button = h('button', { type: 'button', class: 'iteration', 'aria-current': selected ? 'true' : null },
    h('span', { class: 'iteration-name' }, iteration.name),
    h('span', { class: `status status-${iteration.status.toLowerCase()}` }, iteration.status),
    iteration.publishName ? h('span', { class: 'published' }, publishedLabel(iteration)) : null,
    h('span', { class: 'meta' }, formatDate(iteration.trainedAt || iteration.created)));
  button.addEventListener('click', onSelect);
  return h('li', {}, button);
}

/** The details of one completed iteration, re-rendered as the sliders move. A stale call (another iteration was
 * chosen meanwhile) only writes into its own, detached container. */
async function renderMetrics(container, ctx, iteration, signal) {
  let threshold = 0.5;
  let overlap = 0.5;
  let requestNumber = 0;
  let curvePoints = [];
  let images = null;
  // The iteration's own training set, not today's tags: GetTags with iterationId counts what it trained on.
  const trainedCounts = await trainedTagCounts(ctx, iteration.id);
  const metrics = h('div', { class: 'metrics', 'aria-live': 'polite' });
  const perTag = h('div', { class: 'table-wrap' });
  const curve = h('div', { class: 'chart' });
  const matrix = h('div', { class: 'table-wrap' });
  const results = h('div', {});

  async function loadCurve() {
    curvePoints = await Promise.all(CURVE_THRESHOLDS.map(async (t) => {
      const p = await performanceOf(ctx, iteration, t, overlap);
      return { threshold: t, precision: p.precision, recall: p.recall };
    }));
  }

  /** One image's result at the sliders' settings: whether it is wrong, its caption and its full description. */
  function outcome(image) {
    if (ctx.detection) {
      const r = detectionResult(image, threshold, overlap);
      const wrong = r.missed > 0 || r.extra > 0;
      const mistakes = [r.missed && `${r.missed} missed`, r.extra && `${r.extra} extra`].filter(Boolean).join(', ');
      return {
        wrong,
        caption: wrong ? `✗ ${mistakes}` : `✓ ${r.found} found`,
        text: `${wrong ? 'Wrong' : 'Correct'}: ${image.regions.length} regions, ${r.found} found`
          + `${wrong ? `, ${mistakes}` : ''}`,
        title: `${image.regions.length} region${image.regions.length === 1 ? '' : 's'}`,
      };
    }
    const wrong = isWrong(ctx, image, threshold);
    const predicted = predictedTags(ctx, image, threshold).map((id) => ctx.tags.find((t) => t.id === id)?.name);
    const tagged = image.tags.map((t) => t.tagName).join(', ');
    return {
      wrong,
      caption: wrong ? `✗ ${predicted.join(', ') || 'none'}` : `✓ ${tagged}`,
      text: `${wrong ? 'Wrong' : 'Correct'}: tagged ${tagged}; predicted ${predicted.join(', ') || 'nothing'}`,
      title: `Tagged ${tagged}`,
    };
  }

  function renderImages() {
    if (!images) return;
    const outcomes = new Map(images.map((image) => [image, outcome(image)]));
    const sorted = [...images].sort((a, b) => outcomes.get(b).wrong - outcomes.get(a).wrong);
    const wrongCount = images.filter((i) => outcomes.get(i).wrong).length;
    if (!ctx.multilabel && !ctx.detection) {
      const labels = ctx.tags.filter((t) => images.some((i) => i.tags.some((tag) => tag.tagId === t.id)));
      matrix.replaceChildren(confusionMatrix(labels, images.map((i) => ({
        actual: i.tags[0]?.tagId, predicted: predictedTags(ctx, i, threshold)[0] || '' }))));
    }
    results.replaceChildren(
      h('h3', {}, `Per-image results (${wrongCount} of ${images.length} wrong at ${percent(threshold)})`),
      h('ul', { class: 'image-grid small', 'aria-label': 'Per-image results' }, sorted.map((image) => {
        const { wrong, caption, text, title } = outcomes.get(image);
        const open = h('button', { type: 'button', class: 'tile-open', 'aria-label': text },
          h('img', { src: image.thumbnailUri, alt: '', loading: 'lazy' }));
        open.addEventListener('click', () => openDialog({
          title,
          wide: true,
          content: predictionView({ src: image.imageUri, predictions: image.predictions, detection: ctx.detection, threshold }),
        }));
        return h('li', { class: `tile${wrong ? ' wrong' : ''}` }, open, h('span', { class: 'tile-caption' }, caption));
      })),
    );
  }

  async function refresh() {
    const mine = ++requestNumber;
    const performance = await performanceOf(ctx, iteration, threshold, overlap);
    if (mine !== requestNumber || signal.aborted) return;
    metrics.replaceChildren(
      metric('Precision', performance.precision, performance.precisionStdDeviation),
      metric('Recall', performance.recall, performance.recallStdDeviation),
      metric(ctx.detection ? 'mAP' : 'AP', performance.averagePrecision),
    );
    perTag.replaceChildren(h('table', { class: 'per-tag' },
      h('caption', {}, 'Performance per tag'),
      h('thead', {}, h('tr', {}, ['Tag', 'Precision', 'Recall', 'A.P.', 'Images trained on']
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, performance.perTagPerformance.map((tag) => h('tr', {},
        h('th', { scope: 'row' }, tag.name), h('td', {}, percent(tag.precision)), h('td', {}, percent(tag.recall)),
        h('td', {}, percent(tag.averagePrecision)),
        h('td', {}, trainedCounts.get(tag.id) ?? '')))),
    ));
    const current = { threshold, precision: performance.precision, recall: performance.recall };
    curve.replaceChildren(h('h3', {}, 'Precision-recall curve'), precisionRecallCurve(curvePoints, current));
    renderImages();
  }

  const onThreshold = debounce(async (value) => {
    threshold = value;
    await refresh();
  }, 250);
  const onOverlap = debounce(async (value) => {
    overlap = value;
    await loadCurve();
    await refresh();
  }, 250);
  const calibration = iteration.calibration;
  container.append(...[ // Element.append would show a null as the text "null"
    h('div', { class: 'sliders' },
      slider('Probability threshold', threshold, onThreshold),
      ctx.detection ? slider('Overlap threshold', overlap, onOverlap) : null),
    calibration ? h('p', { class: 'hint' }, `Probabilities calibrated out of fold (temperature ${calibration.temperature.toFixed(2)}): `
      + `expected calibration error ${percent(calibration.expectedCalibrationErrorBefore)} → ${percent(calibration.expectedCalibrationErrorAfter)}. `
      + `Unknown threshold ${calibration.unknownThreshold.toFixed(3)} (${percent(calibration.unknownTrainingRate)} of training images above it).`) : null,
    metrics, perTag, h('div', { class: 'charts' }, curve, matrix), results,
  ].filter(Boolean));
  await loadCurve();
  await refresh();
  images = await imagePerformances(ctx, iteration);
  renderImages();
}

const DECISIONS = {
  Published: 'published in place of',
  KeptChampion: 'kept unpublished: it did not score better than',
  NoChampion: 'not published: no iteration was published to compare with',
};

/** A scheduled retrain's outcome when its project publishes better retrains (Seer's extension fields). */
function retrainDecision(iteration, iterations) {
  if (!iteration.publishDecision) return null;
  const champion = iterations.find((i) => i.id === iteration.championIterationId);
  const against = iteration.championIterationId ? ` ${champion?.name || 'an iteration since deleted'}` : '';
  const scores = iteration.championScore == null
    ? `its mean AP out of fold ${percent(iteration.challengerScore)}`
    : `mean AP out of fold on the same images ${percent(iteration.challengerScore)} against ${percent(iteration.championScore)}`;
  return h('p', { class: 'retrain-decision', 'data-decision': iteration.publishDecision },
    h('strong', {}, 'Scheduled retrain: '), `${DECISIONS[iteration.publishDecision] || iteration.publishDecision}${against}; ${scores}.`);
}

/** The other Completed iterations `iteration` can be compared with. */
const comparable = (iteration, iterations) => iterations.filter((i) => i.id !== iteration.id && i.status === 'Completed');

/** `onCompare(others)` opens the comparison with one of `others`. */
function iterationActions(ctx, iteration, iterations, reload, onCompare) {
  const rename = h('button', { type: 'button', class: 'button small' }, 'Rename');
  rename.addEventListener('click', () => {
    const name = h('input', { value: iteration.name, required: true, autofocus: true });
    formDialog({
      title: 'Rename iteration',
      fields: field('Name', name),
      submitLabel: 'Save',
      onSubmit: async () => {
        await api.patch(`${ctx.base}/iterations/${iteration.id}`, { name: name.value });
        await reload(iteration.id);
      },
    });
  });
  const remove = h('button', { type: 'button', class: 'button small danger-text' }, 'Delete');
  remove.addEventListener('click', () => confirmDialog({
    title: 'Delete iteration',
    message: `Delete ${iteration.name} and its model?`,
    confirmLabel: 'Delete iteration',
    action: async () => {
      await api.del(`${ctx.base}/iterations/${iteration.id}`);
      announce(`${iteration.name} deleted.`);
      await reload(null);
    },
  }));
  const completed = iteration.status === 'Completed';
  const publish = h('button', { type: 'button', class: 'button small primary', hidden: !completed }, 
    iteration.publishName ? 'Unpublish' : 'Publish');
  publish.addEventListener('click', () => (iteration.publishName
    ? confirmUnpublish(ctx, iteration, () => reload(iteration.id))
    : openPublishDialog(ctx, iteration, () => reload(iteration.id)).catch(showError)));
  const url = h('button', { type: 'button', class: 'button small', hidden: !iteration.publishName }, 'Prediction URL');
  url.addEventListener('click', () => openPredictionUrlDialog(ctx, iteration));
  const exportButton = h('button', { type: 'button', class: 'button small', hidden: !iteration.exportable }, 'Export');
  exportButton.addEventListener('click', () => openExportDialog(ctx, iteration));
  const others = comparable(iteration, iterations);
  const compare = h('button', { type: 'button', class: 'button small', hidden: !completed || !others.length }, 'Compare');
  compare.addEventListener('click', () => onCompare(others));
  return h('div', { class: 'iteration-actions' }, publish, url, exportButton, compare, rename, remove);
}

export async function renderPerformance(panel, ctx, params, signal) {
  const list = h('ul', { class: 'iteration-list' });
  const detail = h('div', { class: 'main-panel' });
  let iterations = [];
  // The view lives in the address: #/projects/{id}/performance?iteration={id}&compare={id} (compare: the open
  // comparison's other iteration).
  let selectedId = params.get('iteration');
  let compareId = null;
  const remember = () => rememberView(ctx, 'performance', { iteration: selectedId, compare: compareId });
  const openCompare = (iteration, others, against = null) => openCompareDialog(ctx, iteration, others, {
    against,
    onChoice: (id) => {
      if (signal.aborted) return; // the page was left while the dialog stayed open
      compareId = id;
      remember();
    },
  });

  async function reload(id) {
    selectedId = id;
    iterations = (await api.get(`${ctx.base}/iterations`)).sort(newestFirst('created'));
    await ctx.loadTags();
    render();
  }

  function render() {
    const selected = iterations.find((i) => i.id === selectedId) || iterations[0];
    list.replaceChildren(...iterations.map((i) => iterationButton(i, i === selected, () => {
      selectedId = i.id;
      remember();
      render();
    })));
    if (!selected) {
      detail.replaceChildren(h('h2', { tabindex: '-1' }, 'Performance'),
        h('p', { class: 'empty' }, 'No iterations yet. Add images with at least two tags, then choose Train.'));
      return;
    }
    detail.replaceChildren(
      h('div', { class: 'detail-header' },
        h('h2', { tabindex: '-1' }, selected.name),
        iterationActions(ctx, selected, iterations, reload, (others) => openCompare(selected, others))),
      h('p', { class: 'meta' }, `${selected.trainingType === 'Advanced' ? 'Advanced' : 'Quick'} training · `,
        selected.scheduled ? 'scheduled · ' : '',
        selected.trainedAt ? `trained ${formatDate(selected.trainedAt)}` : `started ${formatDate(selected.created)}`,
        selected.publishName ? ` · published as ${selected.publishName}` : ''),
      retrainDecision(selected, iterations) || '', // replaceChildren would show a null as the text "null"
    );
    if (selected.status === 'Training') {
      detail.append(h('p', { class: 'training-progress', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        `${selected.name} is training… this page updates by itself.`));
    } else if (selected.status === 'Failed') {
      detail.append(h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Training failed: '),
        selected.trainingErrorDetails || 'no details were given.'));
    } else if (selected.status === 'Completed') {
      const body = h('div', {});
      detail.append(body);
      renderMetrics(body, ctx, selected, signal).catch((error) =>
        body.append(h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, `${error.code}: `), error.message)));
    }
  }

  ctx.events.addEventListener('iteration', (event) => {
    const updated = event.detail;
    const index = iterations.findIndex((i) => i.id === updated.id);
    const changed = index < 0 || iterations[index].status !== updated.status;
    if (!changed) return;
    if (index < 0) iterations.unshift(updated);
    else iterations[index] = updated;
    render();
  }, { signal });

  panel.replaceChildren(h('div', { class: 'workspace' },
    h('aside', { class: 'side-panel', 'aria-labelledby': 'iterations-heading' }, h('h2', { id: 'iterations-heading' }, 'Iterations'), list),
    detail));
  await reload(selectedId);
  const linked = params.get('compare');
  const selected = iterations.find((i) => i.id === selectedId) || iterations[0];
  const others = selected?.status === 'Completed' ? comparable(selected, iterations) : [];
  if (!signal.aborted && linked && others.some((i) => i.id === linked)) openCompare(selected, others, linked);
}
