// The APIs page: deployed APIs (create, edit, delete) and an API's page with its client
// certificate auth override ("Add API Client Certificate Auth", "Remove Override") and the
// effective settings.

import * as api from './api.js';
import { h, set, field, status, busy, table, badge, section, dl, confirmAction } from './ui.js';

const MODE_LABELS = { none: 'None', mtls: 'Client Certificate Authentication', header: 'Client Certificate Header Authentication' };

export async function render(root, [id]) {
  if (id) return apiPage(root, id);
  document.title = 'APIs · certgate console';
  const apis = await api.get('/apis');
  const st = status();
  set(root,
    h('h1', {}, 'APIs'),
    section('Deployed APIs',
      st,
      table('APIs', ['Name', 'Base Path', 'Upstream', 'Client Certificate Auth', 'Actions'],
        apis.map((a) => [h('a', { href: `#/apis/${a.id}` }, a.name), h('code', {}, a.base_path), h('code', {}, a.upstream),
          a.override ? badge('Overridden', 'info') : badge('Inherited', 'muted'),
          h('span', { class: 'actions' },
            h('a', { href: `#/apis/${a.id}`, class: 'button', 'aria-label': `Edit ${a.name}` }, 'Edit'),
            h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${a.name}`, onclick: async () => {
              st.clear();
              if (!await confirmAction(`Delete the API "${a.name}" (${a.base_path})? Requests to it will answer 404.`, 'Delete')) return;
              try {
                await api.del(`/apis/${a.id}`);
                await render(root, []);
              } catch (e) { st.error(e); }
            } }, 'Delete'))]),
        { empty: 'No APIs yet.' })),
    section('Create API', apiForm(null, async (body) => {
      const a = await api.post('/apis', body);
      location.hash = `#/apis/${a.id}`;
    }, 'Create API')));
}

function apiForm(a, submit, label) {
  const name = h('input', { type: 'text', value: a?.name || '', autocomplete: 'off' });
  const base = h('input', { type: 'text', value: a?.base_path || '', autocomplete: 'off', spellcheck: 'false' });
  const up = h('input', { type: 'url', value: a?.upstream || '', autocomplete: 'off', spellcheck: 'false' });
  const st = status();
  const button = h('button', { type: 'submit', class: 'primary' }, label);
  return h('form', { novalidate: true, onsubmit: (ev) => {
    ev.preventDefault();
    busy(button, async () => {
      st.clear();
      try {
        await submit({ name: name.value.trim(), base_path: base.value.trim(), upstream: up.value.trim() });
        st.ok('Saved');
      } catch (e) { st.error(e); }
    });
  } },
  field('Name', name), field('Base Path', base, '/ or a path such as /orders/v1'), field('Upstream', up, 'http:// or https:// URL'),
  h('div', { class: 'row' }, button, st));
}

async function apiPage(root, id) {
  const a = await api.get(`/apis/${encodeURIComponent(id)}`);
  const auth = await api.get(`/apis/${a.id}/client-cert-auth`);
  const gw = await api.get('/gateway');
  document.title = `${a.name} · APIs · certgate console`;
  const dst = status();
  const del = h('button', { type: 'button', class: 'danger' }, 'Delete API');
  del.addEventListener('click', async () => {
    dst.clear();
    if (!await confirmAction(`Delete the API "${a.name}" (${a.base_path})? Requests to it will answer 404.`, 'Delete')) return;
    try {
      await api.del(`/apis/${a.id}`);
      location.hash = '#/apis';
    } catch (e) { dst.error(e); }
  });
  set(root,
    h('p', {}, h('a', { href: '#/apis' }, '← APIs')),
    h('h1', {}, a.name),
    section('API', apiForm(a, (body) => api.put(`/apis/${a.id}`, body), 'Save'), h('div', { class: 'row' }, del, dst)),
    overrideSection(a, auth, gw));
}

function effectiveList(eff, gw) {
  return dl([
    ['Mode', h('span', {}, MODE_LABELS[eff.mode] || eff.mode, ' ', h('span', { class: 'muted' }, '(the gateway\'s; read-only)'))],
    ['Certificate Auth Required', eff.required ? 'Yes' : 'No'],
    ['Trusted Distinguished Names', eff.trusted_dns.length
      ? h('ol', { class: 'plain' }, eff.trusted_dns.map((p) => h('li', {}, h('code', {}, p))))
      : 'No DN restriction'],
  ]);
}

function overrideSection(a, auth, gw) {
  const box = h('div');
  const ov = auth.override;
  const gws = gw.client_cert_auth;
  const st = status();
  const effBox = h('div', {}, effectiveList(auth.effective, gw));
  const refresh = async (message) => {
    const next = await api.get(`/apis/${a.id}/client-cert-auth`);
    set(box, overrideBody(next.override));
    set(effBox, effectiveList(next.effective, gw));
    if (message) st.ok(message);
  };
  const overrideBody = (ov) => {
    if (!ov) {
      const add = h('button', { type: 'button', class: 'primary' }, 'Add API Client Certificate Auth');
      add.addEventListener('click', () => { set(box, editor({ required: null, trusted_dns: null })); box.querySelector('select').focus(); });
      return [h('p', {}, badge('Inherited', 'muted'), ' This API uses the gateway\'s client certificate auth settings.'), h('div', { class: 'row' }, add)];
    }
    return editor(ov);
  };
  const editor = (ov) => {
    const req = h('select', {},
      h('option', { value: 'inherit', selected: ov.required === null || ov.required === undefined }, `Inherited (gateway: ${gws.required ? 'Yes' : 'No'})`),
      h('option', { value: 'true', selected: ov.required === true }, 'Yes'),
      h('option', { value: 'false', selected: ov.required === false }, 'No'));
    const dnMode = h('select', {},
      h('option', { value: 'inherit', selected: !Array.isArray(ov.trusted_dns) }, `Inherited (gateway: ${gws.trusted_dns.length} patterns)`),
      h('option', { value: 'set', selected: Array.isArray(ov.trusted_dns) }, 'Set for this API'));
    const dns = h('textarea', { rows: 4, spellcheck: 'false', class: 'mono' }, (ov.trusted_dns || []).join('\n'));
    const dnsField = field('Patterns (one per line)', dns, 'An empty list means no DN restriction for this API.');
    const syncDn = () => { dnsField.hidden = dnMode.value !== 'set'; };
    dnMode.addEventListener('change', syncDn);
    syncDn();
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save Override');
    const remove = h('button', { type: 'button', class: 'danger' }, 'Remove Override');
    remove.addEventListener('click', async () => {
      st.clear();
      if (!await confirmAction(`Remove the override of "${a.name}"? It will inherit the gateway's settings.`, 'Remove Override')) return;
      try {
        await api.del(`/apis/${a.id}/client-cert-auth`);
        await refresh('Saved: the API inherits the gateway\'s settings');
      } catch (e) { st.error(e); }
    });
    return h('form', { onsubmit: (ev) => {
      ev.preventDefault();
      busy(save, async () => {
        st.clear();
        const body = {
          required: req.value === 'inherit' ? null : req.value === 'true',
          trusted_dns: dnMode.value === 'set' ? dns.value.split('\n').map((x) => x.trim()).filter(Boolean) : null,
        };
        try {
          await api.put(`/apis/${a.id}/client-cert-auth`, body);
          await refresh('Saved');
        } catch (e) { st.error(e); }
      });
    } },
    h('p', {}, badge('Overridden', 'info')),
    field('Certificate Auth Required', req),
    field('Gateway Trusted Distinguished Names', dnMode), dnsField,
    h('div', { class: 'row' }, save, remove));
  };
  set(box, overrideBody(ov));
  return section('Client Certificate Auth', box, st, h('h3', {}, 'Effective settings'), effBox);
}
