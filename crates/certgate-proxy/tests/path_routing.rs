//! Issue 9 defect 4 end to end: a stricter API is never reachable through a laxer one.
//!
//! Real TLS on loopback, mtls mode, three APIs on one recording upstream: `/` (catch-all,
//! not required), `/files` (not required) and `/files/admin` (required, DN list of the admin
//! only). Each upstream URL carries the API's base path, so the path the upstream receives
//! is the request's normal path. Every bypass form of the issue, over HTTP/1.1 and HTTP/2,
//! is either refused with 400 or routed to `/files/admin` (401 without a certificate, 200
//! for the admin, whose request reaches the upstream with the normal path); the upstream
//! never sees a request that was not allowed.

mod common;
#[path = "common/recorder.rs"]
mod recorder;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate_store::model::{Api, ApiOverride, GatewayConfig, ValidationFailure};
use common::*;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use recorder::Recorder;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the admin's file lands upstream, whatever spelling reached it.
const ADMIN_FILE: &str = "/files/admin/secret.txt";

/// Spellings of [`ADMIN_FILE`] that must reach the `/files/admin` API.
const ADMIN_FORMS: &[&str] = &[
    "/files/admin/secret.txt",
    "/files/./admin/secret.txt",
    "/files//admin/secret.txt",
    "/files/x/../admin/secret.txt",
    "/files/%2e/admin/secret.txt",
    "/files/%2E%2E/files/admin/secret.txt",
    "/files/x/.%2e/admin/secret.txt",
    "/files/%61dmin/secret.txt",
    "/files/%61%64%6d%69%6e/secret.txt",
    "//files/admin/secret.txt",
    "/x/../files/admin/secret.txt",
    "/files/admin/./secret.txt",
    "/files/admin//secret.txt",
];

/// Spellings that read two ways: refused with 400 before routing.
const REFUSED_FORMS: &[&str] = &[
    "/files/admin%2Fsecret.txt",
    "/files/admin%2fsecret.txt",
    "/files%2Fadmin/secret.txt",
    "/files/admin%5Csecret.txt",
    "/files%5cadmin%5csecret.txt",
    "/files\\admin\\secret.txt",
    "/files/admin/secret.txt%00",
    "/../files/admin/secret.txt",
    "/files/../../files/admin/secret.txt",
    "/%2e%2e/files/admin/secret.txt",
    "/files/%252e%252e/files/admin/secret.txt",
    "/files/%252Fadmin/secret.txt",
    "/files/..;/files/admin/secret.txt",
    "/files/admin/%zz",
];

/// Forms for the lax APIs: (sent, what the upstream must receive).
const LAX_FORMS: &[(&str, &str)] = &[
    ("/files/./public.txt", "/files/public.txt"),
    ("/files//a/../public.txt", "/files/public.txt"),
    (
        "/files/%7epub/caf%c3%a9.txt?q=%2F..&x=./a//b",
        "/files/~pub/caf%C3%A9.txt?q=%2F..&x=./a//b",
    ),
    ("/other//x/./y/", "/other/x/y/"),
    ("/files/adminx", "/files/adminx"),
];

struct Env {
    pki: Pki,
    admin: Identity,
    alice: Identity,
    upstream: Recorder,
    addr: SocketAddr,
    _gw: GatewayHandle,
}

fn with_path(api: Api, up: SocketAddr, path: &str) -> Api {
    Api {
        upstream: format!("http://{up}{path}"),
        ..api
    }
}

async fn env() -> Env {
    let pki = Pki::new();
    let admin = pki.client_cn("files-admin");
    let alice = pki.client_cn("alice");
    let upstream = Recorder::spawn().await;
    let up = upstream.addr;
    let mut config = root_mtls_config(&pki, up, false, ValidationFailure::Handshake);
    config.apis = vec![
        with_path(api(1, "/", up), up, ""),
        with_path(api(2, "/files", up), up, "/files"),
        Api {
            override_: Some(ApiOverride {
                required: Some(true),
                trusted_dns: Some(vec![admin.dn.clone()]),
            }),
            ..with_path(api(3, "/files/admin", up), up, "/files/admin")
        },
    ];
    let (addr, _gw) = gateway(&pki, &config).await;
    Env {
        pki,
        admin,
        alice,
        upstream,
        addr,
        _gw,
    }
}

async fn gateway(pki: &Pki, config: &GatewayConfig) -> (SocketAddr, GatewayHandle) {
    let (addr, _rt, handle) = spawn_gateway(tls_settings(pki), config).await;
    (addr, handle)
}

/// Asserts the data plane's JSON error of `status` with `message`.
fn assert_error(reply: &Reply, status: u16, message: &str, what: &str) {
    assert_eq!(
        reply.status,
        status,
        "{what}: body {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"code": status, "message": message}),
        "{what}"
    );
}

/// Asserts 200 from the upstream and that it received exactly one request, for `target`.
fn assert_forwarded(reply: &Reply, upstream: &Recorder, target: &str, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {:?}", reply.body);
    assert_eq!(reply.body.as_ref(), b"ok", "{what}");
    let seen = upstream.take();
    assert_eq!(seen.len(), 1, "{what}: {seen:?}");
    assert_eq!(seen[0].target(), target, "{what}");
}

