//! mtls end to end with real clients: `curl --cert --key --cacert` and `openssl s_client`
//! against a certgate node (SPEC §2 `mode = mtls`, §3, §7, §10 `session_resumption`).
//!
//! Both programs come with Debian (`scripts/test.sh` installs them when missing); a test whose
//! program is missing fails, it does not skip.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use certgate_proxy::Runtime;
use certgate_store::model::{GatewayConfig, ValidationFailure};
use common::*;
use tokio::io::AsyncWriteExt;

/// A hang guard for the external programs (never an assertion on timing).
const PROGRAM_GUARD: Duration = Duration::from_secs(120);

struct Node {
    pki: Pki,
    addr: SocketAddr,
    runtime: Arc<Runtime>,
    config: GatewayConfig,
    _gateway: GatewayHandle,
}

/// An mtls node trusting the PKI's root, one API at `/` to the echo upstream.
async fn mtls_node(required: bool, validation_failure: ValidationFailure) -> Node {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = mtls_config(
        echo,
        vec![pki.root.trusted(1)],
        required,
        validation_failure,
    );
    let (addr, runtime, gateway) = spawn_gateway(tls_settings(&pki), &config).await;
    Node {
        pki,
        addr,
        runtime,
        config,
        _gateway: gateway,
    }
}

/// Runs a program to completion (stdin: `input`), with the hang guard.
async fn run(program: &str, args: &[String], input: &[u8]) -> Output {
    let mut child = certgate_testkit::tokio_command(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} (scripts/test.sh installs it): {error}")
        });
    let mut stdin = child.stdin.take().unwrap();
    // The program may close its stdin early (a failed handshake): that is not an error here.
    let _ = stdin.write_all(input).await;
    drop(stdin);
    tokio::time::timeout(PROGRAM_GUARD, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} hung"))
        .unwrap()
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// What curl saw: its exit code, the HTTP status (`000` when there was none) and the body.
struct Curl {
    code: i32,
    status: String,
    body: String,
    stderr: String,
}

