// Small DOM helpers shared by the pages: element building, dates, errors, dialogs.

let nextId = 0;
/** A fresh element id. */
export const uid = (p = 'f') => `${p}-${++nextId}`;

/**
 * Builds an element: h('button', {type: 'button', onclick: fn}, 'Save').
 * Attributes starting with "on" become listeners; `class`, `hidden`, `disabled` etc. are
 * set as attributes; children are nodes or strings (never parsed as HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function set(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** YYYY-MM-DD (UTC) of an RFC 3339 timestamp. */
export function ymd(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toISOString().slice(0, 10);
}

/** A <time> showing YYYY-MM-DD with the full timestamp on hover. */
export function date(ts) {
  return h('time', { datetime: ts, title: ts }, ymd(ts));
}

/** A labelled form field: a <label for> bound to the control. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    wrap.append(h('p', { class: 'hint', id: hid }, hint));
  }
  return wrap;
}

/** A live status line: errors in words, or a "Saved" state. */
export function status() {
  const el = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  el.error = (e) => {
    el.className = 'status error';
    el.setAttribute('role', 'alert');
    el.textContent = e && e.message ? e.message : String(e);
  };
  el.ok = (text) => {
    el.className = 'status ok';
    el.setAttribute('role', 'status');
    el.textContent = text;
  };
  el.clear = () => {
    el.className = 'status';
    el.textContent = '';
  };
  return el;
}

/** Runs `fn` with `button` disabled meanwhile. */
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Asks to confirm a destructive action in the page's <dialog>; resolves true on "Confirm". */
export function confirmAction(text, okLabel = 'Confirm', extra = null) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  set(document.getElementById('confirm-extra'), extra);
  const ok = document.getElementById('confirm-ok');
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const done = () => {
      dlg.removeEventListener('close', done);
      resolve(dlg.returnValue === 'ok');
    };
    dlg.returnValue = '';
    dlg.addEventListener('close', done);
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

/** Shows details in the info <dialog>. */
export function showInfo(title, body) {
  const dlg = document.getElementById('info');
  document.getElementById('info-title').textContent = title;
  set(document.getElementById('info-body'), body);
  dlg.showModal();
}

/** A definition list of [term, value] pairs. */
export function dl(pairs) {
  return h('dl', { class: 'props' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A table with header cells; `rows` are arrays of cells (nodes or text). */
export function table(label, columns, rows, opts = {}) {
  const tbody = document.createElement('tbody');
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = document.createElement('tr');
    if (r.attrs) for (const [k, v] of Object.entries(r.attrs)) tr.setAttribute(k, v);
    for (const c of r.cells || r) {
      const td = document.createElement('td');
      append(td, [c]);
      tr.append(td);
    }
    frag.append(tr);
  }
  tbody.append(frag);
  const t = h('table', { 'aria-label': label, class: opts.class },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))), tbody);
  if (!rows.length && opts.empty) {
    tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, opts.empty)));
  }
  return h('div', { class: 'table-wrap' }, t);
}

/** A small badge. */
export const badge = (text, kind) => h('span', { class: `badge ${kind}` }, text);

/** A section with an h2. */
export function section(title, ...children) {
  const id = uid('sec');
  return h('section', { 'aria-labelledby': id, class: 'card' }, h('h2', { id }, title), ...children);
}

/** Reads a chosen file as text into `textarea`. */
export function fileInto(input, textarea) {
  input.addEventListener('change', async () => {
    const f = input.files && input.files[0];
    if (f) textarea.value = await f.text();
  });
}
