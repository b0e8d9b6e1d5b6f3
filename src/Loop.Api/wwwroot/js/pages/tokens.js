// API tokens for scripts: create (shown once), list, revoke.

import { api } from '../api.js';
import { h, field, alertBox, clearErrors, showApiError, formatDateTime, formatRelative } from '../ui.js';
import { onLiveStatus } from '../live.js';

export function render(root, ctx) {
  const alert = alertBox();
  const name = h('input', { name: 'name', autocomplete: 'off', placeholder: 'backup script' });
  const formAlert = alertBox();
  const created = h('div', { class: 'new-token card', hidden: true });
  const form = h('form', { class: 'card inline-form', novalidate: true }, field('Token name', name), formAlert, h('button', { type: 'submit', class: 'primary' }, 'Create token'));
  const body = h('tbody');
  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'API tokens')),
    h('p', {}, 'Scripts send a token as ', h('code', {}, 'Authorization: Bearer <token>'), '. It acts as you on every endpoint.'),
    h('p', {}, 'Every endpoint is in the ', h('a', { href: '/scalar/', 'data-testid': 'api-reference' }, 'API reference'),
      ', where you can try it, and in its ', h('a', { href: '/openapi/v1.json' }, 'OpenAPI document'), ' for client generators.'),
    alert, form, created,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Created', 'Last used', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))), body)));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    formAlert.show('');
    try {
      const token = await api.post('/api/auth/tokens', { name: name.value.trim() });
      name.value = '';
      const value = h('code', { 'data-testid': 'new-token' }, token.token);
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', async () => {
        try { await navigator.clipboard.writeText(token.token); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select and copy it by hand'; }
      });
      created.replaceChildren(h('p', {}, h('strong', {}, `Token "${token.name}" created: `), 'copy it now: it will not be shown again.'), h('div', { class: 'row' }, value, copy));
      created.hidden = false;
      await load();
    } catch (error) {
      showApiError(form, formAlert, error);
    }
  });
  // Back after a break: the page may have opened while the daemon was away, with nothing loaded.
  const stopStatus = onLiveStatus((connected, reconnected) => { if (reconnected) load(); });
  load();
  return stopStatus;

  async function load() {
    try {
      const tokens = await api.get('/api/auth/tokens');
      body.replaceChildren(...tokens.map((t) => h('tr', {},
        h('td', { 'data-label': 'Name' }, t.name),
        h('td', { 'data-label': 'Created' }, formatDateTime(t.created_at)),
        h('td', { 'data-label': 'Last used' }, t.last_used_at ? formatRelative(t.last_used_at) : 'never'),
        h('td', { 'data-label': 'Actions', class: 'row-actions' },
          // A viewer may revoke only their own tokens.
          ctx.role === 'viewer' && t.user_id !== ctx.userId ? null : h('button', { type: 'button', class: 'danger', onclick: () => revoke(t) }, 'Revoke')))));
      if (tokens.length === 0) body.append(h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'No API tokens yet.')));
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function revoke(t) {
    if (!confirm(`Revoke the token "${t.name}"? Scripts using it stop working at once.`)) return;
    try {
      await api.del(`/api/auth/tokens/${encodeURIComponent(t.id)}`);
      created.hidden = true;
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }
}
