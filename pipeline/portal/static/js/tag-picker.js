/** Choose tags (checkboxes), or create a new one on the spot (POST tags). */

import { api } from './api.js';
import { h, uid } from './dom.js';

export function tagPicker(ctx, { legend = 'Tags', selected = [] } = {}) {
  const list = h('div', { class: 'tag-choices' });
  const addOption = (tag, checked) => {
    const id = uid('tag');
    list.append(h('div', { class: 'checkbox' },
      h('input', { type: 'checkbox', id, value: tag.id, checked }), h('label', { for: id }, tag.name)));
  };
  ctx.tags.forEach((tag) => addOption(tag, selected.includes(tag.id)));
  const nameId = uid('new-tag');
  const name = h('input', { id: nameId, placeholder: 'e.g. Hemlock', autocomplete: 'off' });
  const add = h('button', { type: 'button', class: 'button small' }, 'Create tag');
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const create = async () => {
    const value = name.value.trim();
    if (!value) return;
    error.hidden = true;
    try {
      const tag = await api.post(`${ctx.base}/tags`, { query: { name: value } });
      ctx.tags.push(tag);
      addOption(tag, true);
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
    list,
    h('div', { class: 'inline-add' }, h('label', { for: nameId }, 'New tag'), name, add),
    error,
  );
  return {
    element,
    selectedIds: () => [...list.querySelectorAll('input:checked')].map((input) => input.value),
  };
}