/// A client that talks HTTP/1.1 or HTTP/2 (one connection per request).
#[derive(Clone, Copy, Debug)]
enum Proto {
    H1,
    H2,
}

async fn send(
    env: &Env,
    proto: Proto,
    who: Option<&Identity>,
    method: Method,
    path: &str,
) -> Reply {
    match proto {
        Proto::H1 => {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            TlsClient::new(&env.pki, who)
                .request(env.addr, req)
                .await
                .unwrap()
        }
        Proto::H2 => {
            let config = client_config(&env.pki, who, &[b"h2"]);
            let (mut sender, _driver) = h2_connect(env.addr, config).await;
            let uri = if method == Method::CONNECT {
                path.to_owned()
            } else {
                format!("https://localhost{path}")
            };
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            let (parts, body) = resp.into_parts();
            Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.collect().await.unwrap().to_bytes(),
            }
        }
    }
}

async fn every_form(proto: Proto) {
    let env = env().await;
    for &form in ADMIN_FORMS {
        let what = format!("{proto:?} {form}");
        let reply = send(&env, proto, None, Method::GET, form).await;
        assert_error(&reply, 401, MSG_401, &what);
        let reply = send(&env, proto, Some(&env.alice), Method::GET, form).await;
        assert_error(&reply, 403, MSG_403, &what);
        assert!(
            env.upstream.take().is_empty(),
            "{what}: a refused request reached the upstream"
        );
        let reply = send(&env, proto, Some(&env.admin), Method::GET, form).await;
        assert_forwarded(&reply, &env.upstream, ADMIN_FILE, &what);
    }
    for &form in REFUSED_FORMS {
        let what = format!("{proto:?} {form}");
        for who in [None, Some(&env.admin)] {
            let reply = send(&env, proto, who, Method::GET, form).await;
            assert_error(&reply, 400, "Bad request.", &what);
        }
        assert!(
            env.upstream.take().is_empty(),
            "{what}: reached the upstream"
        );
    }
    for &(form, received) in LAX_FORMS {
        let what = format!("{proto:?} {form}");
        let reply = send(&env, proto, None, Method::GET, form).await;
        assert_forwarded(&reply, &env.upstream, received, &what);
    }
    // CONNECT is no tunnel: 501, never forwarded (it used to go out as `CONNECT /`).
    let reply = send(&env, proto, None, Method::CONNECT, "localhost:443").await;
    assert_error(
        &reply,
        501,
        "Not implemented.",
        &format!("{proto:?} CONNECT"),
    );
    assert!(
        env.upstream.take().is_empty(),
        "CONNECT reached the upstream"
    );
}

#[tokio::test]
async fn every_bypass_form_over_http1_is_refused_or_routed_to_the_strict_api() {
    every_form(Proto::H1).await;
}

#[tokio::test]
async fn every_bypass_form_over_http2_is_refused_or_routed_to_the_strict_api() {
    every_form(Proto::H2).await;
}

/// Writes `request` on a new TLS connection (no client certificate) and reads the answer
/// until the server closes (bounded by 10 s).
async fn raw_tls(env: &Env, request: &[u8]) -> String {
    let config = client_config(&env.pki, None, &[b"http/1.1"]);
    let tcp = TcpStream::connect(env.addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the gateway did not close: {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

/// The request-target forms of HTTP/1.1 other than origin-form (RFC 9112 §3.2), sent raw.
#[tokio::test]
async fn http1_absolute_asterisk_and_authority_forms() {
    let env = env().await;
    // Absolute-form naming the Host: routed on its normal path like origin-form.
    let r = raw_tls(
        &env,
        b"GET https://localhost/files/./admin/secret.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "401", "{r}");
    assert!(r.ends_with(&format!("\"message\": \"{MSG_401}\"}}")), "{r}");
    let r = raw_tls(
        &env,
        b"GET https://localhost/files/public.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "200", "{r}");
    assert_eq!(env.upstream.take()[0].target(), "/files/public.txt");
    // Absolute-form naming another host than Host: which one is meant reads two ways.
    let r = raw_tls(
        &env,
        b"GET https://elsewhere/files/public.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "400", "{r}");
    assert!(
        r.ends_with(r#"{"code": 400, "message": "Bad request."}"#),
        "{r}"
    );
    // Two Host headers.
    let r = raw_tls(
        &env,
        b"GET /files/public.txt HTTP/1.1\r\nHost: localhost\r\nHost: elsewhere\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "400", "{r}");
    // Asterisk-form.
    let r = raw_tls(&env, b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(status_of(&r), "400", "{r}");
    assert!(
        r.ends_with(r#"{"code": 400, "message": "Bad request."}"#),
        "{r}"
    );
    // Authority-form (CONNECT): 501 and the connection closes, so bytes sent after it
    // are never read as a tunnel or as a request.
    let r = raw_tls(
        &env,
        b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\nGET /files/public.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), "501", "{r}");
    assert!(
        r.ends_with(r#"{"code": 501, "message": "Not implemented."}"#),
        "{r}"
    );
    assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "{r}");
    assert!(env.upstream.take().is_empty());
}
