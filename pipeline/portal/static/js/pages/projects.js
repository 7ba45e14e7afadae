/** The Projects page: one card per project with its newest image as thumbnail; create, edit, delete. */

import { api } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { formatDate, h, newestFirst } from '../dom.js';
import { isDetection, loadDomains } from '../domains.js';
import { setCrumbs } from '../layout.js';
import { openProjectForm } from '../project-form.js';
import { announce } from '../status.js';

function projectCard(project, domain, reload) {
  // GetProjects' thumbnailUri (the newest image's): a request per card would queue the next page's requests
  // behind hundreds of them, as browsers open only a few connections per server.
  const picture = h(
    'div',
    { class: 'card-thumb', 'aria-hidden': 'true' },
    project.thumbnailUri ? h('img', { src: project.thumbnailUri, alt: '', loading: 'lazy' }) : null,
  );
  const edit = h('button', { type: 'button', class: 'button small' }, 'Edit');
  const remove = h('button', { type: 'button', class: 'button small danger-text' }, 'Delete');
  edit.setAttribute('aria-label', `Edit ${project.name}`);
  remove.setAttribute('aria-label', `Delete ${project.name}`);
  edit.addEventListener('click', () => openProjectForm(project, reload));
  remove.addEventListener('click', () =>
    confirmDialog({
      title: 'Delete project',
      message: `Delete “${project.name}” with all its images, tags and iterations? This cannot be undone.`,
      confirmLabel: 'Delete project',
      action: async () => {
        await api.del(`/projects/${project.id}`);
        announce(`Deleted ${project.name}.`);
        await reload();
      },
    }));
  const kind = isDetection(domain) ? 'Object Detection' : `Classification · ${project.settings.classificationType}`;
  return h(
    'li',
    { class: 'card project-card' },
    picture,
    h(
      'div',
      { class: 'card-body' },
      h('h2', {}, h('a', { href: `#/projects/${project.id}/images`, class: 'card-link' }, project.name)),
      h('p', { class: 'meta' }, kind, domain ? ` · ${domain.name}` : ''),
      project.description ? h('p', { class: 'description' }, project.description) : null,
      h('p', { class: 'meta' }, `Modified ${formatDate(project.lastModified)}`),
    ),
    h('div', { class: 'card-actions' }, edit, remove),
  );
}

export async function renderProjects(main, signal) {
  setCrumbs([{ label: 'Projects' }]);
  document.title = 'Projects · Seer';
  const list = h('ul', { class: 'card-grid', 'aria-label': 'Projects' });
  const create = h('button', { type: 'button', class: 'button primary' }, '+ New project');
  const reload = async () => {
    const [projects, domains] = await Promise.all([api.get('/projects'), loadDomains()]);
    if (signal.aborted) return;
    empty.hidden = projects.length > 0;
    list.replaceChildren(
      ...projects
        .sort(newestFirst('lastModified'))
        .map((p) => projectCard(p, domains.find((d) => d.id === p.settings.domainId), reload)),
    );
  };
  const openCreate = () =>
    openProjectForm(null, (project) => {
      announce(`Created ${project.name}.`);
      location.hash = `#/projects/${project.id}/images`;
    });
  create.addEventListener('click', openCreate);
  const empty = h('p', { class: 'empty', hidden: true }, 'No projects yet. Choose “New project” to start.');
  main.replaceChildren(
    h(
      'div',
      { class: 'page' },
      h('div', { class: 'page-header' }, h('h1', { tabindex: '-1' }, 'Projects'), create),
      empty,
      list,
    ),
  );
  await reload();
}
