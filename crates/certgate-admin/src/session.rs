//! Console sessions (SPEC §11): `POST`/`GET`/`DELETE /console/session`, the
//! `certgate_session` cookie, CSRF tokens and expiry.
//!
//! - Sessions live in memory only (a restart signs everyone out), at most
//!   [`MAX_SESSIONS`]; when full, expired sessions are dropped first, then the one idle
//!   longest.
//! - A session ends [`ABSOLUTE_LIFETIME`] after sign-in or [`IDLE_TIMEOUT`] after its last
//!   request, whichever comes first. Time comes from the state's [`Clock`], so tests move
//!   it instead of sleeping.
//! - The map is keyed by the SHA-256 of the session id, so a lookup's timing says nothing
//!   about the id; the sign-in token and the CSRF token are compared as SHA-256 digests in
//!   constant time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::AdminState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "certgate_session";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends this long after sign-in.
pub const ABSOLUTE_LIFETIME: Duration = Duration::hours(8);
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 1024;

/// The time source of the admin state (injectable for tests).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

type Digest32 = [u8; 32];

fn digest(s: &str) -> Digest32 {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares two secrets in constant time (as digests, so lengths do not leak either).
pub(crate) fn secrets_equal(presented: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(digest(presented).ct_eq(&digest(expected)))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    /// The first hex characters of the id, for an audit actor (`console:<prefix>`).
    prefix: String,
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
}

impl Session {
    fn expires_at(&self) -> OffsetDateTime {
        (self.created + ABSOLUTE_LIFETIME).min(self.last_seen + IDLE_TIMEOUT)
    }
}

/// The live console sessions of this node.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<Digest32, Session>>,
}

/// What a request's session cookie proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieAuth {
    /// No cookie, or one naming no live session.
    None,
    /// A live session; the request may go on. Holds the session's id prefix.
    Ok(String),
    /// A live session, but a write without the right `X-CSRF-Token`.
    CsrfFailed,
}

/// The identity a request authenticated with, put in its extensions for handlers that
/// record an actor (SPEC §14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The bearer token.
    Token,
    /// A console session: `console:<session id prefix>`.
    Console(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Token => f.write_str("token"),
            Actor::Console(p) => write!(f, "console:{p}"),
        }
    }
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Digest32, Session>> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; answers (session id, csrf token, expires_at).
    fn create(&self, now: OffsetDateTime) -> (String, String, OffsetDateTime) {
        let id = random_token();
        let s = Session {
            csrf: random_token(),
            prefix: id[..8].to_owned(),
            created: now,
            last_seen: now,
        };
        let answer = (id.clone(), s.csrf.clone(), s.expires_at());
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at() > now);
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&id), s);
        answer
    }

    /// The live session of `id`, touched (its idle timer restarts); an expired one is
    /// removed.
    fn touch(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let key = digest(id);
        let mut map = self.lock();
        let live = map.get(&key).is_some_and(|s| s.expires_at() > now);
        if !live {
            map.remove(&key);
            return None;
        }
        let s = map.get_mut(&key)?;
        s.last_seen = now;
        Some(s.clone())
    }

    fn remove(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// The number of sessions held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of the `certgate_session` cookie, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == COOKIE_NAME).then(|| v.trim())
        })
        .filter(|v| !v.is_empty())
}

/// Checks the session cookie of a request to `/api/v1` (or `DELETE /console/session`).
pub(crate) fn authenticate(state: &AdminState, method: &Method, headers: &HeaderMap) -> CookieAuth {
    let Some(id) = session_cookie(headers) else {
        return CookieAuth::None;
    };
    let Some(session) = state.sessions.touch(id, (state.clock)()) else {
        return CookieAuth::None;
    };
    if method == Method::GET || method == Method::HEAD {
        return CookieAuth::Ok(session.prefix);
    }
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if secrets_equal(presented, &session.csrf) {
        CookieAuth::Ok(session.prefix)
    } else {
        CookieAuth::CsrfFailed
    }
}

/// 403 `csrf_failed`.
pub(crate) fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "This request needs the X-CSRF-Token header of the console session.",
    )
}

fn no_session() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "No console session: sign in with the admin token.",
    )
}

/// Body of `POST /console/session`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    token: String,
}

/// Answer of `POST`/`GET /console/session`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SessionAnswer {
    csrf_token: String,
    expires_at: String,
}

