/** Choose tags (checkboxes), or create a new one on the spot (POST tags). In a Multiclass project an image has
 * one tag, so ticking one unticks the others. */

import { api } from './api.js';
import { h, uid } from './dom.js';

export function tagPicker(ctx, { legend = 'Tags', selected = [] } = {}) {
  const single = !ctx.multilabel && !ctx.detection;
  const list = h('div', { class: 'tag-choices' });
  const boxes = () => [...list.querySelectorAll('input[type=checkbox]')];
  /** Tick as a click would, so the change listeners below (and onChange's) run. */
  const tick = (input) => {
    input.checked = true;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  };
  list.addEventListener('change', (event) => {
    if (single && event.target.checked) boxes().forEach((other) => { if (other !== event.target) other.checked = false; });
  });
  const addOption = (tag, checked) => {
    const id = uid('tag');
    const input = h('input', { type: 'checkbox', id, value: tag.id, checked });
    list.append(h('div', { class: 'checkbox' }, input, h('label', { for: id }, tag.name)));
    return input;
  };
  ctx.tags.forEach((tag) => addOption(tag, selected.includes(tag.id) && (!single || tag.id === selected[0])));
  const nameId = uid('new-tag');
  const name = h('input', { id: nameId, placeholder: 'e.g. Hemlock', autocomplete: 'off' });
  const add = h('button', { type: 'button', class: 'button small' }, 'Create tag');
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  /** A typed name that is already a tag ticks that tag rather than asking the API for a duplicate. */
  const create = async () => {
    const value = name.value.trim();
    if (!value) return;
    error.hidden = true;
    const existing = ctx.tags.find((tag) => tag.name.toLowerCase() === value.toLowerCase());
    if (existing) {
      tick(boxes().find((input) => input.value === existing.id));
      name.value = '';
      return;
    }
    try {
      const tag = await api.post(`${ctx.base}/tags`, { query: { name: value } });
      ctx.tags.push(tag);
      tick(addOption(tag, false));
      name.value = '';
    } catch (e) {
      error.textContent = `${e.code}: ${e.message}`;
      error.hidden = false;
    }
  };
  add.addEventListener('click', create);
  name.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      create();
    }
  });
  const element = h(
    'fieldset',
    { class: 'tag-picker' },
    h('legend', {}, legend),
    single ? h('p', { class: 'hint' }, 'Multiclass project: one tag per image.') : null,
    list,
    h('div', { class: 'inline-add' }, h('label', { for: nameId }, 'New tag'), name, add),
    error,
  );
  return {
    element,
    selectedIds: () => boxes().filter((input) => input.checked).map((input) => input.value),
    /** Call `listener` whenever the choice changes. */
    onChange: (listener) => list.addEventListener('change', listener),
  };
}
