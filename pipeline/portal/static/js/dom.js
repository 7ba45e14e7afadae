/** Small DOM helpers: elements are built with createElement (never innerHTML), so API text cannot inject markup. */

const PROPERTIES = new Set(['value', 'checked', 'indeterminate', 'selected']);
const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
  }
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** h('button', {type: 'button', onclick}, 'Label') */
export function h(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

let counter = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix = 'id') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: <label> plus control, with an optional hint wired through aria-describedby. */
export function field(label, control, hint) {
  control.id ||= uid('field');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

export const percent = (value) => `${(value * 100).toFixed(1)}%`;

/** A labelled 0-100 % range input whose label shows its value; `onChange(fraction)` runs as it moves. */
export function slider(label, value, onChange) {
  const input = h('input', { type: 'range', min: 0, max: 100, step: 1, value: Math.round(value * 100) });
  const output = h('output', {}, `${Math.round(value * 100)}%`);
  input.addEventListener('input', () => {
    output.textContent = `${input.value}%`;
    onChange(Number(input.value) / 100);
  });
  const wrapper = field(label, input);
  wrapper.classList.add('slider');
  wrapper.querySelector('label').append(': ', output);
  return wrapper;
}

/** Position an absolutely placed element over a picture by a normalised box (0..1, as the API has them). */
export function placeBox(el, box) {
  el.style.left = `${box.left * 100}%`;
  el.style.top = `${box.top * 100}%`;
  el.style.width = `${box.width * 100}%`;
  el.style.height = `${box.height * 100}%`;
}

/** Make `zone` take dropped files: it shows the `over` style while files hover, and `onFiles(files)` gets them. */
export function dropFiles(zone, onFiles) {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    onFiles(event.dataTransfer.files);
  });
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A sort comparator: newest `key` (an ISO timestamp, which compares as a string) first. Not localeCompare: its
 * first call loads ICU's collation data, about 30 ms of a cold load on a slow CPU. */
export const newestFirst = (key) => (a, b) => (a[key] < b[key] ? 1 : a[key] > b[key] ? -1 : 0);

/** Local date and time as 2026-12-03 09:28. Not Intl: its first formatter loads locale data, about 20 ms of a
 * cold load on a slow CPU, for a date a person only needs to recognise. */
export function formatDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}
