// Runtime: what an operator checks first: the node, the nodes of its cluster, the container pool,
// live channel actors, throughput and run durations, the store and the Docker engine. Refreshes while visible.

import { api } from '../api.js';
import { h, alertBox, formatCount, formatDuration, formatNumber, excerpt } from '../ui.js';
import { columnChart } from '../charts.js';

const REFRESH_MS = 3000;

export function render(root) {
  const alert = alertBox();
  const content = h('div', { class: 'runtime' });
  root.append(h('header', { class: 'page-header' }, h('h1', {}, 'Runtime'), h('span', { class: 'muted small' }, `refreshes every ${REFRESH_MS / 1000} s`),
    // Orleans' own view of the silo: grains, calls, reminders. Behind the same login.
    h('a', { href: '/orleans/', target: '_blank', rel: 'noopener', 'data-testid': 'orleans-dashboard' }, 'Orleans dashboard')), alert, content);
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) await load();
    timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };

  async function load() {
    try {
      const [runtime, cluster] = await Promise.all([api.get('/api/runtime'), api.get('/api/cluster')]);
      draw(runtime, cluster.nodes);
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function draw(r, nodes) {
    const number = (testid, value) => h('strong', { 'data-testid': testid }, formatNumber(value));
    const stat = (label, value) => h('div', { class: 'stat' }, h('span', { class: 'label' }, label), value);
    const ok = (good, text) => h('span', { class: `badge ${good ? 'status-succeeded' : 'status-failed'}` }, text);
    const d = r.durations;
    const perMinute = r.runs_per_minute.map((m) => ({
      label: new Date(m.minute).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' }),
      value: m.runs,
      tip: `${formatCount(m.runs, 'run')}, ${formatNumber(m.failed)} not succeeded`,
    }));
    // Drawn as wide as the inside of its card (34 px of padding and border less), so it fills the
    // card with 12 px text: a narrower picture stretched to fit would enlarge the text with it.
    const chartWidth = Math.max(content.clientWidth - 34, 320);
    content.replaceChildren(
      section('Node', h('dl', { class: 'facts' },
        fact('Name', r.node), fact('Version', r.version), fact('Process', `pid ${r.pid}`),
        fact('Up for', formatDuration(r.uptime_seconds * 1000)), fact('Runner', r.runner),
        fact('Armed task timers', formatNumber(r.tasks_armed)), fact('Live-feed subscribers', formatNumber(r.event_subscribers)))),
      // One node alone is a cluster of one; a dead node stays listed until Orleans forgets it.
      section('Nodes', h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'nodes' },
        h('thead', {}, h('tr', {}, ['Node', 'Status', 'Address', 'Running runs', 'Grains', 'CPU', 'Last seen', 'Holds'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, nodes.map((n) => h('tr', {},
          h('td', { 'data-label': 'Node' }, n.this_node ? h('strong', {}, `${n.name} (this one)`) : n.name),
          h('td', { 'data-label': 'Status' }, ok(n.status === 'active', n.status)),
          h('td', { 'data-label': 'Address' }, h('code', {}, n.address)),
          h('td', { 'data-label': 'Running runs' }, formatNumber(n.running_runs)),
          h('td', { 'data-label': 'Grains' }, n.activations == null ? '—' : formatNumber(n.activations)),
          h('td', { 'data-label': 'CPU' }, n.cpu_percent == null ? '—' : `${n.cpu_percent.toFixed(1)}%`),
          h('td', { 'data-label': 'Last seen' }, new Date(n.last_seen_at).toLocaleTimeString()),
          // The chat connections (a Discord gateway, ...) that node listens on for the whole cluster.
          h('td', { 'data-label': 'Holds' }, n.holds.length === 0 ? '—' : n.holds.join(', ')))))))),
      section('Container pool', h('div', { class: 'totals' },
        stat('Running', number('pool-running', r.pool.running)),
        stat('Waiting for a slot', number('pool-waiting', r.pool.waiting)),
        stat('Capacity', number('pool-capacity', r.pool.capacity)))),
      section('Channel grains', r.actors.length === 0
        ? h('p', { class: 'empty' }, 'No channel grain is active: one starts when its channel gets work and stops when idle.')
        : h('div', { class: 'table-wrap' }, h('table', {},
          h('thead', {}, h('tr', {}, ['Channel', 'Running run', 'Queue'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, r.actors.map((a) => h('tr', {},
            h('td', { 'data-label': 'Channel' }, h('a', { href: `#/chat/${encodeURIComponent(a.channel_id)}` }, a.channel_name ?? a.channel_id)),
            h('td', { 'data-label': 'Running run' }, a.active_run_id ? h('code', {}, a.active_run_id) : 'idle'),
            h('td', { 'data-label': 'Queue' }, formatNumber(a.queued)))))))),
      section('Runs per minute', columnChart('Runs per minute', perMinute, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), chartWidth),
        h('p', { class: 'muted small' }, `${formatCount(perMinute.reduce((s, m) => s + m.value, 0), 'run')} in the last hour`)),
      section('Run duration', h('div', { class: 'totals' },
        stat('p50', h('strong', { 'data-testid': 'duration-p50' }, formatDuration(d.p50_ms))),
        stat('p90', h('strong', { 'data-testid': 'duration-p90' }, formatDuration(d.p90_ms))),
        stat('p99', h('strong', { 'data-testid': 'duration-p99' }, formatDuration(d.p99_ms))),
        stat('max', h('strong', {}, formatDuration(d.max_ms)))),
        h('p', { class: 'muted small' }, `${formatCount(d.count, 'run')} finished in the last ${formatCount(d.window_minutes, 'minute')}`)),
      section('Store', h('dl', { class: 'facts' },
        fact('Status', ok(r.store.ok, r.store.ok ? 'ok' : 'failing')), fact('Kind', r.store.kind), fact('Location', h('code', {}, r.store.location)),
        r.store.error ? fact('Error', r.store.error) : null)),
      section('Docker engine', h('dl', { class: 'facts' },
        fact('Status', ok(r.docker.reachable, r.docker.reachable ? 'reachable' : 'unreachable')), fact('Endpoint', h('code', {}, r.docker.endpoint)),
        fact('API version', r.docker.api_version ?? '—'), fact('Agent image', h('code', {}, r.docker.image)), fact('Image', r.docker.image_status),
        r.docker.error ? fact('Error', excerpt(r.docker.error, 300)) : null)),
    );
  }
}

function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), children);
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}
