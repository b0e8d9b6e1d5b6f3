// The dashboard's entry: decides between setup, login and the app, draws the shell (navigation,
// live status, who is logged in and as what, log out) and routes #/page/argument to the page
// modules. A viewer's pages hide what changes things (marked data-change; app.css hides them):
// the daemon refuses a viewer's changes anyway, so this only keeps buttons that would fail away.

import { api, onUnauthorized } from './api.js';
import { h, field, alertBox, clearErrors, setFieldError, showApiError } from './ui.js';
import { startLive, stopLive, onLiveStatus, isLive } from './live.js';
import * as chat from './pages/chat.js';
import * as activity from './pages/activity.js';
import * as channels from './pages/channels.js';
import * as tasks from './pages/tasks.js';
import * as connectors from './pages/connectors.js';
import * as usage from './pages/usage.js';
import * as runtime from './pages/runtime.js';
import * as tokens from './pages/tokens.js';
import * as users from './pages/users.js';

const PAGES = [
  { route: 'chat', label: 'Chat', module: chat },
  { route: 'activity', label: 'Activity', module: activity },
  { route: 'channels', label: 'Channels', module: channels },
  { route: 'tasks', label: 'Tasks', module: tasks },
  { route: 'connectors', label: 'Connectors', module: connectors },
  { route: 'usage', label: 'Usage', module: usage },
  { route: 'runtime', label: 'Runtime', module: runtime },
  { route: 'tokens', label: 'Tokens', module: tokens },
  { route: 'users', label: 'Users', module: users },
];

const app = document.getElementById('app');
// Who is logged in: { username, id, role } from /api/auth/status.
let user = null;
let cleanupPage = null;
let main = null;
let unsubscribeStatus = null;

onUnauthorized(() => { if (user) showLogin('Your session has ended: log in again.'); });
window.addEventListener('hashchange', () => { if (user) route(); });
boot();

async function boot() {
  let status;
  try {
    status = await api.get('/api/auth/status');
  } catch (error) {
    app.replaceChildren(h('main', { class: 'auth' }, h('h1', {}, 'Loop'), h('p', { role: 'alert', class: 'alert' }, error.message),
      h('button', { type: 'button', onclick: boot }, 'Try again')));
    return;
  }
  if (status.setup_required) showSetup();
  else if (!status.authenticated) showLogin();
  else showApp(status);
}

function credentialsForm({ title, intro, submitLabel, confirm, askSetupCode, onSubmit }) {
  const alert = alertBox();
  const setupCode = askSetupCode
    ? h('input', { name: 'setup_code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', required: true, autofocus: true })
    : null;
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: !askSetupCode });
  const password = h('input', { name: 'password', type: 'password', autocomplete: confirm ? 'new-password' : 'current-password', required: true });
  const confirmation = confirm ? h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true }) : null;
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h('form', { class: 'card', novalidate: true },
    setupCode ? field('Setup code', setupCode,
      'loop serve printed it in its log ("First-run setup code: …"); it is also in ~/.loop/secrets/setup-code on the daemon\'s machine.') : null,
    field('Username', username),
    field('Password', password, confirm ? 'At least 8 characters.' : null),
    confirmation ? field('Confirm password', confirmation) : null,
    alert, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    alert.show('');
    if (setupCode && !setupCode.value.trim()) { setFieldError(form, 'setup_code', 'enter the setup code'); setupCode.focus(); return; }
    if (!username.value.trim()) { setFieldError(form, 'username', 'enter a username'); username.focus(); return; }
    if (!password.value) { setFieldError(form, 'password', 'enter a password'); password.focus(); return; }
    if (confirmation && confirmation.value !== password.value) {
      setFieldError(form, 'confirm', 'the passwords do not match');
      confirmation.focus();
      return;
    }
    button.disabled = true;
    try {
      await onSubmit({ username: username.value.trim(), password: password.value }, setupCode?.value.trim());
    } catch (error) {
      showApiError(form, alert, error);
    } finally {
      button.disabled = false;
    }
  });
  app.replaceChildren(h('main', { class: 'auth' }, h('div', { class: 'brand' }, 'Loop'), h('h1', {}, title), intro ? h('p', {}, intro) : null, form));
  (setupCode ?? username).focus();
}

