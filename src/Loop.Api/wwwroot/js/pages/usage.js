// Usage: tokens and cost overall, per day, per model, channel and task, and the recent calls.

import { api, query } from '../api.js';
import { h, alertBox, formatCost, formatCount, formatNumber, formatTime, formatDuration, statusBadge, throttle } from '../ui.js';
import { columnChart, barList } from '../charts.js';
import { budgetsCard } from './budgets.js';
import { onLiveEvent, onLiveStatus } from '../live.js';

const CALL_PAGE = 50;
const tokensOf = (u) => u.input_tokens + u.output_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
const formatTokens = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n)));

export function render(root) {
  const alert = alertBox();
  const period = h('select', { id: 'usage-period' },
    [7, 30, 90, 365].map((days) => h('option', { value: days, selected: days === 30 }, `last ${days} days`)));
  const totals = h('div', { class: 'totals' });
  const charts = h('div', { class: 'charts' });
  const budgets = budgetsCard();
  const calls = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  let lastCall = null;
  let names = new Map();

  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Usage'),
      h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: period.id }, 'Period'), period))),
    alert, totals, charts, budgets,
    h('div', { class: 'table-wrap' }, h('table', {}, h('caption', {}, 'Recent calls'),
      h('thead', {}, h('tr', {}, ['Finished', 'Channel', 'Task', 'Model', 'Status', 'Tokens in / out', 'Cost', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
      calls)),
    more);

  period.addEventListener('change', load);
  more.addEventListener('click', loadCalls);
  // Nine calls a refresh: at most every 15 s however busy the daemon is.
  const refresh = throttle(load, 15000);
  const stopEvents = onLiveEvent((event) => { if (event.kind === 'run.finished' || event.kind === 'run.error') refresh(); });
  // Back after a break: the page may have opened while the daemon was away, with nothing loaded.
  const stopStatus = onLiveStatus((connected, reconnected) => { if (reconnected) load(); });
  load();
  return () => { stopEvents(); stopStatus(); refresh.cancel(); };

  async function load() {
    const days = Number(period.value);
    const from = new Date(Date.now() - days * 86400000).toISOString();
    const range = query({ from });
    try {
      const [total, daily, models, byChannel, byTask, channels, tasks, connectors] = await Promise.all([
        api.get(`/api/usage${range}`), api.get(`/api/usage/daily${query({ days })}`), api.get(`/api/usage/models${range}`),
        api.get(`/api/usage/channels${range}`), api.get(`/api/usage/tasks${range}`),
        api.get('/api/channels?limit=500'), api.get('/api/tasks'), api.get('/api/connectors'),
      ]);
      names = new Map([...channels.map((c) => [c.id, c.name]), ...tasks.map((t) => [t.id, t.name])]);
      drawTotals(total);
      const day = (d) => ({ label: d.key, short: d.key.slice(5), value: Number(d.usage.cost_usd), tip: `${formatCost(d.usage.cost_usd)}, ${formatCount(d.usage.runs, 'run')}` });
      const group = (g, fallback) => ({ label: g.key ? names.get(g.key) ?? g.key : fallback, value: Number(g.usage.cost_usd), tip: `${formatCost(g.usage.cost_usd)}, ${formatCount(tokensOf(g.usage), 'token')}, ${formatCount(g.usage.runs, 'run')}` });
      charts.replaceChildren(
        figure('Cost per day', columnChart('Cost per day', daily.map(day), formatCost)),
        figure('Tokens per day', columnChart('Tokens per day', daily.map((d) => ({ label: d.key, short: d.key.slice(5), value: tokensOf(d.usage) })), formatTokens)),
        figure('Cost by model', barList('Cost by model', models.map((g) => group(g, 'unknown model')), formatCost)),
        figure('Cost by channel', barList('Cost by channel', byChannel.map((g) => group(g, 'unknown')), formatCost)),
        figure('Cost by task', barList('Cost by task', byTask.map((g) => group(g, 'chat (no task)')), formatCost)));
      await budgets.load({ channels, tasks, connectors });
      lastCall = null;
      calls.replaceChildren();
      await loadCalls();
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function drawTotals(t) {
    const card = (label, value, testid, note) => h('div', { class: 'stat' }, h('span', { class: 'label' }, label), h('strong', { 'data-testid': testid }, value), note ? h('span', { class: 'muted small' }, note) : null);
    totals.replaceChildren(
      card('Cost', formatCost(t.cost_usd), 'usage-total-cost', Number(t.estimated_cost_usd) > 0 ? `${formatCost(t.estimated_cost_usd)} estimated from token prices` : null),
      card('Tokens', formatNumber(t.total_tokens), 'usage-total-tokens', `${formatNumber(t.input_tokens)} in · ${formatNumber(t.output_tokens)} out · ${formatNumber(t.cache_read_input_tokens)} cache read`),
      card('Runs', formatNumber(t.runs), 'usage-total-runs', t.unpriced_runs ? `${formatCount(t.unpriced_runs, 'run')} without a price` : null),
      card('Agent time', formatDuration(t.duration_ms), 'usage-total-duration', formatCount(t.num_turns, 'turn')));
  }

  async function loadCalls() {
    try {
      const page = await api.get(`/api/usage/calls${query({ limit: CALL_PAGE, before: lastCall })}`);
      calls.append(...page.map((c) => h('tr', {},
        h('td', { 'data-label': 'Finished' }, formatTime(c.finished_at)),
        h('td', { 'data-label': 'Channel' }, names.get(c.channel_id) ?? c.channel_id),
        h('td', { 'data-label': 'Task' }, c.task_id ? names.get(c.task_id) ?? c.task_id : '—'),
        h('td', { 'data-label': 'Model' }, c.model ?? '—'),
        h('td', { 'data-label': 'Status' }, statusBadge(c.status)),
        h('td', { 'data-label': 'Tokens in / out' }, `${formatNumber(c.input_tokens)} / ${formatNumber(c.output_tokens)}`),
        h('td', { 'data-label': 'Cost' }, formatCost(c.cost_usd), c.cost_estimated ? h('span', { class: 'muted', title: 'estimated from the model price table' }, ' est.') : null),
        h('td', { 'data-label': 'Duration' }, formatDuration(c.duration_ms)))));
      if (calls.children.length === 0) calls.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No finished runs yet.')));
      lastCall = page.at(-1)?.run_id ?? lastCall;
      more.hidden = page.length < CALL_PAGE;
    } catch (error) {
      alert.show(error.message);
    }
  }
}

function figure(title, chart) {
  return h('figure', { class: 'card' }, h('figcaption', {}, title), chart);
}
