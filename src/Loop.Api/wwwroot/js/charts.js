// Bar charts drawn as SVG: no chart library, nothing fetched. Each bar has a <title> tooltip
// and the chart an aria-label, so the numbers are readable without the picture.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/** Vertical bars over a series such as days: items [{ label, value, tip }]. */
export function columnChart(label, items, format) {
  const width = 480;
  const height = 180;
  const pad = { top: 12, right: 8, bottom: 24, left: 52 };
  const max = Math.max(...items.map((i) => i.value), 0);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = plotW / Math.max(items.length, 1);
  const chart = svg('svg', { role: 'img', 'aria-label': label, viewBox: `0 0 ${width} ${height}`, class: 'chart' });
  chart.append(svg('title', {}, label));
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    chart.append(svg('text', { x: pad.left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, format(max * fraction)));
  }
  const every = Math.ceil(items.length / 6);
  items.forEach((item, index) => {
    const barH = max > 0 ? (item.value / max) * plotH : 0;
    const x = pad.left + index * step + step * 0.15;
    chart.append(svg('rect', { class: 'bar', x, y: pad.top + plotH - barH, width: Math.max(step * 0.7, 1), height: barH },
      svg('title', {}, `${item.label}: ${item.tip ?? format(item.value)}`)));
    if ((items.length - 1 - index) % every === 0) {
      chart.append(svg('text', { x: x + step * 0.35, y: height - 6, class: 'axis', 'text-anchor': 'middle' }, item.short ?? item.label));
    }
  });
  return chart;
}

/** Horizontal bars for categories (models, channels, tasks), largest first. */
export function barList(label, items, format) {
  const sorted = [...items].sort((a, b) => b.value - a.value).slice(0, 12);
  const rowH = 26;
  const width = 480;
  const labelW = 175;
  const valueW = 70;
  const height = Math.max(sorted.length, 1) * rowH + 4;
  const max = Math.max(...sorted.map((i) => i.value), 0);
  const chart = svg('svg', { role: 'img', 'aria-label': label, viewBox: `0 0 ${width} ${height}`, class: 'chart bars' });
  chart.append(svg('title', {}, label));
  if (sorted.length === 0) chart.append(svg('text', { x: 4, y: 18, class: 'axis' }, 'no runs in this period'));
  sorted.forEach((item, index) => {
    const y = index * rowH + 4;
    const barW = max > 0 ? (item.value / max) * (width - labelW - valueW) : 0;
    const name = item.label.length > 24 ? `${item.label.slice(0, 23)}…` : item.label;
    chart.append(svg('text', { x: labelW - 8, y: y + 15, class: 'axis label', 'text-anchor': 'end' }, name));
    chart.append(svg('rect', { class: 'bar', x: labelW, y, width: barW, height: rowH - 8 }, svg('title', {}, `${item.label}: ${item.tip ?? format(item.value)}`)));
    chart.append(svg('text', { x: labelW + barW + 6, y: y + 15, class: 'value' }, format(item.value)));
  });
  return chart;
}
