/** Modal dialogs on the native <dialog>: Escape closes, Tab stays inside, focus returns to the opener. */

import { h, uid } from './dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), '
  + 'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function trapFocus(dialog, event) {
  if (event.key !== 'Tab') return;
  const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    last.focus();
    event.preventDefault();
  } else if (!event.shiftKey && document.activeElement === last) {
    first.focus();
    event.preventDefault();
  }
}

/** Open a modal with a title and content; returns the <dialog> (call .close() to dismiss). */
export function openDialog({ title, content, wide = false, onClose }) {
  const opener = document.activeElement;
  const titleId = uid('dialog-title');
  const close = h('button', { type: 'button', class: 'icon-button dialog-close', 'aria-label': 'Close' }, '×');
  const dialog = h(
    'dialog',
    { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-header' }, h('h2', { id: titleId }, title), close),
    h('div', { class: 'dialog-body' }, content),
  );
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('keydown', (event) => trapFocus(dialog, event));
  dialog.addEventListener('close', () => {
    dialog.remove();
    onClose?.();
    if (opener?.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const autofocus = dialog.querySelector('[autofocus]') || dialog.querySelector('.dialog-body ' + FOCUSABLE);
  autofocus?.focus();
  return dialog;
}

/** An error box inside a dialog or page that screen readers announce. */
export function errorBox() {
  const box = h('div', { class: 'error-box', role: 'alert', hidden: true });
  return {
    element: box,
    show(error) {
      box.replaceChildren(
        error.code ? h('strong', {}, error.code) : null,
        error.code ? ': ' : null,
        error.message || String(error),
      );
      box.hidden = false;
    },
    clear() {
      box.hidden = true;
      box.replaceChildren();
    },
  };
}

/**
 * A dialog holding a form: `onSubmit(form)` runs on submit; the dialog closes when it resolves and shows the
 * API's error (code and message) when it throws.
 */
export function formDialog({ title, fields, submitLabel, danger = false, wide = false, onSubmit, onClose }) {
  const errors = errorBox();
  const submit = h('button', { type: 'submit', class: danger ? 'button danger' : 'button primary' }, submitLabel);
  const cancel = h('button', { type: 'button', class: 'button' }, 'Cancel');
  const form = h(
    'form',
    { class: 'dialog-form', novalidate: false },
    fields,
    errors.element,
    h('div', { class: 'dialog-actions' }, cancel, submit),
  );
  const dialog = openDialog({ title, content: form, wide, onClose });
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.clear();
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(form);
      dialog.close();
    } catch (error) {
      errors.show(error);
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });
  return dialog;
}

/** Ask before a destructive action; `action` runs on confirmation (errors show in the dialog). */
export function confirmDialog({ title, message, confirmLabel, action }) {
  return formDialog({ title, fields: h('p', {}, message), submitLabel: confirmLabel, danger: true, onSubmit: action });
}
