/** A <select> of the project's trained iterations (newest first), for Quick Test and Predictions. */

import { api } from './api.js';
import { field, h, newestFirst } from './dom.js';

/** The project's Completed iterations, newest first. */
export async function trainedIterations(ctx) {
  return (await api.get(`${ctx.base}/iterations`))
    .filter((i) => i.status === 'Completed')
    .sort(newestFirst('created'));
}

export async function iterationSelect(ctx, { label = 'Iteration', includeAll = false, allLabel = 'All iterations' } = {}) {
  const iterations = await trainedIterations(ctx);
  const select = h('select', {},
    includeAll ? h('option', { value: '' }, allLabel) : null,
    iterations.map((i) => h('option', { value: i.id }, i.publishName ? `${i.name} (published as ${i.publishName})` : i.name)));
  return { element: field(label, select), select, iterations };
}
