// Small DOM helpers shared by the pages. Text always goes in as text nodes, never as HTML,
// so nothing a user or an agent wrote can inject markup.

/** h('button', { class: 'x', onclick: fn }, 'Label', child…) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let idCounter = 0;
export const uid = (prefix) => `${prefix}-${++idCounter}`;

/** A labelled form field: label, control, and room for its error message. */
export function field(label, control, hint) {
  control.id ||= uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

export function alertBox() {
  const box = h('div', { role: 'alert', class: 'alert', hidden: true });
  box.show = (message) => { box.textContent = message; box.hidden = !message; };
  return box;
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.remove();
  for (const input of form.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    const hint = document.getElementById(`${input.id}-hint`);
    if (hint) input.setAttribute('aria-describedby', hint.id); else input.removeAttribute('aria-describedby');
  }
}

/** Puts a message next to the named field. Returns false when the form has no such field. */
export function setFieldError(form, name, message) {
  const input = form.elements.namedItem(name);
  if (!input || !(input instanceof HTMLElement)) return false;
  input.setAttribute('aria-invalid', 'true');
  const error = h('p', { class: 'field-error', id: `${input.id}-error` }, message);
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), error.id].filter(Boolean).join(' '));
  input.closest('.field')?.append(error) ?? input.after(error);
  return true;
}

/** Shows an API failure: next to the fields it names, otherwise in the form's alert. */
export function showApiError(form, alert, error) {
  clearErrors(form);
  let placed = false;
  for (const [name, messages] of Object.entries(error.fields || {})) {
    placed = setFieldError(form, name, messages.join(' ')) || placed;
  }
  alert.show(placed ? '' : error.message);
  if (placed) form.querySelector('[aria-invalid="true"]')?.focus();
}

export function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

/** Always with the date, for what is looked at days later (when a token was made). */
export function formatDateTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function formatRelative(iso) {
  if (!iso) return '—';
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const [value, unit] = abs < 60 ? [seconds, 'second'] : abs < 3600 ? [Math.round(seconds / 60), 'minute']
    : abs < 86400 ? [Math.round(seconds / 3600), 'hour'] : [Math.round(seconds / 86400), 'day'];
  return new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }).format(value, unit);
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function formatCost(usd) {
  const value = Number(usd || 0);
  return `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 4 : 2)}`;
}

export const formatNumber = (n) => Number(n || 0).toLocaleString();

/** "1 run", "2 runs", "1,200 tokens": the plural is the singular with an s unless given. */
export const formatCount = (n, singular, plural = `${singular}s`) => `${formatNumber(n)} ${Number(n) === 1 ? singular : plural}`;

export const excerpt = (text, length = 120) =>
  !text ? '' : text.length > length ? `${text.slice(0, length - 1)}…` : text;

/** A page header: the h1 and optional actions beside it. */
export function pageHeader(title, ...actions) {
  return h('header', { class: 'page-header' }, h('h1', {}, title), actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/** Runs fn at most once per `ms`, the last call winning: for refreshes triggered by bursts of live events. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** Runs fn now if it has not run for `ms`, else once when `ms` have passed: live refreshes stay
 * prompt but cost at most one call per `ms`, which keeps a busy daemon's page under the API's rate limit. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const run = () => { timer = null; last = Date.now(); fn(); };
  const throttled = () => {
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run(); else timer = setTimeout(run, wait);
  };
  throttled.cancel = () => clearTimeout(timer);
  return throttled;
}

/** The connector a chat channel came through, by name (its kind when it has none of its own). */
export function connectorName(connectors, id) {
  const connector = connectors.find((k) => k.id === id);
  return !connector ? id : connector.name === connector.kind ? connector.kind : `${connector.name} (${connector.kind})`;
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status ? status.replace('_', ' ') : '—');
}
