// Channels: every channel with its directory, session, queue and last run, 50 to a page. A fork that
// works in a git worktree of its own shows it (path and branch) with a button that removes it.

import { request, api, query } from '../api.js';
import { h, alertBox, formatRelative, statusBadge, debounce, throttle, connectorName } from '../ui.js';
import { onLiveEvent, onLiveStatus } from '../live.js';

const PAGE = 50;

export function render(root) {
  let offset = 0;
  let total = 0;
  let connectors = [];
  const alert = alertBox();
  const filter = h('input', { id: 'channels-filter', type: 'search', placeholder: 'name or directory', autocomplete: 'off' });
  const body = h('tbody');
  const summary = h('span', { class: 'muted' });
  const previous = h('button', { type: 'button', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, 'Previous');
  const next = h('button', { type: 'button', onclick: () => { offset += PAGE; load(); } }, 'Next');
  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Channels'),
      h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: filter.id }, 'Filter'), filter))),
    alert,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Directory', 'Session', 'Queue', 'Last run', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    h('div', { class: 'pager' }, previous, summary, next));

  const refresh = throttle(load, 5000);
  filter.addEventListener('input', debounce(() => { offset = 0; load(); }, 250));
  const stopEvents = onLiveEvent((event) => { if (event.kind !== 'run.output') refresh(); });
  const stopStatus = onLiveStatus((connected, reconnected) => { if (reconnected) refresh(); });
  load();
  return () => { stopEvents(); stopStatus(); refresh.cancel(); };

  async function load() {
    try {
      const [{ data, headers }, known] = await Promise.all([
        request('GET', `/api/channels${query({ limit: PAGE, offset, q: filter.value.trim() })}`), api.get('/api/connectors')]);
      connectors = known;
      total = Number(headers.get('X-Total-Count') ?? data.length);
      body.replaceChildren(...data.map(row));
      if (data.length === 0) {
        body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, filter.value ? 'No channel matches the filter.' : 'No channels yet: create one on the Chat page.')));
      }
      summary.textContent = total === 0 ? '' : `${offset + 1}–${offset + data.length} of ${total}`;
      previous.disabled = offset === 0;
      next.disabled = offset + data.length >= total;
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function row(c) {
    const queue = [c.active_run_id ? 'running' : null, c.queued ? `${c.queued} waiting` : null].filter(Boolean).join(', ') || 'idle';
    return h('tr', {},
      h('td', { 'data-label': 'Name' }, h('strong', {}, c.name), c.platform ? h('span', { class: 'muted', 'data-testid': 'channel-connector' }, ` · ${connectorName(connectors, c.platform)}`) : null),
      h('td', { 'data-label': 'Directory' }, directory(c)),
      h('td', { 'data-label': 'Session' }, c.session_id ? h('code', { title: c.session_id }, c.session_id.slice(0, 8)) : h('span', { class: 'muted' }, 'none')),
      h('td', { 'data-label': 'Queue' }, queue),
      h('td', { 'data-label': 'Last run' }, c.last_run
        ? [statusBadge(c.last_run.status), ' ', h('span', { class: 'muted' }, formatRelative(c.last_run.finished_at ?? c.last_run.created_at))]
        : h('span', { class: 'muted' }, 'never')),
      h('td', { 'data-label': 'Actions', class: 'row-actions' },
        h('a', { href: `#/chat/${encodeURIComponent(c.id)}`, class: 'button' }, 'Open chat'),
        h('button', { type: 'button', 'data-change': true, disabled: !c.session_id, onclick: () => resetSession(c) }, 'Reset session'),
        c.worktree?.path ? h('button', { type: 'button', 'data-change': true, 'data-testid': 'remove-worktree', onclick: () => removeWorktree(c) }, 'Remove worktree') : null));
  }

  function directory(c) {
    if (!c.worktree) return h('code', {}, c.dir_path ?? (c.parent_id ? '(its parent\'s directory)' : '(own work directory)'));
    if (!c.worktree.path) return h('span', { class: 'muted', 'data-testid': 'channel-worktree' }, 'git worktree: made on its first run');
    return h('span', { 'data-testid': 'channel-worktree' },
      h('code', { title: 'git worktree' }, c.worktree.path), h('br'),
      h('span', { class: 'muted' }, 'branch '), h('code', {}, c.worktree.branch));
  }

  async function removeWorktree(c) {
    if (!confirm(`Remove the git worktree ${c.worktree.path} of ${c.name}? Its branch ${c.worktree.branch} stays, with its commits.`)) return;
    const path = `/api/channels/${encodeURIComponent(c.id)}/worktree`;
    try {
      try {
        await api.del(path);
      } catch (error) {
        // Work not committed is never thrown away unasked: the person sees what it is and decides.
        if (error.status !== 409 || !error.message.includes('changes not committed')) throw error;
        if (!confirm(`${error.message}\n\nRemove it anyway and lose those changes?`)) return;
        await api.del(`${path}?force=true`);
      }
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function resetSession(c) {
    if (!confirm(`Forget the Claude session of ${c.name}? Its next run starts a fresh conversation.`)) return;
    try {
      await api.post(`/api/channels/${encodeURIComponent(c.id)}/session/reset`);
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }
}
