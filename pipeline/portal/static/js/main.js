/** Boot and hash routing: #/ lists projects, #/projects/{id}/{tab}?... opens a project on a tab. */

import { hasTrainingKey } from './keys.js';
import { openProject } from './pages/project.js';
import { renderProjects } from './pages/projects.js';
import { openSettings } from './settings.js';
import { clearErrors, showError } from './status.js';

const main = document.getElementById('main');
let shell = null;
let navigation = null;
let firstRoute = true;

function parseHash() {
  const [path, search] = location.hash.replace(/^#/, '').split('?');
  return { parts: path.split('/').filter(Boolean), params: new URLSearchParams(search || '') };
}

/** Whether the person moved the focus while the page loaded (e.g. tabbed to a button that was already drawn):
 * then the heading must not take it from them. */
function focusMovedMeanwhile(focusedAtStart) {
  const now = document.activeElement;
  return now !== focusedAtStart && now !== document.body && now?.isConnected;
}

async function route() {
  navigation?.abort();
  navigation = new AbortController();
  const { signal } = navigation;
  const focusedAtStart = document.activeElement;
  clearErrors();
  const { parts, params } = parseHash();
  try {
    if (parts[0] === 'projects' && parts[1]) {
      if (shell?.projectId !== parts[1]) {
        shell?.dispose();
        shell = null;
        shell = await openProject(main, parts[1]);
      }
      if (!signal.aborted) await shell.show(parts[2] || 'images', params, signal);
    } else {
      shell?.dispose();
      shell = null;
      await renderProjects(main, signal);
    }
  } catch (error) {
    if (!signal.aborted) showError(error);
  }
  if (!firstRoute && !signal.aborted && !focusMovedMeanwhile(focusedAtStart)) {
    (main.querySelector('.tab-panel h2[tabindex]') || main.querySelector('h1'))?.focus();
  }
  firstRoute = false;
}

document.getElementById('settings-button').addEventListener('click', () => openSettings(route));
window.addEventListener('seer:unauthorized', () => {
  if (!document.querySelector('dialog[open]')) openSettings(route);
});
window.addEventListener('hashchange', route);
window.addEventListener('seer:project-changed', () => {
  shell?.dispose();
  shell = null;
  route();
});

if (hasTrainingKey()) route();
else openSettings(route);
