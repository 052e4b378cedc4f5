// The admin API client: the one place that talks to the node. Every call goes to this
// origin; writes carry the session's CSRF token.

let csrf = null;

/** An error answer of the admin API, with its code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, url, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'The node did not answer: ' + e.message);
  }
  const text = await res.text();
  let value = null;
  if (text) {
    try { value = JSON.parse(text); } catch { value = text; }
  }
  if (!res.ok) {
    const err = value && value.error;
    const e = new ApiError(res.status, err ? err.code : 'http_' + res.status,
      err ? err.message : `The node answered ${res.status}.`);
    if (res.status === 401 && url.startsWith('/api/')) {
      csrf = null;
      window.dispatchEvent(new CustomEvent('certgate:signed-out'));
    }
    throw e;
  }
  return value;
}

/** GET /api/v1{path}. */
export const get = (path) => request('GET', '/api/v1' + path);
/** POST /api/v1{path}. */
export const post = (path, body) => request('POST', '/api/v1' + path, body ?? {});
/** PUT /api/v1{path}. */
export const put = (path, body) => request('PUT', '/api/v1' + path, body);
/** DELETE /api/v1{path}. */
export const del = (path) => request('DELETE', '/api/v1' + path);

/** GET that answers null on 404 (an endpoint this node does not have). */
export async function getOptional(path) {
  try {
    return await get(path);
  } catch (e) {
    if (e.status === 404 || e.status === 405) return null;
    throw e;
  }
}

/** Signs in with the admin token; remembers the CSRF token. */
export async function signIn(token) {
  const s = await request('POST', '/console/session', { token });
  csrf = s.csrf_token;
  return s;
}

/** The live session (recovers the CSRF token after a reload), or null. */
export async function currentSession() {
  try {
    const s = await request('GET', '/console/session');
    csrf = s.csrf_token;
    return s;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

/** Signs out. */
export async function signOut() {
  try {
    await request('DELETE', '/console/session');
  } finally {
    csrf = null;
  }
}

let dryRuns = null;
/**
 * Whether this node answers `?dry_run=true` (SPEC §13). Probed once with an empty settings
 * patch, which changes nothing whether or not the node knows dry runs: a node that does
 * answers `would_lose_access`, one that does not answers the settings.
 */
export function dryRunSupported() {
  dryRuns ??= put('/gateway/client-cert-auth?dry_run=true', {})
    .then((v) => !!v && Array.isArray(v.would_lose_access))
    .catch(() => false);
  return dryRuns;
}
