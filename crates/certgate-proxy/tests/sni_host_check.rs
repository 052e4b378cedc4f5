//! SPEC §16 `sni_host_check`: in mtls mode a request whose Host (or `:authority`) names
//! another host than the TLS SNI gets 421 before any certificate check, on HTTP/1.1
//! (curl `--resolve` / `--connect-to`) and HTTP/2 (one connection reused for two hosts).

mod common;

use bytes::Bytes;
use certgate_store::model::{CertAuthMode, ValidationFailure};
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};

/// The process-wide Prometheus recorder the data plane's counters go to.
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install the Prometheus recorder")
    })
}

/// `certgate_auth_denied_total{reason,api}` now (0 when never counted).
fn denied(reason: &str, api: &str) -> u64 {
    let text = metrics().render();
    let (reason, api) = (format!("reason=\"{reason}\""), format!("api=\"{api}\""));
    text.lines()
        .filter(|l| l.starts_with("certgate_auth_denied_total{"))
        .filter(|l| l.contains(&reason) && l.contains(&api))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

const MSG_421: &str = r#"{"code": 421, "message": "Misdirected request."}"#;

/// curl against the gateway: `(status, body)`.
fn curl(pki: &Pki, client: Option<&Identity>, args: &[&str]) -> (u16, String) {
    let mut cmd = certgate_testkit::command("curl");
    cmd.args(["-sS", "--noproxy", "*", "--max-time", "20", "--cacert"])
        .arg(pki.path("root.pem"))
        .args(["-w", "\n%{http_code}"]);
    if let Some(id) = client {
        let (cert, key) = id.write(pki.dir.path(), "client");
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd.args(args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

// curl blocks its thread: the gateway serves on the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_with_curl_resolve_and_connect_to() {
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    // Required: a mismatch gets 421 where a missing certificate would get 401.
    let config = root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake);
    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
    let port = addr.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/");
    let alice = pki.client_cn("alice");

    // SNI localhost, Host localhost: the certificate checks decide.
    let (status, _) = curl(&pki, None, &["--resolve", &resolve, &url]);
    assert_eq!(status, 401);
    let (status, _) = curl(&pki, Some(&alice), &["--resolve", &resolve, &url]);
    assert_eq!(status, 200);
    // The port and the letter case of Host do not matter.
    let (status, _) = curl(
        &pki,
        Some(&alice),
        &["--resolve", &resolve, "-H", "Host: LocalHost:1", &url],
    );
    assert_eq!(status, 200);
    // SNI localhost, Host other.example: 421, with or without a certificate.
    for client in [None, Some(&alice)] {
        let (status, body) = curl(
            &pki,
            client,
            &["--resolve", &resolve, "-H", "Host: other.example", &url],
        );
        assert_eq!(status, 421, "{body}");
        assert_eq!(body, MSG_421);
    }
    // --connect-to: the URL's host is the SNI and the Host.
    let connect_to = format!("localhost:443:127.0.0.1:{port}");
    let (status, _) = curl(
        &pki,
        Some(&alice),
        &["--connect-to", &connect_to, "https://localhost/"],
    );
    assert_eq!(status, 200);
    let (status, body) = curl(
        &pki,
        Some(&alice),
        &[
            "--connect-to",
            &connect_to,
            "-H",
            "Host: admin.internal",
            "https://localhost/",
        ],
    );
    assert_eq!((status, body.as_str()), (421, MSG_421));
    // By IP: curl sends no SNI, so there is nothing to compare with.
    let (status, _) = curl(
        &pki,
        Some(&alice),
        &[
            "-H",
            "Host: other.example",
            &format!("https://127.0.0.1:{port}/"),
        ],
    );
    assert_eq!(status, 200);
}

#[tokio::test]
async fn http2_one_connection_for_two_hosts() {
    metrics();
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    let mut config = root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake);
    config.apis[0].name = "h2-api".into();
    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
    let alice = pki.client_cn("alice");
    // SNI localhost (h2_connect), then :authority localhost, other.example, localhost.
    let (mut sender, _conn) = h2_connect(addr, client_config(&pki, Some(&alice), &[b"h2"])).await;
    let mut statuses = Vec::new();
    for authority in ["localhost", "other.example", "localhost:8443"] {
        let req = Request::get(format!("https://{authority}/"))
            .version(http::Version::HTTP_2)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        if status == 421 {
            assert_eq!(&body[..], MSG_421.as_bytes());
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 421, 200]);
    // Its own reason in the denial counter.
    assert_eq!(denied("misdirected_request", "h2-api"), 1);
}

// curl blocks its thread: the gateway serves on the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_or_outside_mtls_there_is_no_check() {
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    let alice = pki.client_cn("alice");
    let mut off = root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake);
    off.client_cert_auth.sni_host_check = false;
    let mut none = off.clone();
    none.client_cert_auth.mode = CertAuthMode::None;
    none.client_cert_auth.sni_host_check = true;
    let mut header = none.clone();
    header.client_cert_auth.mode = CertAuthMode::Header;
    header.client_cert_auth.required = false;
    header.client_cert_auth.header_name = Some("x-ssl-client-cert".into());
    for config in [off, none, header] {
        let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
        let port = addr.port();
        let (status, body) = curl(
            &pki,
            Some(&alice),
            &[
                "--resolve",
                &format!("localhost:{port}:127.0.0.1"),
                "-H",
                "Host: other.example",
                &format!("https://localhost:{port}/"),
            ],
        );
        assert_eq!(status, 200, "{:?}: {body}", config.client_cert_auth.mode);
    }
}
