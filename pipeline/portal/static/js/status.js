/** Status messages: a polite live region for progress, an alert banner for errors. */

import { h } from './dom.js';

let hideTimer;

export function announce(message) {
  const region = document.getElementById('status');
  region.textContent = message;
  region.classList.add('visible');
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => region.classList.remove('visible'), 5000);
}

/** Show an API error (code and message) at the top of the page until dismissed. */
export function showError(error) {
  const alerts = document.getElementById('alerts');
  const dismiss = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Dismiss error' }, '×');
  const banner = h(
    'div',
    { class: 'alert', role: 'alert' },
    h('p', {}, error.code ? h('strong', {}, `${error.code}: `) : null, error.message || String(error)),
    dismiss,
  );
  dismiss.addEventListener('click', () => banner.remove());
  alerts.replaceChildren(banner);
}

export function clearErrors() {
  document.getElementById('alerts').replaceChildren();
}
