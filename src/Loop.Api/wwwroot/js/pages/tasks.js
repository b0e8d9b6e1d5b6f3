// Tasks: scheduled and loop tasks across channels: create (or add from a template), edit, toggle,
// delete, run history, and start/stop for loop tasks.

import { api, query } from '../api.js';
import { h, field, alertBox, clearErrors, showApiError, formatCount, formatRelative, formatDuration, formatTime, statusBadge, excerpt, throttle } from '../ui.js';
import { onLiveEvent, onLiveStatus } from '../live.js';

const PAGE = 50;
const RUN_PAGE = 20;
const SCHEDULE_HINTS = {
  cron: 'Five fields, like "0 9 * * 1-5" (9:00 on weekdays) or a macro like @daily.',
  interval: 'A duration, like "30m", "2h" or "1d".',
  once: 'A delay like "10m", or an instant like "2026-12-01T09:00:00Z".',
  loop: 'Leave empty: a loop task starts now and iterates until the agent says the completion promise.',
};

export function render(root) {
  let tasks = [];
  let channels = [];
  let page = 0;
  let editing = null;
  let runsOf = null;
  let lastRunId = null;

  const alert = alertBox();
  const body = h('tbody');
  const pager = h('div', { class: 'pager' });
  const formSection = h('section', { class: 'card', hidden: true });
  const runsSection = h('section', { class: 'runs', hidden: true });
  root.append(
    h('header', { class: 'page-header' }, h('h1', {}, 'Tasks'), h('div', { class: 'actions' },
      h('button', { type: 'button', 'data-change': true, onclick: openTemplates }, 'From template'),
      h('button', { type: 'button', 'data-change': true, class: 'primary', onclick: () => openForm(null) }, 'New task'))),
    alert, formSection,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Channel', 'Type', 'Schedule', 'Next run', 'State', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    pager, runsSection);

  const refresh = throttle(load, 5000);
  const stopEvents = onLiveEvent((event) => {
    if (event.kind.startsWith('task.')) refresh();
    if (runsOf && (event.kind === 'run.finished' || event.kind === 'run.error' || event.kind === 'run.started')) refreshRuns();
  });
  const refreshRuns = throttle(() => { if (runsOf) showRuns(runsOf, false); }, 5000);
  const stopStatus = onLiveStatus((connected, reconnected) => { if (reconnected) refresh(); });
  load();
  return () => { stopEvents(); stopStatus(); refresh.cancel(); refreshRuns.cancel(); };

  async function load() {
    try {
      [tasks, channels] = await Promise.all([api.get('/api/tasks'), api.get('/api/channels?limit=500')]);
      drawTable();
      alert.show('');
    } catch (error) {
      alert.show(error.message);
    }
  }

  function channelName(id) { return channels.find((c) => c.id === id)?.name ?? id; }

  function drawTable() {
    const pages = Math.max(1, Math.ceil(tasks.length / PAGE));
    page = Math.min(page, pages - 1);
    const shown = tasks.slice(page * PAGE, (page + 1) * PAGE);
    body.replaceChildren(...shown.map(row));
    if (tasks.length === 0) body.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No tasks yet. Create one with "New task", or ask an agent to schedule one.')));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: page === 0, onclick: () => { page--; drawTable(); } }, 'Previous'),
      h('span', { class: 'muted' }, tasks.length ? `page ${page + 1} of ${pages} · ${formatCount(tasks.length, 'task')}` : ''),
      h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page++; drawTable(); } }, 'Next'));
  }

  function state(t) {
    if (t.type === 'loop') {
      const detail = t.loop_state === 'running' ? `iteration ${t.iteration}/${t.max_iterations}` : t.stop_reason;
      return [statusBadge(t.loop_state), detail ? h('span', { class: 'muted' }, ` ${detail}`) : null];
    }
    // A once task that ran is done: only a new schedule (Edit) runs it again.
    if (t.done) return statusBadge('done');
    return statusBadge(t.enabled ? 'enabled' : 'disabled');
  }

  // A once task's schedule is the instant it runs, in ISO form with fractions of a second: shown as
  // other times are, in the browser's time zone (the task's only said how to read a wall time).
  function schedule(t) {
    if (!t.schedule) return '—';
    if (t.type === 'once') return h('time', { datetime: t.schedule, title: t.schedule }, formatTime(t.schedule));
    return [h('code', {}, t.schedule), t.timezone ? h('span', { class: 'muted' }, ` ${t.timezone}`) : null];
  }

  function row(t) {
    const loopRunning = t.type === 'loop' && t.loop_state === 'running';
    return h('tr', { 'data-task': t.id },
      h('td', { 'data-label': 'Name' }, h('strong', {}, t.name), h('div', { class: 'muted small' }, excerpt(t.prompt, 80))),
      h('td', { 'data-label': 'Channel' }, h('a', { href: `#/chat/${encodeURIComponent(t.channel_id)}` }, channelName(t.channel_id))),
      h('td', { 'data-label': 'Type' }, t.type),
      h('td', { 'data-label': 'Schedule' }, schedule(t)),
      h('td', { 'data-label': 'Next run' }, t.enabled && t.next_run_at ? h('time', { datetime: t.next_run_at, title: formatTime(t.next_run_at) }, formatRelative(t.next_run_at)) : '—'),
      h('td', { 'data-label': 'State' }, state(t)),
      h('td', { 'data-label': 'Actions', class: 'row-actions' },
        h('button', { type: 'button', 'data-change': true, onclick: () => openForm(t) }, 'Edit'),
        t.type === 'loop'
          ? h('button', { type: 'button', 'data-change': true, onclick: () => loopAction(t, loopRunning ? 'stop' : 'start') }, loopRunning ? 'Stop' : 'Start')
          : t.done ? null : h('button', { type: 'button', 'data-change': true, onclick: () => toggle(t) }, t.enabled ? 'Disable' : 'Enable'),
        h('button', { type: 'button', onclick: () => showRuns(t, true) }, 'Runs'),
        h('button', { type: 'button', 'data-change': true, class: 'danger', onclick: () => remove(t) }, 'Delete')));
  }

  function openForm(task) {
    editing = task;
    const formAlert = alertBox();
    const input = (name, attrs = {}) => h('input', { name, autocomplete: 'off', ...attrs });
    const options = (name, values, selected) => h('select', { name }, values.map(([value, label]) => h('option', { value, selected: value === selected }, label)));
    const channel = options('channel_id', channels.map((c) => [c.id, c.name]), task?.channel_id);
    const type = options('type', [['cron', 'cron'], ['interval', 'interval'], ['once', 'once'], ['loop', 'loop']], task?.type ?? 'cron');
    const schedule = input('schedule', { value: task?.schedule ?? '', placeholder: '0 9 * * *' });
    const scheduleField = field('Schedule', schedule, SCHEDULE_HINTS[type.value]);
    const timezone = input('timezone', { value: task?.timezone ?? '', placeholder: Intl.DateTimeFormat().resolvedOptions().timeZone });
    const maxIterations = input('max_iterations', { type: 'number', min: 1, max: 1000, value: task?.max_iterations ?? '' });
    const promise = input('completion_promise', { value: task?.completion_promise ?? '', placeholder: 'DONE' });
    const loopFields = h('div', { class: 'grid' }, field('Max iterations', maxIterations), field('Completion promise', promise));
    const form = h('form', { novalidate: true },
      h('h2', {}, task ? `Edit ${task.name}` : 'New task'),
      h('div', { class: 'grid' },
        field('Channel', channel),
        field('Name', input('name', { value: task?.name ?? '', placeholder: 'daily-summary' })),
        field('Type', type),
        scheduleField,
        field('Time zone', timezone, 'IANA name for cron tasks; empty means UTC.'),
        field('Context', options('context', [['isolated', 'isolated (own session)'], ['channel', 'channel (the chat\'s session)']], task?.context ?? 'isolated')),
        field('Misfire', options('misfire', [['run_once', 'run once after downtime'], ['skip', 'skip missed slots']], task?.misfire ?? 'run_once'))),
      loopFields,
      field('Prompt', h('textarea', { name: 'prompt', rows: 4, placeholder: 'What the agent should do' }, task?.prompt ?? '')),
      field('Prompt file', input('prompt_file', { value: task?.prompt_file ?? '', placeholder: 'PROMPT_plan.md' }),
        'Instead of a prompt: a file of the channel\'s project, read afresh at each run.'),
      formAlert,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary' }, 'Save task'),
        h('button', { type: 'button', onclick: closeForm }, 'Cancel')));
    const syncType = () => {
      loopFields.hidden = type.value !== 'loop';
      scheduleField.querySelector('.hint').textContent = SCHEDULE_HINTS[type.value];
    };
    type.addEventListener('change', syncType);
    syncType();
    if (task) channel.disabled = true;
    if (channels.length === 0) formAlert.show('Create a channel first (Chat page): every task belongs to one.');
    form.addEventListener('submit', (event) => { event.preventDefault(); save(form, formAlert); });
    formSection.replaceChildren(form);
    formSection.hidden = false;
    form.querySelector('input[name="name"]').focus();
  }

  async function openTemplates() {
    editing = null;
    const formAlert = alertBox();
    let templates = [];
    try {
      templates = await api.get('/api/templates');
    } catch (error) {
      alert.show(error.message);
      return;
    }
    const channel = h('select', { name: 'channel_id' }, channels.map((c) => h('option', { value: c.id }, c.name)));
    const template = h('select', { name: 'template' }, templates.map((t) => h('option', { value: t.name }, t.name)));
    const about = h('p', { class: 'muted' });
    const describe = () => {
      const t = templates.find((x) => x.name === template.value);
      about.replaceChildren(...(t ? [t.description ? `${t.description} · ` : '', `${t.type} `, h('code', {}, t.schedule || '—'), ` · ${excerpt(t.prompt, 120)}`] : []));
    };
    template.addEventListener('change', describe);
    describe();
    const form = h('form', { novalidate: true },
      h('h2', {}, 'Add a task from a template'),
      templates.length === 0
        ? h('p', { class: 'empty' }, 'No templates: add task_templates to config.json (see the README), then restart Loop.')
        : [h('div', { class: 'grid' }, field('Channel', channel), field('Template', template)), about],
      formAlert,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary', disabled: templates.length === 0 || channels.length === 0 }, 'Add task'),
        h('button', { type: 'button', onclick: closeForm }, 'Cancel')));
    if (channels.length === 0) formAlert.show('Create a channel first (Chat page): every task belongs to one.');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        await api.post(`/api/channels/${encodeURIComponent(channel.value)}/templates/${encodeURIComponent(template.value)}`);
        closeForm();
        await load();
      } catch (error) {
        showApiError(form, formAlert, error);
      }
    });
    formSection.replaceChildren(form);
    formSection.hidden = false;
  }

  function closeForm() {
    formSection.hidden = true;
    formSection.replaceChildren();
    editing = null;
  }

  async function save(form, formAlert) {
    clearErrors(form);
    const value = (name) => form.elements.namedItem(name).value.trim();
    // A prompt file, when given, is the prompt: the daemon takes one or the other.
    const promptFile = value('prompt_file');
    const body = {
      name: value('name') || null,
      type: value('type'),
      schedule: value('schedule'),
      ...(promptFile ? { prompt_file: promptFile } : { prompt: value('prompt') }),
      timezone: value('timezone') || null,
      context: value('context'),
      misfire: value('misfire'),
    };
    if (body.type === 'loop') {
      body.max_iterations = value('max_iterations') ? Number(value('max_iterations')) : null;
      body.completion_promise = value('completion_promise') || null;
    }
    try {
      if (editing) await api.patch(`/api/tasks/${encodeURIComponent(editing.id)}`, body);
      else await api.post('/api/tasks', { ...body, channel_id: value('channel_id') });
      closeForm();
      await load();
    } catch (error) {
      showApiError(form, formAlert, error);
    }
  }

  async function act(work) {
    try {
      await work();
      await load();
    } catch (error) {
      alert.show(error.message);
    }
  }

  // Declarations, not arrow constants: render returns before reaching this point.
  function toggle(t) { return act(() => api.patch(`/api/tasks/${encodeURIComponent(t.id)}`, { enabled: !t.enabled })); }
  function loopAction(t, action) { return act(() => api.post(`/api/tasks/${encodeURIComponent(t.id)}/${action}`)); }
  function remove(t) {
    if (!confirm(`Delete the task ${t.name}? Its run history stays with the channel.`)) return;
    if (runsOf?.id === t.id) { runsOf = null; runsSection.hidden = true; }
    act(() => api.del(`/api/tasks/${encodeURIComponent(t.id)}`));
  }

  async function showRuns(task, fresh) {
    runsOf = task;
    try {
      const runs = await api.get(`/api/tasks/${encodeURIComponent(task.id)}/runs${query({ limit: RUN_PAGE })}`);
      const list = h('tbody', {}, runs.map(runRow));
      lastRunId = runs.at(-1)?.id ?? null;
      const more = h('button', { type: 'button', hidden: runs.length < RUN_PAGE }, 'Load more');
      more.addEventListener('click', async () => {
        const older = await api.get(`/api/tasks/${encodeURIComponent(task.id)}/runs${query({ limit: RUN_PAGE, before: lastRunId })}`);
        list.append(...older.map(runRow));
        lastRunId = older.at(-1)?.id ?? lastRunId;
        more.hidden = older.length < RUN_PAGE;
      });
      runsSection.replaceChildren(
        h('h2', {}, `Runs of ${task.name}`),
        runs.length === 0 ? h('p', { class: 'empty' }, 'No runs yet.') : h('div', { class: 'table-wrap' }, h('table', {},
          h('thead', {}, h('tr', {}, ['Status', 'Started', 'Duration', 'Cost', 'Reply'].map((c) => h('th', { scope: 'col' }, c)))), list)),
        more);
      runsSection.hidden = false;
      if (fresh) runsSection.scrollIntoView({ behavior: 'smooth', block: 'start' });
    } catch (error) {
      alert.show(error.message);
    }
  }

  function runRow(r) {
    return h('tr', {},
      h('td', { 'data-label': 'Status' }, statusBadge(r.status)),
      h('td', { 'data-label': 'Started' }, formatTime(r.started_at ?? r.created_at)),
      h('td', { 'data-label': 'Duration' }, formatDuration(r.elapsed_ms)),
      h('td', { 'data-label': 'Cost' }, `$${Number(r.usage.cost_usd).toFixed(4)}`),
      h('td', { 'data-label': 'Reply', class: 'reply' }, h('details', {}, h('summary', {}, excerpt(r.reply ?? r.error ?? '', 100) || '—'), h('pre', {}, r.reply ?? r.error ?? ''))));
  }
}
