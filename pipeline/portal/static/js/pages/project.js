/** A project: header with name and Train, tabs (Training Images, Performance, Predictions, Quick Test). */

import { api } from '../api.js';
import { h } from '../dom.js';
import { isDetection, loadDomains } from '../domains.js';
import { setCrumbs } from '../layout.js';
import { openProjectForm } from '../project-form.js';
import { announce } from '../status.js';
import { openTrainDialog, TrainingTracker } from '../training.js';
import { renderImages } from './images.js';
import { renderPerformance } from './performance.js';
import { renderPredictions } from './predictions.js';
import { renderQuickTest } from './quicktest.js';

const TABS = [
  ['images', 'Training Images', renderImages],
  ['performance', 'Performance', renderPerformance],
  ['predictions', 'Predictions', renderPredictions],
  ['quicktest', 'Quick Test', renderQuickTest],
];

function trainingBadge(ctx) {
  const badge = h('span', { class: 'training-badge', hidden: true });
  const training = new Map();
  const update = (iteration) => {
    if (iteration.status === 'Training') training.set(iteration.id, iteration.name);
    else training.delete(iteration.id);
    badge.hidden = training.size === 0;
    badge.textContent = `Training ${[...training.values()].join(', ')}…`;
  };
  ctx.events.addEventListener('iteration', (event) => update(event.detail));
  return badge;
}

/** Load the project and build its frame; `show(tab, params, signal)` renders a tab inside it. */
export async function openProject(main, projectId) {
  const [project, domains, tags] = await Promise.all([
    api.get(`/projects/${projectId}`),
    loadDomains(),
    api.get(`/projects/${projectId}/tags`),
  ]);
  const lifetime = new AbortController();
  const domain = domains.find((d) => d.id === project.settings.domainId);
  const events = new EventTarget();
  const ctx = {
    project,
    domain,
    base: `/projects/${project.id}`,
    detection: isDetection(domain),
    multilabel: project.settings.classificationType === 'Multilabel',
    events,
    tags,
    async loadTags() {
      ctx.tags = await api.get(`${ctx.base}/tags`);
      return ctx.tags;
    },
    track(iteration) {
      events.dispatchEvent(new CustomEvent('iteration', { detail: iteration }));
      tracker.track(iteration);
    },
  };
  const tracker = new TrainingTracker(ctx.base, events, lifetime.signal);
  const train = h('button', { type: 'button', class: 'button train' }, h('span', { 'aria-hidden': 'true' }, '⚙ '), 'Train');
  train.addEventListener('click', () => openTrainDialog(ctx));
  // Saved settings can change the name, type and domain the whole frame was built from: main.js builds it again.
  const settings = h('button', { type: 'button', class: 'button' }, 'Project settings');
  settings.addEventListener('click', () => openProjectForm(project, () => {
    announce('Project settings saved.');
    window.dispatchEvent(new Event('seer:project-changed'));
  }));
  const links = TABS.map(([id, label]) => h('a', { href: `#/projects/${project.id}/${id}`, 'data-tab': id }, label));
  const panel = h('section', { class: 'tab-panel' });
  const kind = ctx.detection ? 'Object Detection' : `Classification · ${project.settings.classificationType}`;
  main.replaceChildren(
    h(
      'div',
      { class: 'project' },
      h(
        'div',
        { class: 'project-header' },
        h(
          'div',
          { class: 'project-title' },
          h('h1', { tabindex: '-1' }, project.name),
          h('p', { class: 'meta' }, kind, domain ? ` · ${domain.name}` : ''),
        ),
        h('div', { class: 'project-actions' }, trainingBadge(ctx), settings, train),
      ),
      h('nav', { class: 'tabs', 'aria-label': 'Project sections' }, links),
      panel,
    ),
  );
  setCrumbs([{ label: 'Projects', href: '#/' }, { label: project.name }]);
  // Iterations already training are followed (the badge, live status) once the first tab is drawn, so that this
  // request does not compete with the tab's own.
  let following = false;
  const followTraining = () => {
    if (following) return;
    following = true;
    api.get(`${ctx.base}/iterations`).then((iterations) => iterations.forEach((i) => ctx.track(i))).catch(() => {});
  };

  return {
    projectId,
    async show(tab, params, signal) {
      const entry = TABS.find(([id]) => id === tab) || TABS[0];
      for (const link of links) {
        if (link.dataset.tab === entry[0]) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
      document.title = `${entry[1]} · ${project.name} · Seer`;
      panel.setAttribute('aria-label', entry[1]);
      panel.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
      await entry[2](panel, ctx, params, signal);
      followTraining();
    },
    dispose() {
      lifetime.abort();
    },
  };
}
