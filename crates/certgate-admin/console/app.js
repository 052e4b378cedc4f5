// The console shell: sign-in, navigation and the hash router (#/gateway, #/apis/3, …).

import * as api from './api.js';
import { h, set, field, status, busy } from './ui.js';
import * as gateway from './gateway.js';
import * as certificates from './certificates.js';
import * as apis from './apis.js';
import * as nodes from './nodes.js';
import * as activity from './activity.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('signout');

const pages = { gateway, certificates, apis, nodes, activity };
let signedIn = false;

function showSignIn(message) {
  signedIn = false;
  nav.hidden = true;
  signOutButton.hidden = true;
  document.title = 'Sign in · certgate console';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true });
  const st = status();
  if (message) st.error(message);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', onsubmit: async (ev) => {
    ev.preventDefault();
    st.clear();
    await busy(button, async () => {
      try {
        await api.signIn(input.value);
        input.value = '';
        signedIn = true;
        showShell();
      } catch (e) {
        st.error(e.status === 401 ? 'The admin token is not valid.' : e);
        input.select();
      }
    });
  } },
  h('h1', {}, 'certgate console'),
  h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'admin', hidden: true, 'aria-hidden': 'true', tabindex: '-1' }),
  field('Admin token', input, 'The token of admin.token, CERTGATE_ADMIN_TOKEN or <data_dir>/admin-token.'),
  h('div', { class: 'row' }, button), st);
  set(main, form);
  input.focus();
}

function showShell() {
  nav.hidden = false;
  signOutButton.hidden = false;
  route();
}

async function route() {
  if (!signedIn) return;
  const hash = location.hash.replace(/^#\/?/, '') || 'gateway';
  const [name, ...rest] = hash.split('/');
  const page = pages[name] || gateway;
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === '#/' + (pages[name] ? name : 'gateway')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const container = h('div', { class: 'page' });
  set(main, container);
  try {
    await page.render(container, rest.map(decodeURIComponent));
  } catch (e) {
    if (e.status === 401) return;
    set(container, h('p', { class: 'status error', role: 'alert' }, e.message || String(e)));
  }
  main.dataset.rendered = hash;
  main.dataset.renders = String(Number(main.dataset.renders || 0) + 1);
  main.dispatchEvent(new CustomEvent('certgate:rendered'));
}

window.addEventListener('hashchange', route);
window.addEventListener('certgate:signed-out', () => {
  if (signedIn) showSignIn('Your session has ended: sign in again.');
});
signOutButton.addEventListener('click', async () => {
  try { await api.signOut(); } catch { /* signed out either way */ }
  showSignIn();
});

(async () => {
  try {
    const s = await api.currentSession();
    if (s) {
      signedIn = true;
      showShell();
    } else {
      showSignIn();
    }
  } catch (e) {
    showSignIn(e.message);
  }
})();
