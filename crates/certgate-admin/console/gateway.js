// The Gateway page: client certificate auth settings, "Gateway Trusted Certificates",
// "Gateway Trusted Distinguished Names" (with the tester) and "Trust store".

import * as api from './api.js';
import { h, set, field, status, busy, date, table, badge, section, dl, confirmAction, showInfo, uid } from './ui.js';

const LIMIT = 1000;
const MODES = [
  ['none', 'None'],
  ['mtls', 'Client Certificate Authentication'],
  ['header', 'Client Certificate Header Authentication'],
];
const FORMATS = [
  ['auto', 'Automatic (any common form)'],
  ['pem', 'PEM'],
  ['url_encoded_pem', 'URL-encoded PEM'],
  ['base64_der', 'Base64 DER'],
  ['xfcc', 'Envoy x-forwarded-client-cert'],
];
const FAILURES = [
  ['handshake', 'Fail the TLS handshake'],
  ['http', 'Complete the handshake, answer 403'],
];

/** The clients a dry run says would lose access, as a list for the confirmation dialog. */
function losing(dry) {
  const list = (dry && dry.would_lose_access) || [];
  if (!list.length) return null;
  return h('div', { class: 'losing' },
    h('p', { class: 'status error' }, `${list.length} client${list.length === 1 ? '' : 's'} would lose access:`),
    h('ul', {}, list.slice(0, 20).map((c) => h('li', {}, h('code', {}, c.subject), c.api ? ` (${c.api})` : ''))),
    list.length > 20 ? h('p', { class: 'muted' }, `and ${list.length - 20} more`) : null);
}

const select = (options, value) =>
  h('select', {}, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));

export async function render(root) {
  document.title = 'Gateway · certgate console';
  const gw = await api.get('/gateway');
  const warnings = h('div', { class: 'warnings' });
  const showWarnings = (list) => set(warnings, list.length
    ? h('ul', { 'aria-label': 'Warnings' }, list.map((w) => h('li', { class: 'warning', 'data-code': w.code }, w.message)))
    : null);
  showWarnings(gw.warnings);
  const refreshWarnings = async () => {
    try { showWarnings((await api.get('/gateway')).warnings); } catch { /* keep the old ones */ }
  };
  set(root,
    h('h1', {}, 'Gateway'),
    warnings,
    settingsSection(gw, refreshWarnings),
    trustedSection(gw, refreshWarnings),
    dnSection(gw, refreshWarnings),
    truststoreSection(gw.truststore));
}

// ------------------------------------------------------------------ settings

function settingsSection(gw, refreshWarnings) {
  const s = gw.client_cert_auth;
  const name = uid('mode');
  const radios = MODES.map(([v, label]) => {
    const input = h('input', { type: 'radio', name, value: v, id: uid(), checked: s.mode === v });
    return h('div', { class: 'choice' }, input, h('label', { for: input.id }, label));
  });
  const modeField = h('fieldset', {}, h('legend', {}, 'Client Certificate Auth'), radios);
  const required = h('input', { type: 'checkbox', id: uid(), checked: s.required });
  const headerName = h('input', { type: 'text', value: s.header_name || '', autocomplete: 'off', spellcheck: 'false' });
  const headerFormat = select(FORMATS, s.header_format || 'auto');
  const proxies = h('textarea', { rows: 3, spellcheck: 'false' }, (s.trusted_proxies || []).join('\n'));
  const failure = select(FAILURES, s.validation_failure || 'handshake');
  const headerFields = h('div', { class: 'sub' },
    field('Certificate Header Name', headerName, 'e.g. X-Client-Cert; matched case-insensitively.'),
    field('Header Format', headerFormat),
    field('Trusted Proxies', proxies, 'One CIDR per line; empty lets any peer send the header.'));
  const mtlsFields = h('div', { class: 'sub' }, field('Validation Failure', failure));
  const mode = () => modeField.querySelector('input:checked')?.value || 'none';
  const sync = () => {
    headerFields.hidden = mode() !== 'header';
    mtlsFields.hidden = mode() !== 'mtls';
  };
  modeField.addEventListener('change', sync);
  sync();
  const st = status();
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    st.clear();
    const body = { mode: mode(), required: required.checked };
    if (body.mode === 'header') {
      body.header_name = headerName.value.trim() || null;
      body.header_format = headerFormat.value;
      body.trusted_proxies = proxies.value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
    }
    if (body.mode === 'mtls') body.validation_failure = failure.value;
    await busy(save, async () => {
      try {
        await api.put('/gateway/client-cert-auth', body);
        st.ok('Saved');
        refreshWarnings();
      } catch (e) {
        st.error(e);
      }
    });
  } },
  modeField,
  h('div', { class: 'choice' }, required, h('label', { for: required.id }, 'Certificate Auth Required')),
  headerFields, mtlsFields,
  h('div', { class: 'row' }, save, st));
  return section('Client Certificate Auth settings', form);
}

