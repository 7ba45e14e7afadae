/** The create/edit project dialog: name, description, project type, classification type and domain; when editing,
 * Seer's `publishBetterRetrains` (scheduled retrains replace the published iteration only when they score better). */

import { api } from './api.js';
import { formDialog } from './dialog.js';
import { field, h, uid } from './dom.js';
import { loadDomains } from './domains.js';

function radioGroup(legend, name, options, checked) {
  return h(
    'fieldset',
    { class: 'radio-group' },
    h('legend', {}, legend),
    options.map(([value, label, hint]) => {
      const id = uid(name);
      return h(
        'div',
        { class: 'radio' },
        h('input', { type: 'radio', id, name, value, checked: value === checked }),
        h('label', { for: id }, h('span', {}, label), hint ? h('span', { class: 'hint' }, hint) : null),
      );
    }),
  );
}

/** Open the dialog; `project` edits an existing project, otherwise one is created. `onSaved(project)` after. */
export async function openProjectForm(project, onSaved) {
  const domains = await loadDomains();
  const current = domains.find((d) => d.id === project?.settings.domainId);
  const name = h('input', { name: 'name', required: true, maxlength: 200, value: project?.name || '', autofocus: true });
  const description = h('textarea', { name: 'description', rows: 2 }, project?.description || '');
  const projectType = radioGroup('Project type', 'projectType', [
    ['Classification', 'Classification', 'What is in the image?'],
    ['ObjectDetection', 'Object Detection', 'Where are the objects?'],
  ], current?.type || 'Classification');
  const classificationType = radioGroup('Classification type', 'classificationType', [
    ['Multiclass', 'Multiclass (single tag per image)'],
    ['Multilabel', 'Multilabel (multiple tags per image)'],
  ], project?.settings.classificationType || 'Multiclass');
  const domain = h('select', { name: 'domainId' });
  const betterRetrains = h('input', { type: 'checkbox', name: 'publishBetterRetrains',
    checked: Boolean(project?.settings.publishBetterRetrains) });
  const retrainHint = 'After each scheduled retrain, the new iteration takes the published one\'s name and prediction '
    + 'resource only if it scores better out of fold on the same images.';
  const unknownDetection = h('input', { type: 'checkbox', name: 'unknownDetection', checked: Boolean(project?.settings.unknownDetection) });
  const unknownField = h('label', { class: 'checkbox' }, unknownDetection,
    ' Say when an image is none of the tags (Seer\'s unknown detection; predictions add "unknown")');
  const fields = h(
    'div',
    {},
    field('Name', name),
    field('Description', description),
    projectType,
    classificationType,
    field('Domain', domain, 'Compact domains export to ONNX and run on small devices.'),
    project ? h('div', { class: 'field' }, h('label', { class: 'checkbox' }, betterRetrains,
      ' Publish scheduled retrains that score better'), h('p', { class: 'hint' }, retrainHint)) : null,
    unknownField,
  );
  const checked = (group) => group.querySelector('input:checked').value;

  function refresh() {
    const type = checked(projectType);
    classificationType.hidden = type !== 'Classification';
    unknownField.hidden = type !== 'Classification';
    const chosen = domain.value || current?.id;
    const options = domains.filter((d) => d.type === type && d.enabled);
    domain.replaceChildren(...options.map((d) => h('option', { value: d.id }, d.name)));
    domain.value = options.some((d) => d.id === chosen) ? chosen : options[0]?.id;
  }
  projectType.addEventListener('change', refresh);

  formDialog({
    title: project ? 'Edit project' : 'Create new project',
    fields,
    submitLabel: project ? 'Save changes' : 'Create project',
    onSubmit: async () => {
      const classification = checked(projectType) === 'Classification' ? checked(classificationType) : undefined;
      const values = { name: name.value, description: description.value, domainId: domain.value };
      const settings = { domainId: values.domainId, classificationType: classification };
      if (project) settings.publishBetterRetrains = betterRetrains.checked;
      if (classification) settings.unknownDetection = unknownDetection.checked;
      let saved = project
        ? await api.patch(`/projects/${project.id}`, { name: values.name, description: values.description, settings })
        : await api.post('/projects', { query: { ...values, classificationType: classification } });
      if (!project && classification && unknownDetection.checked) {
        saved = await api.patch(`/projects/${saved.id}`, { settings: { unknownDetection: true } });
      }
      await onSaved(saved);
    },
  });
  refresh();
}
