//! The console's HTTP surface without a browser (SPEC §11): sign-in, the session cookie,
//! CSRF on cookie writes, expiry on an injected clock, the static files and their headers,
//! and the activity endpoint. Every refused write is followed by a read showing that
//! nothing changed.

#[allow(unused_macros)]
#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use std::sync::{Arc, Mutex};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(Mutex::new(OffsetDateTime::now_utc())))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
    fn clock(&self) -> certgate_admin::Clock {
        let t = Arc::clone(&self.0);
        Arc::new(move || *t.lock().unwrap())
    }
}

struct Signed {
    cookie: String,
    csrf: String,
    set_cookie: String,
    body: Value,
}

async fn sign_in(node: &Node) -> Signed {
    let resp = node
        .client
        .post(format!("{}/console/session", node.url))
        .json(&json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .expect("cookie set")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    Signed {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        set_cookie,
        body,
    }
}

/// A request with the session cookie (and optionally the CSRF header), no bearer token.
async fn with_cookie(
    node: &Node,
    s: &Signed,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = node
        .client
        .request(method, format!("{}{path}", node.url))
        .header("cookie", &s.cookie);
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_sets_no_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    for token in [
        "wrong-token",
        "",
        "test-token-0123456789abcdeX",
        &format!("{TOKEN} "),
    ] {
        let resp = node
            .client
            .post(format!("{}/console/session", node.url))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert!(resp.headers().get("set-cookie").is_none(), "{token:?}");
        let got = read(resp).await;
        assert_error(
            &got,
            401,
            "unauthorized",
            Some("The admin token is not valid."),
        );
    }
    let got = read(
        node.client
            .post(format!("{}/console/session", node.url))
            .header("content-type", "application/json")
            .body("token=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&got, 400, "malformed_body", None);
    assert!(
        node.client
            .get(format!("{}/console/session", node.url))
            .send()
            .await
            .unwrap()
            .status()
            == 401
    );
    // A made-up cookie is no session.
    let got = read(
        node.client
            .get(format!("{}/api/v1/apis", node.url))
            .header("cookie", format!("certgate_session={}", "ab".repeat(32)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&got, 401, "unauthorized", None);
    node.stop().await;
}

#[tokio::test]
async fn the_session_cookie_authenticates_the_api_and_writes_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let s = sign_in(&node).await;
    let attrs: Vec<&str> = s.set_cookie.split(';').map(str::trim).collect();
    assert!(
        s.cookie.starts_with("certgate_session=") && s.cookie.len() > 40,
        "{}",
        s.cookie
    );
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&a), "{a} missing from {}", s.set_cookie);
    }
    assert!(
        !attrs.contains(&"Secure"),
        "plain admin listener: {}",
        s.set_cookie
    );
    assert!(s.csrf.len() >= 32);
    assert!(s.body["expires_at"].as_str().unwrap().ends_with('Z'));

    // GET /console/session recovers the same CSRF token.
    let (st, v) = with_cookie(&node, &s, Method::GET, "/console/session", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["csrf_token"], s.csrf.as_str());

    // Reads need no CSRF token.
    let (st, v) = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
    assert_eq!((st, v), (StatusCode::OK, json!([])));

    // A write without the header, or with another session's token, is refused.
    let api = json!({"name": "orders", "base_path": "/orders", "upstream": "http://127.0.0.1:9"});
    let got = with_cookie(
        &node,
        &s,
        Method::POST,
        "/api/v1/apis",
        Some(api.clone()),
        None,
    )
    .await;
    assert_error(&got, 403, "csrf_failed", None);
    let other = sign_in(&node).await;
    let got = with_cookie(
        &node,
        &s,
        Method::POST,
        "/api/v1/apis",
        Some(api.clone()),
        Some(&other.csrf),
    )
    .await;
    assert_error(&got, 403, "csrf_failed", None);
    let got = with_cookie(
        &node,
        &s,
        Method::PUT,
        "/api/v1/gateway/client-cert-auth",
        Some(json!({"mode": "mtls", "required": true})),
        Some(""),
    )
    .await;
    assert_error(&got, 403, "csrf_failed", None);
    // Nothing changed.
    assert_eq!(node.get("/api/v1/apis").await, (StatusCode::OK, json!([])));
    let (_, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(gw["client_cert_auth"]["mode"], "none");
    assert_eq!(gw["client_cert_auth"]["required"], false);

    // With the header the write goes through.
    let (st, v) = with_cookie(
        &node,
        &s,
        Method::POST,
        "/api/v1/apis",
        Some(api),
        Some(&s.csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, list) = node.get("/api/v1/apis").await;
    assert_eq!(list[0]["name"], "orders");
    node.stop().await;
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let (st, created) = node
        .post(
            "/api/v1/apis",
            json!({"name": "orders", "base_path": "/orders", "upstream": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let s = sign_in(&node).await;
    // What a form on another site would send if the browser attached the cookie
    // (SameSite=Strict keeps it from doing so; the CSRF check holds even if it did).
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/apis".to_string(),
            "name=evil&base_path=%2Fevil&upstream=http%3A%2F%2F127.0.0.1%3A9",
        ),
        (Method::POST, format!("/api/v1/apis/{id}"), "_method=DELETE"),
        (
            Method::PUT,
            "/api/v1/gateway/client-cert-auth".to_string(),
            r#"{"mode":"mtls"}"#,
        ),
        (Method::DELETE, format!("/api/v1/apis/{id}"), ""),
        (Method::DELETE, "/console/session".to_string(), ""),
    ] {
        let resp = node
            .client
            .request(method.clone(), format!("{}{path}", node.url))
            .header("cookie", &s.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://evil.example")
            .header("referer", "http://evil.example/form.html")
            .body(body)
            .send()
            .await
            .unwrap();
        let got = read(resp).await;
        assert_error(&got, 403, "csrf_failed", None);
        let _ = method;
    }
    let (_, list) = node.get("/api/v1/apis").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "orders");
    let (_, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(gw["client_cert_auth"]["mode"], "none");
    // The session survived the refused sign-out.
    let (st, _) = with_cookie(&node, &s, Method::GET, "/console/session", None, None).await;
    assert_eq!(st, StatusCode::OK);
    node.stop().await;
}

#[tokio::test]
async fn sessions_end_after_30_idle_minutes_or_8_hours() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let node = Node::start_with(dir.path(), true, true, None, Some(clock.clock())).await;

    // Idle: each request restarts the 30 minutes.
    let s = sign_in(&node).await;
    for _ in 0..3 {
        clock.advance(Duration::minutes(29));
        let (st, v) = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    clock.advance(Duration::minutes(30));
    let got = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    let got = with_cookie(&node, &s, Method::GET, "/console/session", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    // An expired session cannot write either, CSRF token or not.
    let got = with_cookie(
        &node,
        &s,
        Method::POST,
        "/api/v1/apis",
        Some(json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:9"})),
        Some(&s.csrf),
    )
    .await;
    assert_error(&got, 401, "unauthorized", None);
    assert_eq!(node.get("/api/v1/apis").await, (StatusCode::OK, json!([])));

    // Absolute: busy all along, the session still ends 8 hours after sign-in.
    let s = sign_in(&node).await;
    let signed_at = OffsetDateTime::parse(
        s.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        - Duration::minutes(30);
    let mut elapsed = Duration::ZERO;
    while elapsed + Duration::minutes(20) < Duration::hours(8) {
        clock.advance(Duration::minutes(20));
        elapsed += Duration::minutes(20);
        let (st, v) = with_cookie(&node, &s, Method::GET, "/console/session", None, None).await;
        assert_eq!(st, StatusCode::OK, "at {elapsed}");
        let exp = OffsetDateTime::parse(
            v["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(
            exp <= signed_at + Duration::hours(8) + Duration::seconds(1),
            "{exp}"
        );
    }
    clock.advance(Duration::hours(8) - elapsed);
    let got = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    node.stop().await;
}

#[tokio::test]
async fn sign_out_needs_the_csrf_token_and_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let s = sign_in(&node).await;
    let got = with_cookie(&node, &s, Method::DELETE, "/console/session", None, None).await;
    assert_error(&got, 403, "csrf_failed", None);
    let (st, _) = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let resp = node
        .client
        .delete(format!("{}/console/session", node.url))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cleared.starts_with("certgate_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let got = with_cookie(&node, &s, Method::GET, "/api/v1/apis", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    let got = with_cookie(&node, &s, Method::GET, "/console/session", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    node.stop().await;
}

const FILES: &[(&str, &str)] = &[
    ("index.html", "text/html"),
    ("app.css", "text/css"),
    ("api.js", "text/javascript"),
    ("ui.js", "text/javascript"),
    ("app.js", "text/javascript"),
    ("gateway.js", "text/javascript"),
    ("certificates.js", "text/javascript"),
    ("apis.js", "text/javascript"),
    ("nodes.js", "text/javascript"),
    ("activity.js", "text/javascript"),
    ("favicon.svg", "image/svg+xml"),
];

fn assert_console_headers(resp: &reqwest::Response, what: &str) {
    let csp = resp
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {what}"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(
        resp.headers().get("x-content-type-options").unwrap(),
        "nosniff",
        "{what}"
    );
}

#[tokio::test]
async fn console_files_are_embedded_and_served_with_caching_and_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let no_redirect = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/console"] {
        let resp = no_redirect
            .get(format!("{}{path}", node.url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_redirection(), "{path}: {}", resp.status());
        assert_eq!(resp.headers().get("location").unwrap(), "/console/");
    }
    for (i, (name, mime)) in FILES.iter().enumerate() {
        let path = if i == 0 {
            "/console/".to_string()
        } else {
            format!("/console/{name}")
        };
        let resp = node
            .client
            .get(format!("{}{path}", node.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_console_headers(&resp, &path);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime),
            "{path}"
        );
        assert_eq!(resp.headers()["cache-control"], "no-cache", "{path}");
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        let on_disk =
            std::fs::read_to_string(format!("{}/console/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        assert_eq!(body, on_disk, "{name} is served as written");
        // No inline style or script, nothing from another origin.
        assert!(!body.contains("style="), "{name} has a style attribute");
        assert!(!body.contains("<style"), "{name} has a style element");
        for url in body.match_indices("://") {
            let before = &body[..url.0];
            let scheme_start = before
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |i| i + 1);
            let rest = &body[url.0 + 3..];
            let names_a_host =
                rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '$' || c == '[');
            assert!(
                !names_a_host || rest.starts_with("www.w3.org/2000/svg"),
                "{name} names another origin: {}{}",
                &body[scheme_start..url.0],
                &rest[..rest.len().min(40)]
            );
        }
        // Revalidation answers 304.
        let resp = node
            .client
            .get(format!("{}{path}", node.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_console_headers(&resp, &path);
    }
    let index = node
        .client
        .get(format!("{}/console/", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !index.contains("<script>")
            && index.contains(r#"<script type="module" src="app.js"></script>"#)
    );
    // Unknown files and the session API carry the headers too.
    let resp = node
        .client
        .get(format!("{}/console/nope.js", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_console_headers(&resp, "/console/nope.js");
    let resp = node
        .client
        .get(format!("{}/console/session", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_console_headers(&resp, "/console/session");
    node.stop().await;
}

#[tokio::test]
async fn activity_counts_denials_per_minute_from_the_node_counters() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let clock = TestClock::new();
    let node = Node::start_with(dir.path(), true, true, Some(handle), Some(clock.clock())).await;
    let count = |reason: &'static str, api: &'static str, n: u64| {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("certgate_auth_denied_total", "reason" => reason, "api" => api)
                .increment(n);
        })
    };
    let (st, v) = node.get("/api/v1/activity/denials").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["minutes"].as_array().unwrap().len(), 60);
    assert_eq!(v["total"], json!([]));
    count("untrusted", "orders", 3);
    clock.advance(Duration::minutes(2));
    count("dn_mismatch", "", 2);
    let (_, v) = node.get("/api/v1/activity/denials").await;
    assert_eq!(
        v["total"],
        json!([{"reason": "dn_mismatch", "api": "", "count": 2}, {"reason": "untrusted", "api": "orders", "count": 3}])
    );
    assert_eq!(v["minutes"][59]["denials"].as_array().unwrap().len(), 2);
    // Once the hour has passed, the minute leaves the window.
    clock.advance(Duration::minutes(61));
    count("untrusted", "orders", 1);
    let (_, v) = node.get("/api/v1/activity/denials").await;
    assert_eq!(
        v["total"],
        json!([{"reason": "untrusted", "api": "orders", "count": 1}])
    );
    // Cookie-authenticated like every other /api/v1 path; no token, no data.
    let got = read(
        node.client
            .get(format!("{}/api/v1/activity/denials", node.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&got, 401, "unauthorized", None);
    node.stop().await;
}
