/** The region editor of an Object Detection image: draw, move, resize and delete boxes, each with a tag.
 * Coordinates are normalised (0..1) as the API stores them; a changed box is created anew, then the old one
 * deleted (the API has no region update). */

import { api } from './api.js';
import { h, percent, placeBox, uid } from './dom.js';
import { NO_ITERATION, suggestionsFor } from './labeller.js';

const MIN_SIZE = 0.01;
// Region proposals drawn: the most confident ones (they come most confident first), none below PROPOSE_AT.
const PROPOSE_AT = 0.1;
const MAX_PROPOSALS = 10;
const KEY_STEP = 0.01;
const clamp = (v, lo = 0, hi = 1) => Math.min(hi, Math.max(lo, v));

function normalised(box) {
  const left = clamp(Math.min(box.left, box.left + box.width));
  const top = clamp(Math.min(box.top, box.top + box.height));
  return {
    ...box,
    left,
    top,
    width: clamp(Math.abs(box.width), 0, 1 - left),
    height: clamp(Math.abs(box.height), 0, 1 - top),
  };
}

/** `image` is an API Image; `onChanged(image)` receives the image re-read after every edit. Returns the editor's
 * element and `useTag(tag)`, which chooses the tag for new regions. */
export function regionEditor(ctx, image, onChanged) {
  const status = h('p', { class: 'region-status', role: 'status' });
  const tagSelect = h('select', { id: uid('region-tag') });
  const fillTags = (selected) => {
    tagSelect.replaceChildren(...ctx.tags.map((t) => h('option', { value: t.id }, t.name)));
    if (selected) tagSelect.value = selected;
  };
  fillTags();
  const newTag = h('input', { id: uid('region-new-tag'), autocomplete: 'off', placeholder: 'New tag name' });
  const addTag = h('button', { type: 'button', class: 'button small' }, 'Create tag');
  /** Create the tag typed in "New tag name" (or take the existing one of that name) and select it for new
   * regions; false when that failed (the reason is in the status line). */
  async function createTypedTag() {
    const name = newTag.value.trim();
    if (!name) return true;
    try {
      let tag = ctx.tags.find((t) => t.name.toLowerCase() === name.toLowerCase());
      if (!tag) {
        tag = await api.post(`${ctx.base}/tags`, { query: { name } });
        ctx.tags.push(tag);
      }
      fillTags(tag.id);
      newTag.value = '';
      status.textContent = `New regions get the tag ${tag.name}.`;
      render();
      return true;
    } catch (error) {
      status.textContent = `${error.code}: ${error.message}`;
      return false;
    }
  }
  addTag.addEventListener('click', createTypedTag);
  newTag.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    createTypedTag();
  });
  const stage = h('div', { class: 'region-stage' }, h('img', { src: image.resizedImageUri, alt: '', draggable: 'false' }));
  stage.style.aspectRatio = `${image.width} / ${image.height}`;
  stage.style.width = `min(100%, calc(65vh * ${image.width / image.height}))`;
  const list = h('ul', { class: 'region-list', 'aria-label': 'Regions' });

  const tagName = (id) => ctx.tags.find((t) => t.id === id)?.name || '';
  const point = (event) => {
    const rect = stage.getBoundingClientRect();
    return { x: clamp((event.clientX - rect.left) / rect.width), y: clamp((event.clientY - rect.top) / rect.height) };
  };

  async function save(box, replaces) {
    // A name left typed in "New tag name" is the tag the person means for the box they just drew.
    if (!replaces && newTag.value.trim()) {
      if (!await createTypedTag()) return render();
      box = { ...box, tagId: tagSelect.value };
    }
    if (!tagSelect.value && !box.tagId) {
      status.textContent = 'Create a tag first: every region needs a tag.';
      return render();
    }
    const region = normalised(box);
    if (region.width < MIN_SIZE || region.height < MIN_SIZE) return render();
    try {
      await api.post(`${ctx.base}/images/regions`, {
        json: { regions: [{ imageId: image.id, tagId: region.tagId || tagSelect.value, left: region.left,
          top: region.top, width: region.width, height: region.height }] },
      });
      if (replaces) await api.del(`${ctx.base}/images/regions`, { regionIds: replaces });
      status.textContent = replaces ? 'Region updated.' : `Region tagged ${tagName(region.tagId || tagSelect.value)} added.`;
    } catch (error) {
      status.textContent = `${error.code}: ${error.message}`;
    }
    await reload();
  }

  async function remove(region) {
    try {
      await api.del(`${ctx.base}/images/regions`, { regionIds: region.regionId });
      status.textContent = `Region ${region.tagName} deleted.`;
    } catch (error) {
      status.textContent = `${error.code}: ${error.message}`;
    }
    await reload();
  }

  async function reload() {
    const [fresh] = await api.get(`${ctx.base}/images/id`, { imageIds: image.id });
    image = fresh;
    onChanged(image);
    render();
  }

  /** Drag a box (move, or resize from a corner) with the pointer; saves on release. */
  function drag(event, region, el, mode) {
    event.preventDefault();
    event.stopPropagation();
    const start = point(event);
    let box = { ...region };
    el.setPointerCapture(event.pointerId);
    const move = (e) => {
      const p = point(e);
      const dx = p.x - start.x;
      const dy = p.y - start.y;
      if (mode === 'move') {
        box = { ...region, left: clamp(region.left + dx, 0, 1 - region.width), top: clamp(region.top + dy, 0, 1 - region.height) };
      } else {
        box = { ...region };
        if (mode.includes('w')) box = { ...box, left: region.left + dx, width: region.width - dx };
        if (mode.includes('e')) box = { ...box, width: region.width + dx };
        if (mode.includes('n')) box = { ...box, top: region.top + dy, height: region.height - dy };
        if (mode.includes('s')) box = { ...box, height: region.height + dy };
        box = normalised(box);
      }
      placeBox(el, box);
    };
    const up = () => {
      el.removeEventListener('pointermove', move);
      el.removeEventListener('pointerup', up);
      const moved = ['left', 'top', 'width', 'height'].some((k) => Math.abs(box[k] - region[k]) > 0.002);
      if (moved) save(box, region.regionId);
    };
    el.addEventListener('pointermove', move);
    el.addEventListener('pointerup', up);
  }

  /** Keyboard: arrows move, Shift+arrows resize, Delete removes; saved after a short pause. */
  function keys(event, region, el) {
    if (event.key === 'Delete' || event.key === 'Backspace') {
      event.preventDefault();
      remove(region);
      return;
    }
    const delta = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (!delta) return;
    event.preventDefault();
    const box = el.pending || { ...region };
    if (event.shiftKey) {
      box.width = clamp(box.width + delta[0] * KEY_STEP, MIN_SIZE, 1 - box.left);
      box.height = clamp(box.height + delta[1] * KEY_STEP, MIN_SIZE, 1 - box.top);
    } else {
      box.left = clamp(box.left + delta[0] * KEY_STEP, 0, 1 - box.width);
      box.top = clamp(box.top + delta[1] * KEY_STEP, 0, 1 - box.height);
    }
    el.pending = box;
    placeBox(el, box);
    clearTimeout(el.timer);
    el.timer = setTimeout(() => save(box, region.regionId), 700);
  }

  function boxElement(region) {
    const label = `${region.tagName} region at ${Math.round(region.left * 100)}%, ${Math.round(region.top * 100)}%`;
    const el = h(
      'button',
      { type: 'button', class: 'region', 'aria-label': `${label}. Arrows move, Shift+arrows resize, Delete removes.` },
      h('span', { class: 'region-label' }, region.tagName),
      ['nw', 'ne', 'sw', 'se'].map((corner) => h('span', { class: `handle ${corner}`, 'data-corner': corner })),
    );
    placeBox(el, region);
    el.addEventListener('pointerdown', (event) => drag(event, region, el, event.target.dataset.corner || 'move'));
    el.addEventListener('keydown', (event) => keys(event, region, el));
    return el;
  }

  function regionRow(region) {
    const select = h('select', { 'aria-label': `Tag of region ${region.tagName}` },
      ctx.tags.map((t) => h('option', { value: t.id, selected: t.id === region.tagId }, t.name)));
    select.addEventListener('change', () => save({ ...region, tagId: select.value }, region.regionId));
    const del = h('button', { type: 'button', class: 'button small danger-text' }, 'Delete');
    del.setAttribute('aria-label', `Delete region ${region.tagName}`);
    del.addEventListener('click', () => remove(region));
    return h('li', {}, select, del);
  }

  function render() {
    stage.querySelectorAll('.region, .region-draft').forEach((el) => el.remove());
    stage.append(...image.regions.map(boxElement));
    list.replaceChildren(...image.regions.map(regionRow));
    if (!image.regions.length) list.append(h('li', { class: 'hint' }, 'No regions yet.'));
  }

  stage.addEventListener('pointerdown', (event) => {
    if (event.target !== stage && event.target.tagName !== 'IMG') return;
    event.preventDefault();
    const start = point(event);
    const draft = h('div', { class: 'region-draft' });
    stage.append(draft);
    let box = { left: start.x, top: start.y, width: 0, height: 0 };
    stage.setPointerCapture(event.pointerId);
    const move = (e) => {
      const p = point(e);
      box = normalised({ left: start.x, top: start.y, width: p.x - start.x, height: p.y - start.y });
      placeBox(draft, box);
    };
    const up = () => {
      stage.removeEventListener('pointermove', move);
      stage.removeEventListener('pointerup', up);
      save({ ...box, tagId: tagSelect.value });
    };
    stage.addEventListener('pointermove', move);
    stage.addEventListener('pointerup', up);
  });

  render();

  /** Draw `offers` ({ box, text, name, tagId() }: `text` shown on the box, `name` its accessible name) dashed over
   * the image, replacing earlier ones: a click (or Enter) makes one a region with its tag; drawing or ignoring them
   * changes nothing. */
  function offerBoxes(offers) {
    stage.querySelectorAll('.region-suggestion').forEach((el) => el.remove());
    stage.append(...offers.map((offer) => {
      const el = h('button', { type: 'button', class: 'region-suggestion', 'aria-label': `Accept ${offer.name}` },
        h('span', { class: 'region-label' }, offer.text));
      placeBox(el, offer.box);
      el.addEventListener('click', () => {
        el.remove();
        save({ ...offer.box, tagId: offer.tagId() });
      });
      return el;
    }));
  }

  /** Ask the newest trained iteration through `ask()`, which returns the status line to show. */
  const asking = (ask) => async () => {
    offerBoxes([]);
    status.textContent = 'Asking the newest trained iteration…';
    try {
      status.textContent = await ask();
    } catch (error) {
      status.textContent = `${error.code}: ${error.message}`;
    }
  };
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 'es'}`;

  // Suggested boxes: the newest iteration's predictions, each with its tag.
  const suggest = h('button', { type: 'button', class: 'button small' }, 'Suggest boxes');
  suggest.addEventListener('click', asking(async () => {
    const result = await suggestionsFor(ctx, image.id);
    if (!result) return NO_ITERATION;
    const boxes = result.predictions.filter((p) => p.boundingBox);
    offerBoxes(boxes.map((p) => {
      const text = `${p.tagName} ${percent(p.probability)}`;
      return { box: p.boundingBox, text, name: `suggested box ${text}`, tagId: () => p.tagId };
    }));
    return boxes.length
      ? `${result.iteration.name} suggests ${plural(boxes.length, 'box')}: click one to keep it.`
      : `${result.iteration.name} suggests no boxes for this image.`;
  }));

  // Region proposals (GetImageRegionProposals): where the newest detector sees objects, whatever their tag; a kept
  // one gets the tag chosen for new regions.
  const propose = h('button', { type: 'button', class: 'button small' }, 'Propose boxes');
  propose.addEventListener('click', asking(async () => {
    const { proposals } = await api.post(`${ctx.base}/images/${image.id}/regionproposals`);
    const shown = proposals.filter((p) => p.confidence >= PROPOSE_AT).slice(0, MAX_PROPOSALS);
    offerBoxes(shown.map((p) => ({
      box: p.boundingBox, text: percent(p.confidence), name: `proposed box ${percent(p.confidence)}`, tagId: () => tagSelect.value,
    })));
    if (shown.length) {
      return `${plural(shown.length, 'box')} proposed: click one to make it a region tagged ${tagName(tagSelect.value)}.`;
    }
    return proposals.length
      ? 'No likely objects proposed for this image.'
      : 'No boxes proposed: proposals come from the newest trained iteration, if there is one.';
  }));

  const element = h(
    'div',
    { class: 'region-editor' },
    h('div', { class: 'region-toolbar' },
      h('label', { for: tagSelect.id }, 'Tag for new regions'), tagSelect,
      h('label', { for: newTag.id, class: 'visually-hidden' }, 'New tag'), newTag, addTag, suggest, propose),
    h('p', { class: 'hint' }, 'Drag on the image to draw a region. Drag a region to move it, or its corners to resize.'),
    stage,
    status,
    list,
  );
  return {
    element,
    /** Make `tag` the tag of the regions drawn next (the dialog's tag keys). */
    useTag(tag) {
      fillTags(tag.id);
      status.textContent = `New regions get the tag ${tag.name}.`;
    },
  };
}
