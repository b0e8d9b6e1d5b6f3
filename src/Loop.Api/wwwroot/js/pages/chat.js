// Chat: pick or create a channel, talk to its agent, watch the run's output stream in, cancel it.

import { api, query } from '../api.js';
import { h, field, alertBox, clearErrors, showApiError, formatTime, connectorName } from '../ui.js';
import { onLiveEvent, onLiveStatus } from '../live.js';

const HISTORY = 100;

export function render(root, ctx) {
  let channelId = null;
  let lastMessageId = 0;
  let activeRunId = null;
  let streaming = null;
  let firstMessageId = 0;

  const alert = alertBox();
  const select = h('select', { name: 'channel' });
  const conversation = h('div', { role: 'log', 'aria-label': 'Conversation', 'aria-live': 'polite', class: 'conversation' });
  const earlier = h('button', { type: 'button', class: 'link earlier', onclick: loadEarlier }, 'Load earlier messages');
  const runStatus = h('span', { 'data-testid': 'run-status', class: 'run-status', hidden: true });
  const cancel = h('button', { type: 'button', class: 'danger', 'data-change': true, hidden: true, onclick: cancelRun }, 'Cancel run');
  const message = h('textarea', { name: 'content', rows: 3, placeholder: 'Ask the agent… (Enter sends, Shift+Enter for a new line)' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const composerAlert = alertBox();
  const composer = h('form', { class: 'composer', 'data-change': true, novalidate: true }, field('Message', message), composerAlert, h('div', { class: 'row' }, runStatus, cancel, send));

  const dirInput = h('input', { name: 'dir_path', placeholder: '/home/me/project', autocomplete: 'off' });
  const nameInput = h('input', { name: 'name', placeholder: 'my-project', autocomplete: 'off' });
  const newAlert = alertBox();
  const newChannel = h('form', { class: 'new-channel', 'data-change': true, novalidate: true },
    field('Project directory', dirInput, 'Optional: an absolute path on the daemon\'s machine, mounted into the agent\'s container.'),
    field('Channel name', nameInput),
    newAlert,
    h('button', { type: 'submit' }, 'Create channel'));

  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Chat'), h('div', { class: 'actions' }, field('Channel', select))),
    alert,
    h('details', { class: 'card' }, h('summary', {}, 'New channel'), newChannel),
    conversation,
    composer);

  select.addEventListener('change', () => selectChannel(select.value));
  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener('submit', sendMessage);
  newChannel.addEventListener('submit', createChannel);

  const stopEvents = onLiveEvent(onEvent);
  // Back after a break: the daemon may have restarted, and what could not load while it was away loads now.
  const stopStatus = onLiveStatus((connected, reconnected) => {
    if (!reconnected) return;
    if (channelId) loadConversation(); else loadChannels(ctx.params[0]);
  });
  loadChannels(ctx.params[0]);
  return () => { stopEvents(); stopStatus(); };

  async function loadChannels(wanted) {
    try {
      const [channels, connectors] = await Promise.all([api.get('/api/channels?limit=500'), api.get('/api/connectors')]);
      alert.show('');
      select.replaceChildren(...channels.map((c) => h('option', { value: c.id }, channelLabel(c, connectors))));
      if (channels.length === 0) {
        select.append(h('option', { value: '' }, 'no channels yet'));
        conversation.replaceChildren(h('p', { class: 'empty' }, 'Create a channel for a project directory to start talking to an agent.'));
        newChannel.closest('details').open = true;
        return;
      }
      const remembered = localStorage.getItem('loop.channel');
      const pick = [wanted, remembered].find((id) => id && channels.some((c) => c.id === id)) ?? channels[0].id;
      select.value = pick;
      await selectChannel(pick);
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function selectChannel(id) {
    channelId = id;
    localStorage.setItem('loop.channel', id);
    setActiveRun(null, null);
    await loadConversation();
  }

  async function loadConversation() {
    const id = channelId;
    try {
      const [messages, runs] = await Promise.all([
        api.get(`/api/channels/${encodeURIComponent(id)}/messages${query({ latest: HISTORY })}`),
        api.get(`/api/channels/${encodeURIComponent(id)}/runs?limit=1`),
      ]);
      if (id !== channelId) return;
      streaming = null;
      conversation.replaceChildren();
      lastMessageId = 0;
      firstMessageId = messages[0]?.id ?? 0;
      if (messages.length === HISTORY) conversation.append(earlier);
      if (messages.length === 0) conversation.append(h('p', { class: 'empty' }, 'No messages yet: say something below.'));
      for (const m of messages) addMessage(m);
      const run = runs[0];
      setActiveRun(run && (run.status === 'queued' || run.status === 'running') ? run.id : null, run?.status);
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function loadNewMessages() {
    const id = channelId;
    try {
      const messages = await api.get(`/api/channels/${encodeURIComponent(id)}/messages${query({ after: lastMessageId, limit: 500 })}`);
      if (id !== channelId) return;
      for (const m of messages) addMessage(m);
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function loadEarlier() {
    const id = channelId;
    try {
      const older = await api.get(`/api/channels/${encodeURIComponent(id)}/messages${query({ latest: HISTORY, before: firstMessageId })}`);
      if (id !== channelId || older.length === 0) { earlier.remove(); return; }
      firstMessageId = older[0].id;
      const height = conversation.scrollHeight;
      earlier.after(...older.map(messageView));
      if (older.length < HISTORY) earlier.remove();
      conversation.scrollTop += conversation.scrollHeight - height; // keep what was on screen in place
    } catch (error) {
      alert.show(error.message);
    }
  }

  function addMessage(m) {
    if (m.id <= lastMessageId) return;
    lastMessageId = m.id;
    conversation.querySelector('.empty')?.remove();
    // The agent's working bubble stays last: the message its run answers may be fetched after the
    // run started, and belongs above it.
    if (streaming) streaming.before(messageView(m)); else conversation.append(messageView(m));
    conversation.scrollTop = conversation.scrollHeight;
  }

  function messageView(m) {
    // The store says "agent" for what the agent answered; the page calls it the assistant's.
    const role = m.role === 'agent' ? 'assistant' : m.role;
    return h('article', { class: `message ${role}`, 'data-role': role, 'data-id': m.id },
      h('header', {}, h('strong', {}, m.author), ' ', h('time', { datetime: m.created_at }, formatTime(m.created_at))),
      h('div', { class: 'text' }, m.content));
  }

  function setActiveRun(runId, status) {
    activeRunId = runId;
    cancel.hidden = !runId;
    runStatus.hidden = !runId;
    runStatus.textContent = status === 'running' ? 'running…' : status || '';
    if (!runId) {
      streaming?.remove();
      streaming = null;
    }
  }

  function onEvent(event) {
    if (event.channel_id !== channelId) return;
    switch (event.kind) {
      case 'run.queued':
        if (!activeRunId || activeRunId === 'pending') setActiveRun(event.run_id, 'queued');
        loadNewMessages();
        break;
      case 'run.started':
        setActiveRun(event.run_id, 'running');
        streamInto(event.run_id);
        loadNewMessages();
        break;
      case 'run.output':
        if (event.run_id === activeRunId) appendOutput(event.text);
        break;
      case 'run.finished':
      case 'run.error':
        if (event.run_id === activeRunId) setActiveRun(null, null);
        loadNewMessages();
        break;
      case 'message.received':
        loadNewMessages();
        break;
      default:
        break;
    }
  }

  function streamInto(runId) {
    if (streaming?.dataset.run === runId) return;
    streaming?.remove();
    streaming = h('article', { class: 'message assistant streaming', 'data-role': 'streaming', 'data-run': runId },
      h('header', {}, h('strong', {}, 'agent'), ' ', h('span', { class: 'muted' }, 'working…')),
      h('div', { class: 'text' }));
    conversation.append(streaming);
  }

  // The run's output is Claude Code's stream-json: show what the agent says and which tools it uses.
  // Partial messages (stream_event text deltas, as direct mode sends) are shown as they come, and
  // give way to the whole message when it arrives.
  function appendOutput(line) {
    if (!streaming) streamInto(activeRunId);
    let parsed;
    try { parsed = JSON.parse(line); } catch { parsed = null; }
    const text = streaming.querySelector('.text');
    const delta = parsed?.type === 'stream_event' && parsed.event?.type === 'content_block_delta' ? parsed.event.delta : null;
    if (delta?.type === 'text_delta') {
      if (streaming.dataset.partialFrom === undefined) {
        streaming.dataset.partialFrom = String(text.textContent.length);
        if (text.textContent) text.textContent += '\n';
      }
      text.textContent += delta.text;
      conversation.scrollTop = conversation.scrollHeight;
      return;
    }
    const pieces = [];
    if (!parsed) pieces.push(line);
    else if (parsed.type === 'assistant') {
      if (streaming.dataset.partialFrom !== undefined) {
        text.textContent = text.textContent.slice(0, Number(streaming.dataset.partialFrom));
        delete streaming.dataset.partialFrom;
      }
      for (const block of parsed.message?.content ?? []) {
        if (block.type === 'text' && block.text) pieces.push(block.text);
        else if (block.type === 'tool_use') pieces.push(`⚙ ${block.name}`);
      }
    }
    if (pieces.length === 0) return;
    text.textContent += (text.textContent ? '\n' : '') + pieces.join('\n');
    conversation.scrollTop = conversation.scrollHeight;
  }

  async function sendMessage(event) {
    event.preventDefault();
    clearErrors(composer);
    composerAlert.show('');
    const content = message.value.trim();
    if (!channelId) { composerAlert.show('Create or pick a channel first.'); return; }
    if (!content) { message.focus(); return; }
    send.disabled = true;
    try {
      const stored = await api.post(`/api/channels/${encodeURIComponent(channelId)}/messages`, { author: ctx.user, content });
      message.value = '';
      addMessage(stored);
      if (!activeRunId) setActiveRun('pending', 'queued');
    } catch (error) {
      showApiError(composer, composerAlert, error);
    } finally {
      send.disabled = false;
      message.focus();
    }
  }

  async function cancelRun() {
    if (!activeRunId || activeRunId === 'pending') return;
    try {
      await api.post(`/api/runs/${encodeURIComponent(activeRunId)}/cancel`);
      runStatus.textContent = 'cancelling…';
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function createChannel(event) {
    event.preventDefault();
    clearErrors(newChannel);
    newAlert.show('');
    try {
      const channel = await api.post('/api/channels', { dir_path: dirInput.value.trim() || null, name: nameInput.value.trim() || null });
      dirInput.value = '';
      nameInput.value = '';
      newChannel.closest('details').open = false;
      await loadChannels(channel.id);
    } catch (error) {
      showApiError(newChannel, newAlert, error);
    }
  }
}

/** Channels may share a name: where each one works (its directory, or the connector it came
 * through) tells them apart in the picker. */
function channelLabel(c, connectors) {
  const where = c.platform ? connectorName(connectors, c.platform) : c.dir_path;
  return where ? `${c.name} — ${where}` : c.name;
}
