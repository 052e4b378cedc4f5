// The Activity page: denials by reason and API over the last hour (an SVG chart drawn
// here, no library), the client inventory (§13) and the audit log (§14) when the node
// has those endpoints.

import * as api from './api.js';
import { h, set, date, table, section } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const REASONS = ['no_certificate', 'untrusted', 'expired', 'not_yet_valid', 'revoked', 'malformed_header',
  'dn_mismatch', 'untrusted_proxy', 'truststore_unavailable', 'revocation_unknown'];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const reasonClass = (r) => `r-${REASONS.includes(r) ? r : 'other'}`;

/** Stacked bars: one per minute, one colour per reason. */
function chart(data) {
  const W = 720, H = 220, left = 40, bottom = 24, top = 10;
  const minutes = data.minutes;
  const totals = minutes.map((m) => m.denials.reduce((a, d) => a + d.count, 0));
  const max = Math.max(1, ...totals);
  const bw = (W - left - 10) / minutes.length;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart', 'aria-labelledby': 'chart-title' },
    s('title', { id: 'chart-title' }, `Denials per minute over the last hour: ${totals.reduce((a, b) => a + b, 0)} in all`));
  svg.append(s('line', { x1: left, y1: y(0), x2: W - 10, y2: y(0), class: 'axis' }));
  svg.append(s('text', { x: left - 6, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' }, max));
  svg.append(s('text', { x: left - 6, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, 0));
  svg.append(s('text', { x: left, y: H - 6, class: 'tick' }, '−60 min'));
  svg.append(s('text', { x: W - 10, y: H - 6, class: 'tick', 'text-anchor': 'end' }, 'now'));
  minutes.forEach((m, i) => {
    let acc = 0;
    const byReason = new Map();
    for (const d of m.denials) byReason.set(d.reason, (byReason.get(d.reason) || 0) + d.count);
    for (const [reason, n] of byReason) {
      const rect = s('rect', { x: left + i * bw + 1, y: y(acc + n), width: Math.max(1, bw - 2), height: y(acc) - y(acc + n), class: `bar ${reasonClass(reason)}` },
        s('title', {}, `${m.start.slice(11, 16)} UTC: ${n} ${reason}`));
      svg.append(rect);
      acc += n;
    }
  });
  const seen = [...new Set(data.total.map((t) => t.reason))];
  const legend = h('ul', { class: 'legend', 'aria-label': 'Reasons' },
    seen.map((r) => h('li', {}, h('span', { class: `swatch ${reasonClass(r)}` }), r)));
  return [svg, legend];
}

async function optionalList(title, path, columns, row) {
  let items;
  try {
    items = await api.getOptional(path);
  } catch (e) {
    return section(title, h('p', { class: 'status error', role: 'alert' }, e.message));
  }
  if (items === null) return section(title, h('p', { class: 'muted' }, 'Not available on this node.'));
  return section(title, table(title, columns, items.map(row), { empty: 'Nothing recorded yet.' }));
}

export async function render(root) {
  document.title = 'Activity · certgate console';
  const data = await api.getOptional('/activity/denials');
  const denials = data === null
    ? section('Denials over the last hour', h('p', { class: 'muted' }, 'Not available on this node.'))
    : section('Denials over the last hour',
      ...chart(data),
      table('Denials by reason and API', ['Reason', 'API', 'Denials'],
        data.total.map((t) => [t.reason, t.api || '(no API: refused in the handshake or unrouted)', String(t.count)]),
        { empty: 'No denials in the last hour.' }));
  const clients = await optionalList('Clients', '/clients',
    ['Subject', 'Issuer', 'Not After', 'Last Seen', 'Requests', 'Denied', 'APIs'],
    (c) => [c.subject, c.issuer, date(c.not_after), date(c.last_seen), String(c.requests),
      Object.entries(c.denied || {}).map(([k, v]) => `${k}: ${v}`).join(', ') || '0', (c.apis || []).join(', ')]);
  const audit = await optionalList('Audit log', '/audit?limit=100',
    ['#', 'At', 'Actor', 'Action', 'Target'],
    (a) => [String(a.id), date(a.at), a.actor, a.action, a.target]);
  set(root, h('h1', {}, 'Activity'), denials, clients, audit);
}
