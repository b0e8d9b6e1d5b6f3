// Activity: the live feed of what happens in Loop, newest first, starting with the recent
// events the daemon kept from before the page opened.

import { api } from '../api.js';
import { h, alertBox, formatTime, excerpt } from '../ui.js';
import { onLiveEvent, onLiveStatus } from '../live.js';

const LIMIT = 500;
const FILTERS = {
  all: () => true,
  runs: (item) => item.dataset.kind.startsWith('run.') || item.dataset.kind.startsWith('message.'),
  tasks: (item) => item.dataset.kind.startsWith('task.'),
  errors: (item) => item.dataset.error === 'true',
};
const LABELS = {
  'message.received': 'message',
  'run.queued': 'run queued',
  'run.started': 'run started',
  'run.finished': 'run finished',
  'run.error': 'run failed',
  'task.fired': 'task fired',
  'task.error': 'task error',
  'task.loop_ended': 'loop ended',
  'channel.error': 'channel error',
  'channel.session_reset': 'session reset',
  'chat.error': 'chat error',
  'chat.reply_recovered': 'reply recovered',
};

export function render(root) {
  const names = new Map();
  const shown = new Set();
  const alert = alertBox();
  const show = h('select', { id: 'activity-show' },
    h('option', { value: 'all' }, 'All'), h('option', { value: 'runs' }, 'Runs and messages'),
    h('option', { value: 'tasks' }, 'Tasks'), h('option', { value: 'errors' }, 'Errors'));
  const feed = h('ul', { role: 'log', 'aria-label': 'Live feed', 'aria-live': 'polite', class: 'feed', hidden: true });
  const empty = h('p', { class: 'empty' }, 'Nothing yet. Events appear here as they happen.');
  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Activity'),
      h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: show.id }, 'Show'), show))),
    alert, empty, feed);

  show.addEventListener('change', applyFilter);
  const stopEvents = onLiveEvent((event) => { if (event.kind !== 'run.output') add(event, true); });
  const stopStatus = onLiveStatus((connected, reconnected) => {
    if (!connected) add({ kind: 'feed.disconnected', at: new Date().toISOString(), text: 'lost the connection to the daemon; reconnecting…' }, true);
    else if (reconnected) {
      add({ kind: 'feed.reconnected', at: new Date().toISOString(), text: 'reconnected; events while disconnected are not shown' }, true);
      // The page may have opened while the daemon was away, with nothing loaded.
      loadInitial();
    }
  });
  loadInitial();
  return () => { stopEvents(); stopStatus(); };

  async function loadInitial() {
    try {
      const [channels, recent] = await Promise.all([api.get('/api/channels?limit=500'), api.get('/api/events/recent?limit=200')]);
      for (const c of channels) names.set(c.id, c.name);
      for (const event of recent) add(event, false);
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function add(event, live) {
    // The recent events and the live feed overlap while the page opens.
    if (event.id) {
      if (shown.has(event.id)) return;
      shown.add(event.id);
    }
    // Every run that does not succeed ends in run.error: its status says how (failed, timed out,
    // cancelled), and one that was cancelled is no error.
    const runError = event.kind === 'run.error' && event.status;
    const error = event.status !== 'cancelled' && (event.kind.endsWith('error') || event.kind.endsWith('warning'));
    const label = runError ? `run ${event.status.replace('_', ' ')}` : LABELS[event.kind] ?? event.kind.replace('.', ' ');
    const item = h('li', { 'data-kind': event.kind, 'data-error': String(error), class: live ? 'fresh' : '' },
      h('time', { datetime: event.at }, formatTime(event.at)),
      h('span', { class: `kind kind-${event.kind.split('.')[0]} ${error ? 'error' : ''}` }, label),
      event.channel_id ? h('a', { class: 'channel', href: `#/chat/${encodeURIComponent(event.channel_id)}` }, channelName(event.channel_id)) : null,
      h('span', { class: 'text' }, excerpt(event.text, 200)));
    item.hidden = !FILTERS[show.value](item);
    // Live events go on top; the recent ones, newest first, below whatever arrived meanwhile.
    if (live) feed.prepend(item); else feed.append(item);
    empty.hidden = true;
    feed.hidden = false;
    while (feed.children.length > LIMIT) feed.lastElementChild.remove();
  }

  function channelName(id) {
    if (!names.has(id)) {
      names.set(id, id);
      api.get(`/api/channels/${encodeURIComponent(id)}`).then((c) => {
        names.set(id, c.name);
        for (const link of feed.querySelectorAll(`a.channel[href="#/chat/${CSS.escape(encodeURIComponent(id))}"]`)) link.textContent = c.name;
      }).catch(() => {});
    }
    return names.get(id);
  }

  function applyFilter() {
    for (const item of feed.children) item.hidden = !FILTERS[show.value](item);
  }
}
