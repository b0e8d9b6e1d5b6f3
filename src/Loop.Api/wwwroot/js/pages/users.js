// The dashboard's accounts: admins add them, change their roles, reset passwords and remove them;
// everyone may change their own password. The daemon decides who may do what, and says why not.

import { api } from '../api.js';
import { h, field, alertBox, clearErrors, showApiError, setFieldError, formatDateTime } from '../ui.js';
import { onLiveStatus } from '../live.js';

export function render(root, ctx) {
  const alert = alertBox();
  const body = h('tbody');
  const passwordSection = h('section', { class: 'card', hidden: true });
  const note = h('p', { role: 'status', class: 'muted' });

  const username = h('input', { name: 'username', autocomplete: 'off', placeholder: 'vera' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password' });
  const role = h('select', { name: 'role' }, h('option', { value: 'viewer', selected: true }, 'viewer'), h('option', { value: 'admin' }, 'admin'));
  const addAlert = alertBox();
  const addForm = h('form', { class: 'card inline-form', 'data-change': true, novalidate: true, 'aria-label': 'Add a user' },
    field('Username', username), field('Password', password, 'At least 8 characters.'), field('Role', role), addAlert,
    h('button', { type: 'submit', class: 'primary' }, 'Add user'));

  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Users')),
    h('p', {}, 'An ', h('strong', {}, 'admin'), ' may change everything. A ', h('strong', {}, 'viewer'),
      ' sees every page but changes nothing, except their own password; their API tokens are viewers too.'),
    alert, note, addForm, passwordSection,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Username', 'Role', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))), body)));

  addForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(addForm);
    addAlert.show('');
    if (!username.value.trim()) { setFieldError(addForm, 'username', 'enter a username'); username.focus(); return; }
    try {
      await api.post('/api/users', { username: username.value.trim(), password: password.value, role: role.value });
      username.value = '';
      password.value = '';
      await load();
    } catch (error) {
      showApiError(addForm, addAlert, error);
    }
  });

  const stopStatus = onLiveStatus((connected, reconnected) => { if (reconnected) load(); });
  load();
  return stopStatus;

  async function load() {
    try {
      const users = await api.get('/api/users');
      body.replaceChildren(...users.map(row));
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function row(u) {
    const own = u.id === ctx.userId;
    const other = u.role === 'admin' ? 'viewer' : 'admin';
    return h('tr', {},
      h('td', { 'data-label': 'Username' }, u.username, own ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', { 'data-label': 'Role' }, h('span', { class: `role role-${u.role}` }, u.role)),
      h('td', { 'data-label': 'Created' }, formatDateTime(u.created_at)),
      h('td', { 'data-label': 'Actions', class: 'row-actions' },
        h('button', { type: 'button', 'data-change': true, onclick: () => change(u, { role: other }) }, `Make ${other}`),
        own
          ? h('button', { type: 'button', onclick: () => openPassword(u, true) }, 'Change password')
          : h('button', { type: 'button', 'data-change': true, onclick: () => openPassword(u, false) }, 'Reset password'),
        h('button', { type: 'button', class: 'danger', 'data-change': true, onclick: () => remove(u) }, 'Remove')));
  }

  async function change(u, fields) {
    try {
      await api.patch(`/api/users/${encodeURIComponent(u.id)}`, fields);
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }

  function openPassword(u, own) {
    const formAlert = alertBox();
    const input = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
    const form = h('form', { novalidate: true },
      h('h2', {}, own ? 'Change your password' : `New password for ${u.username}`),
      field('New password', input, own ? 'At least 8 characters. Your other sessions end.' : 'At least 8 characters. Their sessions end: they log in again with it.'),
      formAlert,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary' }, 'Save password'),
        h('button', { type: 'button', onclick: close }, 'Cancel')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      formAlert.show('');
      try {
        await api.patch(`/api/users/${encodeURIComponent(u.id)}`, { password: input.value });
        close();
        alert.show('');
        note.textContent = own ? 'Your password is changed.' : `The password of ${u.username} is changed.`;
      } catch (error) {
        showApiError(form, formAlert, error);
      }
    });
    passwordSection.replaceChildren(form);
    passwordSection.hidden = false;
    input.focus();
  }

  function close() {
    passwordSection.hidden = true;
    passwordSection.replaceChildren();
  }

  async function remove(u) {
    if (!confirm(`Remove the user "${u.username}"? Their sessions end and their API tokens stop working at once.`)) return;
    try {
      await api.del(`/api/users/${encodeURIComponent(u.id)}`);
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }
}
