/** Training: the Train dialog (Quick or Advanced) and the poller that follows an iteration until it finishes. */

import { api } from './api.js';
import { formDialog } from './dialog.js';
import { field, h, uid } from './dom.js';
import { announce } from './status.js';

const POLL_MS = 2000;

export function openTrainDialog(ctx) {
  const quickId = uid('train');
  const advancedId = uid('train');
  const budget = h('input', { type: 'number', name: 'budget', min: 1, max: 24, value: 1, inputmode: 'numeric' });
  const budgetField = field('Training budget (hours)', budget, 'Training stops when it stops improving or the budget is spent.');
  budgetField.hidden = true;
  const option = (id, value, label, hint) =>
    h(
      'div',
      { class: 'radio' },
      h('input', { type: 'radio', id, name: 'trainingType', value, checked: value === 'Regular' }),
      h('label', { for: id }, h('span', {}, label), h('span', { class: 'hint' }, hint)),
    );
  const types = h(
    'fieldset',
    { class: 'radio-group' },
    h('legend', {}, 'Choose training type'),
    option(quickId, 'Regular', 'Quick Training', 'Fast; good for trying out a project.'),
    option(advancedId, 'Advanced', 'Advanced Training', 'Trains longer with a budget you set.'),
  );
  const chosen = () => types.querySelector('input:checked').value;
  types.addEventListener('change', () => {
    budgetField.hidden = chosen() !== 'Advanced';
  });
  formDialog({
    title: 'Train',
    fields: h('div', {}, types, budgetField),
    submitLabel: 'Train',
    onSubmit: async () => {
      const advanced = chosen() === 'Advanced';
      const iteration = await api.post(`${ctx.base}/train`, {
        query: { trainingType: chosen(), reservedBudgetInHours: advanced ? budget.value : undefined },
      });
      announce(`${iteration.name} is training.`);
      ctx.track(iteration);
      location.hash = `#/projects/${ctx.project.id}/performance?iteration=${iteration.id}`;
    },
  });
}

/**
 * Follow iterations while they train: GET iterations/{id} every 2 s until Completed or Failed. Each update is
 * dispatched on `events` as an `iteration` event; stops when `signal` aborts.
 */
export class TrainingTracker {
  constructor(base, events, signal) {
    this.base = base;
    this.events = events;
    this.signal = signal;
    this.watching = new Set();
  }

  track(iteration) {
    if (iteration.status !== 'Training' || this.watching.has(iteration.id)) return;
    this.watching.add(iteration.id);
    this.poll(iteration.id);
  }

  async poll(id) {
    while (!this.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (this.signal.aborted) break;
      let iteration;
      try {
        iteration = await api.get(`${this.base}/iterations/${id}`);
      } catch (error) {
        if (error.status === 404) break;
        continue;
      }
      this.events.dispatchEvent(new CustomEvent('iteration', { detail: iteration }));
      if (iteration.status !== 'Training') {
        announce(iteration.status === 'Completed'
          ? `${iteration.name} finished training.`
          : `${iteration.name} failed: ${iteration.trainingErrorDetails || 'no details'}`);
        break;
      }
    }
    this.watching.delete(id);
  }
}
