// The Certificates page: the certificate components, "Create New Certificate", and a
// component's page with every version, "Upload New Version" and "Deactivate".

import * as api from './api.js';
import { h, set, field, status, busy, date, table, badge, section, confirmAction, fileInto } from './ui.js';

export async function render(root, [id]) {
  if (id && id !== 'new') return component(root, id);
  document.title = 'Certificates · certgate console';
  const comps = await api.get('/certificates');
  const form = createForm();
  set(root,
    h('h1', {}, 'Certificates'),
    section('Certificate components',
      table('Certificates', ['Name', 'Latest Version', 'Subject', 'Expires On', 'Active'],
        comps.map((c) => {
          const v = c.versions.find((x) => x.version === c.latest_version) || c.versions.at(-1) || {};
          return [h('a', { href: `#/certificates/${c.id}` }, c.name), `v${c.latest_version}`, v.subject || '',
            date(v.not_after), c.active ? 'Yes' : badge('Deactivated', 'muted')];
        }), { empty: 'No certificates yet.' })),
    form);
  if (id === 'new') form.querySelector('input').focus();
}

function pemFields() {
  const pem = h('textarea', { rows: 8, spellcheck: 'false', class: 'mono' });
  const file = h('input', { type: 'file', accept: '.pem,.crt,.cer,text/plain' });
  fileInto(file, pem);
  return [pem, [field('Certificate PEM', pem), field('Or choose a file', file)]];
}

function createForm() {
  const name = h('input', { type: 'text', autocomplete: 'off' });
  const [pem, pemUi] = pemFields();
  const st = status();
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create');
  const form = h('form', { onsubmit: (ev) => {
    ev.preventDefault();
    busy(button, async () => {
      st.clear();
      try {
        const c = await api.post('/certificates', { name: name.value.trim(), pem: pem.value });
        st.ok('Saved');
        location.hash = `#/certificates/${c.id}`;
      } catch (e) { st.error(e); }
    });
  } }, field('Name', name), pemUi, h('div', { class: 'row' }, button, st));
  return section('Create New Certificate', form);
}

async function component(root, id, flash) {
  const c = await api.get(`/certificates/${encodeURIComponent(id)}`);
  document.title = `${c.name} · Certificates · certgate console`;
  const [pem, pemUi] = pemFields();
  const st = status();
  const flashEl = status();
  if (flash) flashEl.ok(flash);
  const upload = h('button', { type: 'submit', class: 'primary' }, 'Upload New Version');
  const uploadForm = h('form', { onsubmit: (ev) => {
    ev.preventDefault();
    busy(upload, async () => {
      st.clear();
      try {
        const v = await api.post(`/certificates/${c.id}/versions`, { pem: pem.value });
        await component(root, String(c.id), `Saved: version v${v.version} uploaded`);
      } catch (e) { st.error(e); }
    });
  } }, pemUi, h('div', { class: 'row' }, upload, st));
  const dst = status();
  const deactivate = h('button', { type: 'button', class: 'danger', disabled: !c.active }, 'Deactivate');
  deactivate.addEventListener('click', async () => {
    dst.clear();
    if (!await confirmAction(`Deactivate "${c.name}"? It can no longer be trusted; its versions stay readable.`, 'Deactivate')) return;
    try {
      await api.del(`/certificates/${c.id}`);
      await component(root, String(c.id), 'Saved: deactivated');
    } catch (e) { dst.error(e); }
  });
  set(root,
    h('p', {}, h('a', { href: '#/certificates' }, '← Certificates')),
    h('h1', {}, c.name, c.active ? null : [' ', badge('Deactivated', 'muted')]),
    flashEl,
    section('Versions', table(`Versions of ${c.name}`,
      ['Version', 'Subject', 'Issuer', 'Serial', 'Fingerprint', 'Not Before', 'Not After', 'Uploaded'],
      [...c.versions].reverse().map((v) => [`v${v.version}`, v.subject, v.issuer, h('code', {}, v.serial),
        h('code', { class: 'fp' }, v.fingerprint_sha256), date(v.not_before), date(v.not_after), date(v.created_at)]))),
    section('Upload New Version', uploadForm),
    section('Deactivate', h('p', { class: 'hint' }, 'A deactivated certificate is not offered by the lookup and cannot be trusted. Refused while the gateway trusts it.'),
      h('div', { class: 'row' }, deactivate, dst)));
}
