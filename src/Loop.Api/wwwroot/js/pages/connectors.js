// Connectors: the chat platform accounts Loop listens on (a Telegram bot, a mailbox, a WhatsApp
// number, the Discord bot): add one (a form per kind, built from /api/connectors/kinds), edit it,
// turn it on or off, remove it, see whether it is connected and on which node, and who its owners
// and members are (for the kinds that have roles; the daemon checks what is entered).

import { api } from '../api.js';
import { h, field, alertBox, clearErrors, showApiError, formatRelative } from '../ui.js';
import { onLiveEvent } from '../live.js';

const REFRESH_MS = 3000;
const STATE_CLASS = { connected: 'succeeded', connecting: 'running', failed: 'failed', disabled: 'cancelled' };

export function render(root) {
  let kinds = [];
  let connectors = [];
  // Each connector's roles, by id: read when a connector is first seen and at each connector event
  // (roles change seldom, and reading them at every refresh would spend the API's rate limit).
  const roles = new Map();
  const alert = alertBox();
  const body = h('tbody');
  const formSection = h('section', { class: 'card', hidden: true });
  // Enabled once the kinds are in: the form is built from them.
  const addButton = h('button', { type: 'button', class: 'primary', 'data-change': true, 'data-testid': 'add-connector', disabled: true, onclick: () => openForm(null) }, 'Add connector');
  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Connectors'), h('div', { class: 'actions' }, addButton)),
    h('p', {}, 'Each conversation a connector opens (a chat, a person, a mail thread) becomes a channel. ',
      'Credentials are stored sealed and never shown again. Connectors from config.json are changed in the file.'),
    alert, formSection,
    h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'connectors' },
      h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Status', 'Who may write', 'Roles', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))), body)));

  let timer = null;
  let stopped = false;
  const stopEvents = onLiveEvent((event) => { if (event.kind.startsWith('connector.')) load(true); });
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) await load();
    timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); stopEvents(); };

  async function load(rolesToo = false) {
    try {
      // Until they load once (the page may open while the daemon is away), there is no form to add one.
      if (kinds.length === 0) kinds = await api.get('/api/connectors/kinds');
      addButton.disabled = false;
      connectors = await api.get('/api/connectors');
      await Promise.all(connectors.filter((c) => specOf(c.kind)?.roles_help && (rolesToo || !roles.has(c.id))).map(async (c) => {
        roles.set(c.id, await api.get(`/api/connectors/${encodeURIComponent(c.id)}/roles`));
      }));
      draw();
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function specOf(kind) { return kinds.find((k) => k.kind === kind); }

  function draw() {
    body.replaceChildren(...connectors.map((c) => {
      const spec = specOf(c.kind);
      const allowed = spec?.allowed_key ? c[spec.allowed_key] : null;
      const fromFile = c.source === 'config';
      return h('tr', { 'data-connector': c.id },
        h('td', { 'data-label': 'Name' }, c.name, fromFile ? h('span', { class: 'muted small' }, ' (config.json)') : null),
        h('td', { 'data-label': 'Kind' }, c.kind),
        h('td', { 'data-label': 'Status' },
          h('span', { class: `badge status-${STATE_CLASS[c.status.state] ?? 'queued'}`, 'data-testid': 'connector-state' }, c.status.state),
          c.status.error ? h('div', { class: 'small' }, c.status.error) : null,
          c.status.node && c.status.at ? h('div', { class: 'muted small' }, `${c.status.node}, ${formatRelative(c.status.at)}`) : null),
        h('td', { 'data-label': 'Who may write' }, allowed == null ? 'anyone in its servers'
          : allowed.length === 0 ? h('span', { class: 'status-failed' }, 'nobody yet: add senders')
          : allowed.includes('*') ? 'anyone' : allowed.join(', ')),
        h('td', { 'data-label': 'Roles', 'data-testid': 'connector-roles' }, rolesText(c)),
        h('td', { 'data-label': 'Actions', class: 'row-actions' },
          fromFile ? h('span', { class: 'muted small' }, 'edit config.json') : [
            h('button', { type: 'button', 'data-change': true, onclick: () => openForm(c) }, 'Edit'),
            h('button', { type: 'button', 'data-change': true, onclick: () => toggle(c) }, c.enabled ? 'Disable' : 'Enable'),
            h('button', { type: 'button', class: 'danger', 'data-change': true, onclick: () => remove(c) }, 'Remove'),
          ],
          // Roles are kept apart from the connector: those of config.json get them here too.
          spec?.roles_help ? h('button', { type: 'button', 'data-change': true, onclick: () => openRoles(c) }, 'Roles') : null));
    }));
    if (connectors.length === 0) {
      body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No connector yet: add a Telegram bot, a mailbox or a WhatsApp number.')));
    }
  }

  /** Who the owners and members are; for kinds without roles, that the whitelist decides. */
  function rolesText(c) {
    if (!specOf(c.kind)?.roles_help) return h('span', { class: 'muted' }, 'no commands: its whitelist says who may write');
    const r = roles.get(c.id);
    if (!r) return '—';
    if (!r.configured) return h('span', { class: 'status-failed' }, 'no owners: whoever may write may also schedule, cancel and set budgets');
    return [
      h('div', {}, h('strong', {}, 'Owners: '), r.owners.join(', ')),
      h('div', {}, h('strong', {}, 'Members: '), r.members.length === 0 ? 'whoever may write' : r.members.includes('*') ? 'anyone who may write' : r.members.join(', ')),
    ];
  }

  /** The roles form of a connector: its owners and members, one entry a line or separated by commas. */
  function openRoles(c) {
    const current = roles.get(c.id) ?? { owners: [], members: [] };
    const formAlert = alertBox();
    const help = specOf(c.kind).roles_help;
    const owners = h('textarea', { name: 'owners', rows: 2 }, current.owners.join(', '));
    const members = h('textarea', { name: 'members', rows: 2 }, current.members.join(', '));
    const form = h('form', { novalidate: true, 'aria-label': `Roles of ${c.name}` },
      h('h2', {}, `Roles of ${c.name}`),
      h('p', { class: 'hint' }, `Entries are ${help}, separated by commas. Leave both empty to remove the roles: whoever may write may then do everything.`),
      field('Owners', owners, 'May do everything: chat, schedule, cancel, edit and toggle tasks, stop any run, set budgets, fork.'),
      field('Members', members, 'May chat, list tasks, read the status and budgets, and stop their own runs; * for anyone who may write. Empty: whoever may write.'),
      formAlert,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary' }, 'Save roles'),
        h('button', { type: 'button', onclick: () => { formSection.hidden = true; } }, 'Cancel')));
    const entries = (control) => control.value.split(/[,\n]/).map((v) => v.trim()).filter(Boolean);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      formAlert.show('');
      try {
        roles.set(c.id, await api.put(`/api/connectors/${encodeURIComponent(c.id)}/roles`, { owners: entries(owners), members: entries(members) }));
        formSection.hidden = true;
        draw();
      } catch (error) {
        showApiError(form, formAlert, error);
      }
    });
    formSection.replaceChildren(form);
    formSection.hidden = false;
    owners.focus();
  }

  /** The add form (connector null) or the edit form of a connector: its fields come from its kind's settings. */
  function openForm(connector) {
    const formAlert = alertBox();
    const kind = h('select', { name: 'kind', 'data-testid': 'connector-kind', disabled: !!connector },
      kinds.map((k) => h('option', { value: k.kind, selected: connector?.kind === k.kind }, k.kind)));
    const name = h('input', { name: 'name', autocomplete: 'off', required: true, value: connector?.name ?? '', placeholder: 'support bot' });
    const settings = h('div', { class: 'fields' });
    const form = h('form', { novalidate: true },
      h('h2', {}, connector ? `Edit ${connector.name}` : 'Add a connector'),
      field('Kind', kind), field('Name', name), settings, formAlert,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary' }, connector ? 'Save' : 'Add'),
        h('button', { type: 'button', onclick: () => { formSection.hidden = true; } }, 'Cancel')));
    const drawSettings = () => {
      const spec = specOf(kind.value);
      const controls = spec.settings.map((s) => {
        const set = connector?.secrets_set?.includes(s.name);
        const control = s.choices
          ? h('select', { name: s.name }, s.choices.map((c) => h('option', { value: c, selected: (connector?.settings[s.name] ?? s.choices[0]) === c }, c)))
          : h('input', {
            name: s.name, autocomplete: 'off', type: s.secret ? 'password' : 'text', required: s.required && !set,
            value: s.secret ? '' : connector?.settings[s.name] ?? '',
            placeholder: s.secret && set ? 'set (leave empty to keep it)' : s.example,
          });
        return field(`${s.name}${s.required ? '' : ' (optional)'}`, control, s.help);
      });
      if (spec.allowed_key) {
        const current = connector?.[spec.allowed_key] ?? [];
        controls.push(field(spec.allowed_key, h('textarea', { name: spec.allowed_key, rows: 2, placeholder: JSON.parse(spec.allowed_example).join(', ') }, current.join(', ')),
          'Who may talk to the agent, separated by commas; * for anyone. Nobody may until you add someone.'));
      }
      settings.replaceChildren(...controls);
    };
    kind.addEventListener('change', drawSettings);
    drawSettings();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      formAlert.show('');
      const spec = specOf(kind.value);
      const payload = connector ? {} : { kind: kind.value };
      if (!connector || name.value.trim() !== connector.name) payload.name = name.value.trim();
      for (const s of spec.settings) {
        const value = form.elements.namedItem(s.name).value.trim();
        if (s.secret) {
          if (value) payload[s.name] = value;
        } else if (!connector || value !== (connector.settings[s.name] ?? (s.choices ? s.choices[0] : ''))) {
          payload[s.name] = value || null;
        }
      }
      if (spec.allowed_key) {
        payload[spec.allowed_key] = form.elements.namedItem(spec.allowed_key).value.split(/[,\n]/).map((v) => v.trim()).filter(Boolean);
      }
      try {
        if (connector) await api.patch(`/api/connectors/${encodeURIComponent(connector.id)}`, payload);
        else await api.post('/api/connectors', payload);
        formSection.hidden = true;
        await load();
      } catch (error) {
        showApiError(form, formAlert, error);
      }
    });
    formSection.replaceChildren(form);
    formSection.hidden = false;
    name.focus();
  }

  async function toggle(c) {
    try {
      await api.patch(`/api/connectors/${encodeURIComponent(c.id)}`, { enabled: !c.enabled });
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function remove(c) {
    if (!confirm(`Remove the connector "${c.name}"? Its channels and their conversations stay.`)) return;
    try {
      await api.del(`/api/connectors/${encodeURIComponent(c.id)}`);
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }
}
