// The live feed: one EventSource on /api/events shared by every page. It reconnects by itself
// with backoff (also across a daemon restart), resuming after the last event it saw so the
// daemon replays what happened in between, and tells pages when it is back.

const KINDS = [
  'message.received', 'run.queued', 'run.started', 'run.output', 'run.finished', 'run.error',
  'task.fired', 'task.error', 'task.loop_ended', 'channel.error', 'channel.session_reset', 'chat.error', 'chat.reply_recovered',
];

const eventListeners = new Set();
const statusListeners = new Set();
let source = null;
let retryMs = 1000;
let retryTimer = null;
let connected = false;
let everConnected = false;
let stopped = true;
let lastEventId = '';

export function startLive() {
  stopped = false;
  if (!source) connect();
}

export function stopLive() {
  stopped = true;
  lastEventId = '';
  clearTimeout(retryTimer);
  source?.close();
  source = null;
  setConnected(false);
}

export const isLive = () => connected;

/** fn(event) for every event; returns the unsubscribe function. */
export function onLiveEvent(fn) {
  eventListeners.add(fn);
  return () => eventListeners.delete(fn);
}

/** fn(connected, reconnected) on every change of the connection; returns the unsubscribe function. */
export function onLiveStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

function connect() {
  source = new EventSource(lastEventId ? `/api/events?after=${encodeURIComponent(lastEventId)}` : '/api/events');
  source.onopen = () => {
    retryMs = 1000;
    const reconnected = everConnected;
    everConnected = true;
    setConnected(true, reconnected);
  };
  source.onerror = () => {
    // EventSource gives up for good on some errors (an HTTP error status): retry ourselves.
    source.close();
    source = null;
    setConnected(false);
    if (stopped) return;
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 8000);
  };
  for (const kind of KINDS) {
    source.addEventListener(kind, (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (message.lastEventId) lastEventId = message.lastEventId;
      for (const listener of eventListeners) listener(event);
    });
  }
}

function setConnected(value, reconnected = false) {
  if (connected === value && !reconnected) return;
  connected = value;
  for (const listener of statusListeners) listener(value, reconnected);
}
