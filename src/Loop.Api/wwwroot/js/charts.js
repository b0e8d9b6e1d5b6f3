// Bar charts drawn as SVG: no chart library, nothing fetched. Each bar has a <title> tooltip
// and the chart an aria-label, so the numbers are readable without the picture.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

// Text cannot be measured before the chart is on the page: 8 px is wider than a digit of the
// 12 px axis font (DejaVu Sans, the widest fallback, draws one 7.6 px wide).
const textWidth = (text) => String(text).length * 8;

/** Vertical bars over a series such as days: items [{ label, value, tip }]. `width` is that of the
 * picture before it is scaled to its box: a page that knows the box's width draws it that wide. */
export function columnChart(label, items, format, width = 480) {
  const height = 180;
  const max = Math.max(...items.map((i) => i.value), 0);
  const ticks = [0, 0.5, 1].map((fraction) => ({ fraction, text: format(max * fraction) }));
  // As much room on the left as the widest value on the axis takes, so none is cut off.
  const pad = { top: 12, right: 8, bottom: 24, left: Math.max(...ticks.map((t) => textWidth(t.text))) + 10 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = plotW / Math.max(items.length, 1);
  const chart = svg('svg', { role: 'img', 'aria-label': label, viewBox: `0 0 ${width} ${height}`, class: 'chart' });
  chart.append(svg('title', {}, label));
  for (const { fraction, text } of ticks) {
    const y = pad.top + plotH * (1 - fraction);
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    chart.append(svg('text', { x: pad.left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, text));
  }
  const every = Math.ceil(items.length / 6);
  items.forEach((item, index) => {
    const barH = max > 0 ? (item.value / max) * plotH : 0;
    const x = pad.left + index * step + step * 0.15;
    chart.append(svg('rect', { class: 'bar', x, y: pad.top + plotH - barH, width: Math.max(step * 0.7, 1), height: barH },
      svg('title', {}, `${item.label}: ${item.tip ?? format(item.value)}`)));
    if ((items.length - 1 - index) % every === 0) {
      // Centred under its bar, but the newest bar is at the very right: a label that might not fit
      // there ends at the edge instead, whatever font the browser has.
      const text = item.short ?? item.label;
      const centre = x + step * 0.35;
      const atEdge = centre + textWidth(text) / 2 > width - 2;
      chart.append(svg('text', { x: atEdge ? width - 2 : centre, y: height - 6, class: 'axis', 'text-anchor': atEdge ? 'end' : 'middle' }, text));
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
