// The Usage page's budgets: every limit with what its channel, task or connector spent this UTC day
// and month, and a form to set one. The daemon enforces them; this only shows and changes them.

import { api } from '../api.js';
import { h, alertBox, field, clearErrors, showApiError, formatCost, formatDateTime } from '../ui.js';

const SCOPES = { channel: 'channels', task: 'tasks', connector: 'connectors' };

/** The budgets card; `load({ channels, tasks, connectors })` draws it from the daemon. */
export function budgetsCard() {
  const alert = alertBox();
  const rows = h('tbody');
  const scope = h('select', { name: 'scope', 'data-testid': 'budget-scope' }, Object.keys(SCOPES).map((s) => h('option', { value: s }, s)));
  const target = h('select', { name: 'id', 'data-testid': 'budget-target' });
  const daily = h('input', { name: 'daily_usd', type: 'number', min: 0, step: '0.01', inputmode: 'decimal', placeholder: 'no limit' });
  const monthly = h('input', { name: 'monthly_usd', type: 'number', min: 0, step: '0.01', inputmode: 'decimal', placeholder: 'no limit' });
  const form = h('form', { novalidate: true, class: 'budget-form', 'data-change': true },
    h('div', { class: 'row' }, field('For', scope), field('Which', target),
      field('Daily USD', daily), field('Monthly USD', monthly),
      h('button', { type: 'submit', class: 'primary' }, 'Set budget')));
  const card = h('section', { class: 'card', 'aria-labelledby': 'budgets-title' },
    h('h2', { id: 'budgets-title' }, 'Budgets'),
    h('p', { class: 'muted small' }, 'Runs a budget cannot pay for are refused until it resets (midnight UTC, the 1st of the month); a run gets what is left as its limit. 80% is warned once in the channel.'),
    alert,
    h('div', { class: 'table-wrap' }, h('table', { 'aria-labelledby': 'budgets-title' },
      h('thead', {}, h('tr', {}, ['For', 'Today', 'This month', 'Resets', ''].map((c) => h('th', { scope: 'col' }, c)))),
      rows)),
    form);
  let targets = { channels: [], tasks: [], connectors: [] };

  const drawTargets = () => {
    target.replaceChildren(...targets[SCOPES[scope.value]].map((t) => h('option', { value: t.id }, t.name)));
  };
  scope.addEventListener('change', drawTargets);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    alert.show('');
    const amount = (input) => (input.value.trim() === '' ? null : Number(input.value));
    try {
      await api.put(`/api/${SCOPES[scope.value]}/${encodeURIComponent(target.value)}/budget`, { daily_usd: amount(daily), monthly_usd: amount(monthly) });
      daily.value = '';
      monthly.value = '';
      await draw();
    } catch (error) {
      showApiError(form, alert, error);
    }
  });

  async function remove(budget) {
    try {
      await api.del(`/api/${SCOPES[budget.scope]}/${encodeURIComponent(budget.id)}/budget`);
      await draw();
    } catch (error) {
      alert.show(error.message);
    }
  }

  async function draw() {
    const budgets = await api.get('/api/budgets');
    const spent = (amount, limit) => (limit === null ? `${formatCost(amount)}, no limit`
      : h('span', {}, `${formatCost(amount)} of ${formatCost(limit)} `, h('meter', { min: 0, max: Number(limit), high: Number(limit) * 0.8, value: Number(amount) })));
    rows.replaceChildren(...budgets.map((b) => h('tr', { 'data-testid': `budget-${b.id}` },
      h('td', { 'data-label': 'For' }, `${b.scope} ${b.name}`, b.spent ? [' ', h('span', { class: 'badge status-failed' }, `${b.spent} budget spent`)] : null),
      h('td', { 'data-label': 'Today' }, spent(b.spent_today_usd, b.daily_usd)),
      h('td', { 'data-label': 'This month' }, spent(b.spent_this_month_usd, b.monthly_usd)),
      h('td', { 'data-label': 'Resets' }, b.daily_usd === null ? formatDateTime(b.month_resets_at) : formatDateTime(b.day_resets_at)),
      h('td', {}, h('button', { type: 'button', 'data-change': true, onclick: () => remove(b) }, 'Remove')))));
    if (budgets.length === 0) rows.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No budgets: runs may spend without limit.')));
  }

  card.load = async (lists) => {
    targets = lists;
    const chosen = target.value;
    drawTargets();
    if (chosen) target.value = chosen;
    await draw();
  };
  return card;
}
