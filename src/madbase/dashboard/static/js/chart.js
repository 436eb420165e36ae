// Inline SVG line charts of [[unix_ts, value], ...] series (GET /projects/{ref}/usage): no chart library.
import { h } from './ui.js';
import { number } from './format.js';

// The extent of points: x (time) and y (values, from 0 at least).
export function extent(points) {
  const clean = (points || []).filter((p) => Array.isArray(p) && Number.isFinite(+p[0]) && Number.isFinite(+p[1]));
  if (!clean.length) return null;
  const xs = clean.map((p) => +p[0]); const ys = clean.map((p) => +p[1]);
  return { x0: Math.min(...xs), x1: Math.max(...xs), min: Math.min(0, ...ys), max: Math.max(...ys) };
}

// The SVG path of `points` scaled into a width × height box (y grows downwards) on the extent `box` (default:
// the points' own); pure, unit-tested.
export function linePath(points, width, height, pad = 0, box = extent(points)) {
  const clean = (points || []).filter((p) => Array.isArray(p) && Number.isFinite(+p[0]) && Number.isFinite(+p[1]));
  if (!clean.length || !box) return '';
  const { x0, x1, min, max } = box;
  const sx = (x) => pad + (x1 === x0 ? (width - 2 * pad) / 2 : ((x - x0) / (x1 - x0)) * (width - 2 * pad));
  const sy = (y) => height - pad - (max === min ? 0 : ((y - min) / (max - min)) * (height - 2 * pad));
  return clean.map((p, i) => `${i ? 'L' : 'M'}${sx(+p[0]).toFixed(1)},${sy(+p[1]).toFixed(1)}`).join(' ');
}

export function lineChart(title, lines, { unit = '', format = number } = {}) {
  const W = 320; const H = 120; const P = 8;
  const all = lines.flatMap((l) => l.points || []);
  const box = extent(all);  // every line of one chart on the same scale
  const last = (l) => { const p = l.points && l.points[l.points.length - 1]; return p ? format(p[1]) : '—'; };
  const paths = lines.map((l, i) => h('svg:path', { d: linePath(l.points, W, H, P, box), class: `line${i ? ' alt' : ''}` }));
  const summary = lines.map((l) => `${l.label}: ${last(l)}${unit}`).join(', ');
  return h('figure', { class: 'card' },
    h('figcaption', {}, h('strong', {}, title), ' ', h('span', { class: 'muted' }, summary)),
    box ? h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${title}: ${summary}` },
      h('svg:line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' }),
      h('svg:text', { x: P, y: 12 }, `${format(box.max)}${unit}`), ...paths)
      : h('p', { class: 'muted' }, 'No samples yet.'));
}
