//! The web console's static files (SPEC §11), compiled into the binary with
//! `include_bytes!` (no build step, no extra dependency), and the security headers of
//! every response under `/console/`.
//!
//! - `GET /` and `GET /console` redirect to `/console/`; `/console/` is `index.html`.
//! - Every file is served with a strong `ETag` (FNV-1a of its bytes, computed once) and
//!   `Cache-Control: no-cache`: file names carry no content hash (there is no build step to
//!   add one), so the browser revalidates and gets `304 Not Modified` while the binary is
//!   unchanged.
//! - No compression: the files add up to a few tens of KiB, and a gzip encoder would be a
//!   new dependency; the admin listener is normally on loopback or a management network.

use std::sync::OnceLock;

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// `Content-Security-Policy` of every console response: nothing but this origin, no inline
/// script or style, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

macro_rules! files {
    ($($name:literal => $mime:literal),* $(,)?) => {
        &[$(($name, $mime, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $name)) as &[u8])),*]
    };
}

/// (file name, content type, bytes).
static FILES: &[(&str, &str, &[u8])] = files![
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "ui.js" => "text/javascript; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "gateway.js" => "text/javascript; charset=utf-8",
    "certificates.js" => "text/javascript; charset=utf-8",
    "apis.js" => "text/javascript; charset=utf-8",
    "nodes.js" => "text/javascript; charset=utf-8",
    "activity.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
];

fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in *bytes {
                    h ^= u64::from(*b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                format!("\"{h:016x}-{:x}\"", bytes.len())
            })
            .collect()
    })
}

fn serve_file(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found.\n",
        )
            .into_response();
    };
    let (_, mime, bytes) = FILES[i];
    let etag = &etags()[i];
    let common = [
        (header::CACHE_CONTROL, "no-cache"),
        (header::ETAG, etag.as_str()),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, mime)], bytes).into_response()
}

/// `GET /` and `GET /console`: to the console.
pub(crate) async fn redirect() -> Redirect {
    Redirect::to("/console/")
}

/// `GET /console/`.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve_file("index.html", &headers)
}

/// `GET /console/{file}`.
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve_file(&name, &headers)
}

/// Adds the console's security headers to every response under `/console`.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let console = req.uri().path() == "/console" || req.uri().path().starts_with("/console/");
    let mut resp = next.run(req).await;
    if console {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}