/// `curl -sS --cacert root.pem [--cert c.pem --key c.key] https://localhost:PORT/path`
/// (localhost resolved to 127.0.0.1).
async fn curl(node: &Node, identity: Option<(&PathBuf, &PathBuf)>, path: &str) -> Curl {
    let port = node.addr.port();
    let mut args = vec![
        "-sS".to_string(),
        "--max-time".into(),
        "60".into(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        "--cacert".into(),
        s(&node.pki.path("root.pem")),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    if let Some((cert, key)) = identity {
        args.extend(["--cert".into(), s(cert), "--key".into(), s(key)]);
    }
    args.push(format!("https://localhost:{port}{path}"));
    let output = run("curl", &args, b"").await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Curl {
        code: output.status.code().unwrap_or(-1),
        status: status.to_string(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn echo_json(curl: &Curl) -> serde_json::Value {
    assert_eq!(curl.code, 0, "curl failed: {}", curl.stderr);
    assert_eq!(curl.status, "200", "body: {}", curl.body);
    serde_json::from_str(&curl.body).unwrap()
}

fn assert_curl_denied(curl: &Curl, status: u16) {
    assert_eq!(curl.code, 0, "curl failed: {}", curl.stderr);
    assert_eq!(curl.status, status.to_string(), "body: {}", curl.body);
    let message = if status == 401 { MSG_401 } else { MSG_403 };
    let body: serde_json::Value = serde_json::from_str(&curl.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": status, "message": message})
    );
}

#[tokio::test]
async fn curl_with_client_cert_gets_200_and_identity_forwarded() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    let alice = node.pki.client_cn("alice");
    let (cert, key) = alice.write(node.pki.dir.path(), "alice");
    let reply = curl(&node, Some((&cert, &key)), "/orders?id=7").await;
    let json = echo_json(&reply);
    let headers = &json["headers"];
    assert_eq!(headers["x-client-cert-subject"], alice.dn.as_str());
    assert_eq!(headers["x-client-cert-issuer"], node.pki.root.dn.as_str());
    assert_eq!(headers["x-client-cert-serial"], alice.serial_hex.as_str());
    assert_eq!(
        headers["x-client-cert-fingerprint"],
        alice.fingerprint.as_str()
    );
    assert_eq!(
        headers["x-client-cert-not-after"],
        alice.not_after_rfc3339().as_str()
    );
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(json["path"], "/orders");
    assert_eq!(json["query"], "id=7");
}

#[tokio::test]
async fn curl_with_intermediate_issued_cert_sends_its_chain() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    let carol = node
        .pki
        .client(&ClientSpec::new("carol").issued_by(IssuedBy::Intermediate));
    // carol.pem holds the leaf and the intermediate: curl sends both.
    let (cert, key) = carol.write(node.pki.dir.path(), "carol");
    let json = echo_json(&curl(&node, Some((&cert, &key)), "/").await);
    assert_eq!(json["headers"]["x-client-cert-subject"], carol.dn.as_str());
    assert_eq!(
        json["headers"]["x-client-cert-issuer"],
        node.pki.intermediate.dn.as_str()
    );
}

#[tokio::test]
async fn curl_without_cert_when_required_gets_401() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    let reply = curl(&node, None, "/").await;
    assert_curl_denied(&reply, 401);
}

#[tokio::test]
async fn curl_without_cert_when_not_required_passes_without_identity() {
    let node = mtls_node(false, ValidationFailure::Handshake).await;
    let json = echo_json(&curl(&node, None, "/").await);
    let leaked: Vec<&String> = json["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| name.starts_with("x-client-cert-"))
        .collect();
    assert!(leaked.is_empty(), "{json}");
}

#[tokio::test]
async fn curl_untrusted_cert_fails_the_handshake() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    for spec in [
        ClientSpec::new("stranger").issued_by(IssuedBy::Untrusted),
        ClientSpec::new("old").expired(),
    ] {
        let id = node.pki.client(&spec);
        let (cert, key) = id.write(node.pki.dir.path(), "bad");
        let reply = curl(&node, Some((&cert, &key)), "/").await;
        assert_ne!(
            reply.code, 0,
            "curl should fail the TLS exchange; got {} {}",
            reply.status, reply.body
        );
        assert_eq!(
            reply.status, "000",
            "no HTTP answer expected: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn curl_untrusted_cert_gets_403_with_validation_failure_http() {
    let node = mtls_node(true, ValidationFailure::Http).await;
    for spec in [
        ClientSpec::new("stranger").issued_by(IssuedBy::Untrusted),
        ClientSpec::new("old").expired(),
    ] {
        let id = node.pki.client(&spec);
        let (cert, key) = id.write(node.pki.dir.path(), "bad");
        assert_curl_denied(&curl(&node, Some((&cert, &key)), "/").await, 403);
    }
    // A good certificate still passes on the same node.
    let alice = node.pki.client_cn("alice");
    let (cert, key) = alice.write(node.pki.dir.path(), "alice");
    let json = echo_json(&curl(&node, Some((&cert, &key)), "/").await);
    assert_eq!(json["headers"]["x-client-cert-subject"], alice.dn.as_str());
}

// ---------------------------------------------------------------------------------------------
// openssl s_client
// ---------------------------------------------------------------------------------------------

/// What `openssl s_client` printed.
struct SClient {
    stdout: String,
    stderr: String,
}

impl SClient {
    /// The status code of the first HTTP/1.1 status line received, if any.
    fn status(&self) -> Option<u16> {
        let at = self.stdout.find("HTTP/1.1 ")?;
        self.stdout[at + 9..].get(..3)?.parse().ok()
    }

    /// The session was resumed (s_client prints `Reused,` instead of `New,`).
    fn reused(&self) -> bool {
        self.stdout.contains("\nReused,")
    }
}

/// `openssl s_client` to the node, sending one `GET / HTTP/1.1` with `Connection: close` and
/// reading until the server closes.
async fn s_client(
    node: &Node,
    identity: Option<(&PathBuf, &PathBuf)>,
    extra: &[String],
) -> SClient {
    let mut args = vec![
        "s_client".to_string(),
        "-connect".into(),
        node.addr.to_string(),
        "-servername".into(),
        "localhost".into(),
        "-CAfile".into(),
        s(&node.pki.path("root.pem")),
        "-verify_return_error".into(),
        "-ign_eof".into(),
    ];
    if let Some((cert, key)) = identity {
        args.extend(["-cert".into(), s(cert), "-key".into(), s(key)]);
    }
    args.extend(extra.iter().cloned());
    let output = run(
        "openssl",
        &args,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    SClient {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn openssl_s_client_handshake_with_and_without_cert() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    let alice = node.pki.client_cn("alice");
    let (cert, key) = alice.write(node.pki.dir.path(), "alice");

    let with = s_client(&node, Some((&cert, &key)), &[]).await;
    assert!(
        with.stdout.contains("Verify return code: 0 (ok)"),
        "{}\n{}",
        with.stdout,
        with.stderr
    );
    assert_eq!(with.status(), Some(200), "{}", with.stdout);
    assert!(
        with.stdout.contains(&alice.dn),
        "identity not forwarded: {}",
        with.stdout
    );

    // Client auth is offered, not demanded: the handshake completes, the request gets 401.
    let without = s_client(&node, None, &[]).await;
    assert!(
        without.stdout.contains("Verify return code: 0 (ok)"),
        "{}\n{}",
        without.stdout,
        without.stderr
    );
    assert_eq!(without.status(), Some(401), "{}", without.stdout);
    assert!(without.stdout.contains(MSG_401));
    // No CA names are sent by default (send_ca_names = false).
    assert!(
        without
            .stdout
            .contains("No client certificate CA names sent"),
        "{}",
        without.stdout
    );
}

#[tokio::test]
async fn openssl_s_client_untrusted_cert_gets_no_http_answer() {
    let node = mtls_node(true, ValidationFailure::Handshake).await;
    let stranger = node
        .pki
        .client(&ClientSpec::new("stranger").issued_by(IssuedBy::Untrusted));
    let (cert, key) = stranger.write(node.pki.dir.path(), "stranger");
    let out = s_client(&node, Some((&cert, &key)), &[]).await;
    assert_eq!(out.status(), None, "{}\n{}", out.stdout, out.stderr);
    // The server ends the handshake with an alert.
    assert!(
        out.stderr.contains("alert") || out.stdout.contains("alert"),
        "no TLS alert seen:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[tokio::test]
async fn openssl_resumed_session_after_ca_removal_is_not_200() {
    for (version, failure) in [
        ("-tls1_3", ValidationFailure::Handshake),
        ("-tls1_2", ValidationFailure::Handshake),
        ("-tls1_3", ValidationFailure::Http),
        ("-tls1_2", ValidationFailure::Http),
    ] {
        let node = mtls_node(true, failure).await;
        let alice = node.pki.client_cn("alice");
        let (cert, key) = alice.write(node.pki.dir.path(), "alice");
        let session = node.pki.path(&format!("session{version}.pem"));
        let first = s_client(
            &node,
            Some((&cert, &key)),
            &[version.into(), "-sess_out".into(), s(&session)],
        )
        .await;
        assert_eq!(first.status(), Some(200), "{version}: {}", first.stdout);
        assert!(session.exists(), "{version}: s_client saved no session");

        // Resumption works while nothing changed.
        let again = s_client(
            &node,
            Some((&cert, &key)),
            &[version.into(), "-sess_in".into(), s(&session)],
        )
        .await;
        assert!(
            again.reused(),
            "{version}: session not resumed: {}",
            again.stdout
        );
        assert_eq!(again.status(), Some(200), "{version}: {}", again.stdout);

        // Remove the client's CA from the trust table (another CA stays in it).
        let mut config = node.config.clone();
        config.trusted_certificates = vec![node.pki.untrusted_root.trusted(2)];
        apply(&node.runtime, &config);

        let resumed = s_client(
            &node,
            Some((&cert, &key)),
            &[version.into(), "-sess_in".into(), s(&session)],
        )
        .await;
        eprintln!(
            "{version} {failure:?}: after CA removal the session was {} and the status {:?}",
            if resumed.reused() {
                "resumed"
            } else {
                "not resumed"
            },
            resumed.status()
        );
        assert_ne!(
            resumed.status(),
            Some(200),
            "{version} {failure:?}: a resumed session outlived its CA:\n{}",
            resumed.stdout
        );
        if failure == ValidationFailure::Http {
            // The handshake (resumed or not) completes; the request is refused.
            assert_eq!(resumed.status(), Some(403), "{version}: {}", resumed.stdout);
        }
    }
}