function showSetup() {
  leaveApp();
  credentialsForm({
    title: 'Create the admin account',
    intro: 'Welcome to Loop. This account signs in to the dashboard and creates API tokens for scripts. '
      + 'The setup code shows that you are at the daemon\'s machine.',
    submitLabel: 'Create account',
    confirm: true,
    askSetupCode: true,
    onSubmit: async (credentials, setupCode) => {
      await api.post('/api/auth/setup', { ...credentials, setup_code: setupCode });
      await api.post('/api/auth/login', credentials);
      if (goBack()) return;
      location.hash = '#/chat';
      showApp(await api.get('/api/auth/status'));
    },
  });
}

function showLogin(notice) {
  leaveApp();
  credentialsForm({
    title: 'Log in to Loop',
    intro: notice,
    submitLabel: 'Log in',
    confirm: false,
    onSubmit: async (credentials) => {
      await api.post('/api/auth/login', credentials);
      if (goBack()) return;
      if (!location.hash) history.replaceState(null, '', '#/chat');
      showApp(await api.get('/api/auth/status'));
    },
  });
}

// A page of the daemon that sent a browser here to log in (/?next=/scalar/) gets it back; only a
// path of this daemon, never another site.
function goBack() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return false;
  location.assign(next);
  return true;
}

function leaveApp() {
  user = null;
  document.body.classList.remove('viewer');
  cleanupPage?.();
  cleanupPage = null;
  unsubscribeStatus?.();
  unsubscribeStatus = null;
  stopLive();
}

function showApp(status) {
  // The machine's local token has no account: it acts as the admin.
  user = { username: status.username ?? 'local', id: status.user_id, role: status.role ?? 'admin' };
  document.body.classList.toggle('viewer', user.role === 'viewer');
  const liveStatus = h('span', { class: 'live-status', 'data-testid': 'live-status', role: 'status' });
  const showStatus = (connected) => {
    liveStatus.textContent = connected ? 'live' : 'reconnecting…';
    liveStatus.classList.toggle('down', !connected);
  };
  showStatus(isLive());
  unsubscribeStatus = onLiveStatus(showStatus);

  const nav = h('nav', { 'aria-label': 'Main' },
    PAGES.map((page) => h('a', { href: `#/${page.route}`, 'data-route': page.route }, page.label)));
  const logout = h('button', { type: 'button', class: 'link', onclick: logOut }, 'Log out');
  main = h('main', { id: 'main', tabindex: '-1' });
  app.replaceChildren(
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/chat' }, 'Loop'),
      nav,
      h('div', { class: 'session' }, liveStatus,
        h('span', { class: 'user', 'data-testid': 'user' }, user.username, ' ',
          h('span', { class: `role role-${user.role}`, 'data-testid': 'role', title: user.role === 'viewer' ? 'You may look but not change anything.' : 'You may change everything.' }, user.role)),
        logout)),
    main);
  startLive();
  route();
}

async function logOut() {
  try { await api.post('/api/auth/logout'); } catch { /* the session is gone either way */ }
  showLogin('You have logged out.');
}

function route() {
  const [name, ...params] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const page = PAGES.find((p) => p.route === name) ?? PAGES[0];
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.route === page.route) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  cleanupPage?.();
  const root = h('div', { class: `page page-${page.route}` });
  main.replaceChildren(root);
  document.title = `${page.label} · Loop`;
  cleanupPage = page.module.render(root, {
    user: user.username, userId: user.id, role: user.role, params, navigate: (hash) => { location.hash = hash; },
  }) || null;
}