// ------------------------------------------------------------------ trusted certificates

function trustedSection(gw, refreshWarnings) {
  const count = h('p', { class: 'count' });
  const tableBox = h('div');
  const st = status();
  const lookupBox = h('div', { class: 'lookup', hidden: true });
  const add = h('button', { type: 'button', disabled: !gw.ssl_enabled, 'aria-expanded': 'false' }, 'Add Certificate');
  let rows = gw.trusted_certificates;

  const draw = () => {
    count.textContent = `${rows.length} / ${LIMIT}`;
    set(tableBox, table('Gateway Trusted Certificates',
      ['Certificate Name', 'Version', 'Issued On', 'Expires On', 'Actions'],
      rows.map((r, i) => ({ attrs: { 'data-id': r.certificate_id, 'data-i': i }, cells: [
        r.name,
        h('span', {}, `v${r.version}`, r.update_available ? [' ', badge('Update available', 'info')] : null),
        date(r.issued_on),
        h('span', {}, date(r.expires_on),
          r.expiry_status === 'expired' ? [' ', badge('Expired', 'bad')]
            : r.expiry_status === 'expiring_soon' ? [' ', badge('Expiring soon', 'warn')] : null),
        h('span', { class: 'actions' },
          h('button', { type: 'button', 'aria-label': `View ${r.name}`, 'data-act': 'view' }, 'View'),
          r.update_available ? h('button', { type: 'button', 'aria-label': `Upgrade ${r.name}`, 'data-act': 'upgrade' }, 'Upgrade') : null,
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${r.name}`, 'data-act': 'delete' }, 'Delete')),
      ] })),
      { empty: 'No trusted certificates yet.', class: 'fixed trust-table' }));
  };
  tableBox.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-act]');
    const r = b && rows[Number(b.closest('tr').dataset.i)];
    if (!r) return;
    if (b.dataset.act === 'view') view(r);
    else if (b.dataset.act === 'upgrade') upgrade(r, b);
    else remove(r);
  });
  const reload = async () => {
    rows = await api.get('/gateway/trusted-certificates');
    draw();
    refreshWarnings();
  };
  const view = async (r) => {
    try {
      const c = await api.get(`/certificates/${r.certificate_id}`);
      const v = c.versions.find((x) => x.version === r.version) || c.versions[c.versions.length - 1];
      showInfo(`${r.name} v${v.version}`, [
        dl([['Subject', v.subject], ['Issuer', v.issuer], ['Serial', v.serial],
          ['Fingerprint', v.fingerprint_sha256], ['Not Before', date(v.not_before)], ['Not After', date(v.not_after)]]),
        h('pre', { class: 'pem', 'aria-label': 'PEM' }, v.pem || ''),
      ]);
    } catch (e) { st.error(e); }
  };
  const upgrade = async (r, button) => {
    st.clear();
    await busy(button, async () => {
      try {
        const row = await api.post(`/gateway/trusted-certificates/${r.certificate_id}/upgrade`);
        await reload();
        st.ok(`Saved: ${row.name} now pinned at v${row.version}`);
      } catch (e) { st.error(e); }
    });
  };
  const remove = async (r) => {
    st.clear();
    let dry = null;
    if (await api.dryRunSupported()) {
      try { dry = await api.del(`/gateway/trusted-certificates/${r.certificate_id}?dry_run=true`); } catch (e) { st.error(e); return; }
    }
    if (!await confirmAction(`Delete "${r.name}" from the Gateway Trusted Certificates? Clients whose chain ends at it will be refused.`, 'Delete', losing(dry))) return;
    try {
      await api.del(`/gateway/trusted-certificates/${r.certificate_id}`);
      await reload();
      st.ok(`Saved: ${r.name} removed`);
    } catch (e) { st.error(e); }
  };
  const openLookup = async () => {
    const open = lookupBox.hidden;
    lookupBox.hidden = !open;
    add.setAttribute('aria-expanded', String(open));
    if (!open) return;
    const search = h('input', { type: 'search', autocomplete: 'off' });
    const results = h('div');
    const lst = status();
    set(lookupBox, h('h3', {}, 'Certificate lookup'),
      field('Search certificates', search),
      results, lst,
      h('p', {}, h('a', { href: '#/certificates/new' }, 'Create New Certificate')));
    let comps = [];
    const drawResults = () => {
      const q = search.value.trim().toLowerCase();
      const trusted = new Set(rows.map((r) => r.certificate_id));
      const shown = comps.filter((c) => !trusted.has(c.id) && (!q || c.name.toLowerCase().includes(q)
        || (c.versions.at(-1)?.subject || '').toLowerCase().includes(q)));
      set(results, table('Certificate lookup', ['Certificate Name', 'Version', 'Subject', 'Expires On', 'Actions'],
        shown.map((c) => {
          const v = c.versions.find((x) => x.version === c.latest_version) || c.versions.at(-1) || {};
          return [c.name, `v${c.latest_version}`, v.subject || '', date(v.not_after),
            h('button', { type: 'button', 'aria-label': `Add ${c.name}`, onclick: async (ev) => {
              lst.clear();
              await busy(ev.currentTarget, async () => {
                try {
                  await api.post('/gateway/trusted-certificates', { certificate_id: c.id });
                  await reload();
                  drawResults();
                  st.ok(`Saved: ${c.name} trusted`);
                } catch (e) { lst.error(e); }
              });
            } }, 'Add')];
        }), { empty: 'No certificate to add: every active, unexpired certificate is trusted already, or none matches.' }));
    };
    search.addEventListener('input', drawResults);
    try {
      comps = await api.get('/certificates?lookup=true');
      drawResults();
    } catch (e) { lst.error(e); }
    search.focus();
  };
  add.addEventListener('click', openLookup);
  draw();
  return section('Gateway Trusted Certificates',
    h('div', { class: 'row' }, add, count),
    gw.ssl_enabled ? null : h('p', { class: 'status error', id: 'ssl-off' }, 'Certificates can be added only when SSL is enabled.'),
    lookupBox, st, tableBox);
}

// ------------------------------------------------------------------ distinguished names

function dnSection(gw, refreshWarnings) {
  let items = [...(gw.client_cert_auth.trusted_dns || [])];
  const list = h('ol', { class: 'dn-list', 'aria-label': 'Gateway Trusted Distinguished Names' });
  const count = h('p', { class: 'count' });
  const st = status();
  const newPattern = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const addError = h('p', { class: 'field-error', role: 'alert' });
  let fieldErrors = new Map();

  // One template row cloned per pattern and one listener for the whole list: 1000
  // patterns render without 4000 closures.
  const proto = h('li', {},
    h('div', { class: 'dn-row' },
      h('span', { class: 'num', 'aria-hidden': 'true' }), h('label', { class: 'sr-only' }), h('input', { type: 'text', spellcheck: 'false', autocomplete: 'off' }),
      h('button', { type: 'button', 'data-act': 'up' }, '↑'),
      h('button', { type: 'button', 'data-act': 'down' }, '↓'),
      h('button', { type: 'button', class: 'danger', 'data-act': 'remove' }, 'Remove')));
  const idBase = uid('dn');
  const draw = (focus) => {
    count.textContent = `${items.length} / ${LIMIT}`;
    const frag = document.createDocumentFragment();
    const n = items.length;
    for (let i = 0; i < n; i++) {
      const li = proto.cloneNode(true);
      const row = li.firstChild;
      const [num, label, input, up, down, rm] = row.children;
      num.textContent = `${i + 1}.`;
      const id = `${idBase}-${i}`;
      li.dataset.i = i;
      label.htmlFor = id;
      label.textContent = `Pattern ${i + 1}`;
      input.id = id;
      input.value = items[i];
      up.setAttribute('aria-label', `Move pattern ${i + 1} up`);
      up.disabled = i === 0;
      down.setAttribute('aria-label', `Move pattern ${i + 1} down`);
      down.disabled = i === n - 1;
      rm.setAttribute('aria-label', `Remove pattern ${i + 1}`);
      if (fieldErrors.has(i)) {
        const err = h('p', { class: 'field-error', role: 'alert', id: `${id}-err` }, fieldErrors.get(i));
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', err.id);
        li.append(err);
      }
      frag.append(li);
    }
    list.replaceChildren(frag);
    if (focus !== undefined) list.querySelectorAll('input')[focus]?.focus();
  };
  list.addEventListener('input', (ev) => {
    const li = ev.target.closest('li');
    if (li && ev.target.tagName === 'INPUT') items[Number(li.dataset.i)] = ev.target.value;
  });
  list.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const i = Number(b.closest('li').dataset.i);
    if (b.dataset.act === 'up') move(i, -1);
    else if (b.dataset.act === 'down') move(i, 1);
    else removeAt(i);
  });
  const dirty = () => { fieldErrors = new Map(); st.ok('Unsaved changes'); };
  const move = (i, d) => {
    const j = i + d;
    [items[i], items[j]] = [items[j], items[i]];
    dirty();
    draw(j);
  };
  const removeAt = (i) => {
    items.splice(i, 1);
    dirty();
    draw();
  };
  const addForm = h('form', { class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    addError.textContent = '';
    const p = newPattern.value.trim();
    if (!p) { addError.textContent = 'Write a pattern first, e.g. CN=*,OU=Payments,O=Example,C=US.'; return; }
    if (items.length >= LIMIT) { addError.textContent = `At most ${LIMIT} patterns.`; return; }
    items.push(p);
    newPattern.value = '';
    dirty();
    draw();
  } }, field('New pattern', newPattern), h('button', { type: 'submit' }, 'Add Pattern'));

  const save = h('button', { type: 'button', class: 'primary' }, 'Save Distinguished Names');
  save.addEventListener('click', () => busy(save, async () => {
    st.clear();
    fieldErrors = new Map();
    const patterns = items.map((p) => p.trim());
    try {
      if (await api.dryRunSupported()) {
        const dry = await api.put('/gateway/client-cert-auth?dry_run=true', { trusted_dns: patterns });
        const who = losing(dry);
        if (who && !await confirmAction('Save these Gateway Trusted Distinguished Names?', 'Save', who)) {
          st.ok('Unsaved changes');
          return;
        }
      }
      const s = await api.put('/gateway/client-cert-auth', { trusted_dns: patterns });
      items = [...s.trusted_dns];
      draw();
      st.ok('Saved');
      refreshWarnings();
    } catch (e) {
      // Put the message next to the pattern it quotes; the list keeps what was typed.
      const m = /pattern "((?:[^"\\]|\\.)*)"/.exec(e.message || '');
      const i = m ? patterns.findIndex((p) => p === m[1] || JSON.stringify(p) === `"${m[1]}"`) : -1;
      if (i >= 0) {
        fieldErrors.set(i, e.message);
        draw(i);
        st.error('Not saved: pattern ' + (i + 1) + ' is invalid.');
      } else {
        draw();
        st.error(e);
      }
    }
  }));

  // Tester: the list as currently edited.
  const subject = h('textarea', { rows: 3, spellcheck: 'false' });
  const result = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const test = h('button', { type: 'submit' }, 'Test');
  const testForm = h('form', { onsubmit: (ev) => {
    ev.preventDefault();
    busy(test, async () => {
      const v = subject.value.trim();
      const body = { patterns: items.map((p) => p.trim()).filter(Boolean) };
      if (v.includes('-----BEGIN')) body.certificate_pem = v; else body.dn = v;
      try {
        const r = await api.post('/tools/dn-match', body);
        set(result, dl([['Canonical DN', h('code', {}, r.dn)],
          ['First match', r.matched ? h('code', { class: 'match' }, r.pattern) : h('strong', { class: 'nomatch' }, 'No match')]]));
      } catch (e) {
        set(result, h('p', { class: 'status error', role: 'alert' }, e.message));
      }
    });
  } }, field('DN or certificate PEM', subject, 'Tests against the list as edited above, saved or not.'),
  h('div', { class: 'row' }, test), result);

  draw();
  return section('Gateway Trusted Distinguished Names',
    h('p', { class: 'hint' }, 'A client certificate\'s subject must match one pattern (Ant-style: ? one character, * any, ** any RDNs). An empty list means no DN restriction.'),
    count, list, addForm, addError,
    h('div', { class: 'row' }, save, st),
    h('h3', {}, 'Test a certificate'), testForm);
}

// ------------------------------------------------------------------ trust store

function truststoreSection(info) {
  const box = h('div');
  const st = status();
  const draw = (t) => set(box, dl([
    ['Status', h('span', { class: `ts-${t.status}` }, t.status)],
    ['Entries', String(t.entries)],
    ['SHA-256', h('code', {}, t.sha256 || '')],
    ['Built at', t.built_at ? date(t.built_at) : '—'],
  ]));
  draw(info);
  const recover = h('button', { type: 'button' }, 'Recover');
  recover.addEventListener('click', () => busy(recover, async () => {
    st.clear();
    try {
      draw(await api.post('/truststore/recover'));
      st.ok('Recovered');
    } catch (e) { st.error(e); }
  }));
  return section('Trust store', box, h('div', { class: 'row' }, recover, st));
}
