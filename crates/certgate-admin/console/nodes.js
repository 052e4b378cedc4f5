// The Nodes page: the nodes of the gateway (GET /api/v1/cluster/nodes), or this node
// alone when the node has no cluster endpoint.

import * as api from './api.js';
import { h, set, date, table, badge, section, dl } from './ui.js';

const STATE_KIND = { up: 'ok', stale: 'warn', down: 'bad' };

export async function render(root) {
  document.title = 'Nodes · certgate console';
  const nodes = await api.getOptional('/cluster/nodes');
  if (nodes === null) {
    const gw = await api.get('/gateway');
    set(root, h('h1', {}, 'Nodes'),
      section('This node only',
        h('p', { class: 'muted' }, 'Cluster status is not available on this node: it serves the gateway alone (SQLite store).'),
        dl([['Configuration generation', String(gw.generation ?? '—')],
          ['Trust store', h('span', { class: `ts-${gw.truststore.status}` }, gw.truststore.status)],
          ['Trust store SHA-256', h('code', {}, gw.truststore.sha256 || '')]])));
    return;
  }
  set(root, h('h1', {}, 'Nodes'),
    section('Nodes of this gateway',
      table('Nodes', ['Name', 'State', 'Applied Generation', 'Trust Store', 'Admin Address', 'Proxy Address', 'Version', 'Started', 'Last Seen'],
        nodes.map((n) => [
          h('span', { title: n.id }, n.name),
          badge(n.state, STATE_KIND[n.state] || 'muted'),
          String(n.config_generation),
          h('span', { title: n.truststore?.sha256 || '' }, n.truststore?.status || ''),
          h('code', {}, n.admin_address), h('code', {}, n.proxy_address), n.version,
          date(n.started_at), date(n.last_seen)]),
        { empty: 'No nodes recorded.' })));
}