fn answer(csrf: String, expires_at: OffsetDateTime) -> SessionAnswer {
    SessionAnswer {
        csrf_token: csrf,
        expires_at: expires_at
            .replace_nanosecond(0)
            .unwrap_or(expires_at)
            .format(&Rfc3339)
            .unwrap_or_default(),
    }
}

fn cookie(state: &AdminState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let v = format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    // Only hex and fixed ASCII above, so this cannot fail; fall back to a clearing cookie.
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(
        "certgate_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
    ))
}

/// `POST /console/session`: signs in with the admin token.
#[utoipa::path(post, path = "/console/session", tag = "console", security(()), request_body = SignIn, responses((status = 200, description = "Signed in; the session cookie is set", body = SessionAnswer), (status = 401, description = "`unauthorized`: not the admin token", body = crate::openapi::ErrorAnswer)))]
pub(crate) async fn sign_in(
    State(st): State<AdminState>,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    if !secrets_equal(&body.token, &st.token) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The admin token is not valid.",
        ));
    }
    let (id, csrf, expires_at) = st.sessions.create((st.clock)());
    let mut resp = Json(answer(csrf, expires_at)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&st, &id, ABSOLUTE_LIFETIME.whole_seconds()),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /console/session`: the live session's CSRF token and expiry, else 401.
#[utoipa::path(get, path = "/console/session", tag = "console", security(()), responses((status = 200, description = "The live session", body = SessionAnswer), (status = 401, description = "No live session", body = crate::openapi::ErrorAnswer)))]
pub(crate) async fn current(
    State(st): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = (st.clock)();
    let session = session_cookie(&headers)
        .and_then(|id| st.sessions.touch(id, now))
        .ok_or_else(no_session)?;
    let expires_at = session.expires_at();
    let mut resp = Json(answer(session.csrf, expires_at)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /console/session`: signs out (needs `X-CSRF-Token`).
#[utoipa::path(delete, path = "/console/session", tag = "console", security(()), responses((status = 204, description = "Signed out"), (status = 401, description = "No live session", body = crate::openapi::ErrorAnswer), (status = 403, description = "`csrf_failed`", body = crate::openapi::ErrorAnswer)))]
pub(crate) async fn sign_out(
    State(st): State<AdminState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match authenticate(&st, &method, &headers) {
        CookieAuth::None => Err(no_session()),
        CookieAuth::CsrfFailed => Err(csrf_failed()),
        CookieAuth::Ok(_) => {
            if let Some(id) = session_cookie(&headers) {
                st.sessions.remove(id);
            }
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, cookie(&st, "", 0));
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_the_earlier_of_idle_and_absolute() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let s = Sessions::default();
        let (id, _, exp) = s.create(t0);
        assert_eq!(exp, t0 + IDLE_TIMEOUT);
        // Keep it busy for 8 h: the absolute limit ends it.
        let mut t = t0;
        while t + Duration::minutes(20) < t0 + ABSOLUTE_LIFETIME {
            t += Duration::minutes(20);
            assert!(s.touch(&id, t).is_some(), "alive at {t}");
        }
        assert!(s.touch(&id, t0 + ABSOLUTE_LIFETIME).is_none());
        assert!(s.is_empty());
        // Idle for 30 min ends another.
        let (id, _, _) = s.create(t0);
        assert!(s
            .touch(&id, t0 + IDLE_TIMEOUT - Duration::seconds(1))
            .is_some());
        assert!(s
            .touch(&id, t0 + IDLE_TIMEOUT * 2 - Duration::seconds(2))
            .is_some());
        assert!(s
            .touch(&id, t0 + IDLE_TIMEOUT * 3 - Duration::seconds(2))
            .is_none());
    }

    #[test]
    fn the_store_is_bounded() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let s = Sessions::default();
        let (first, _, _) = s.create(t0);
        for i in 0..MAX_SESSIONS {
            s.create(t0 + Duration::seconds(i as i64 + 1));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.touch(&first, t0 + Duration::seconds(2)).is_none());
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; certgate_session=abc ; c=d"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xcertgate_session=abc"),
        );
        assert_eq!(session_cookie(&h), None);
        assert!(secrets_equal("x", "x"));
        assert!(!secrets_equal("x", "y"));
        assert!(!secrets_equal("", ""));
    }
}
