//! SPEC §13 explain against a real `certgate serve` node: for each case the real request
//! is sent with curl and a client certificate, then `POST /api/v1/tools/explain` with the
//! same certificate and path; status and reason must agree, and the steps be as SPEC says.
//! The `certgate explain` CLI is run as a process for its exit codes and trace.

mod harness;

use std::path::{Path, PathBuf};

use harness::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// Writes a leaf `CN=<cn>,O=Acme` issued by `issuer` with the given dates.
fn leaf(
    dir: &Path,
    cn: &str,
    issuer: &Issuer<'_, KeyPair>,
    from: i64,
    to: i64,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, "Acme");
    p.not_before = OffsetDateTime::now_utc() + Duration::days(from);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(to);
    let cert = p.signed_by(&key, issuer).unwrap();
    let (c, k) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn other_ca() -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "Other CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    Issuer::new(ca, key)
}

fn explain(node: &NodeProc, path: &str, cert: Option<&Path>) -> Value {
    let mut body = json!({ "path": path });
    if let Some(c) = cert {
        body["certificate_pem"] = json!(std::fs::read_to_string(c).unwrap());
    }
    let (s, v) = node.call("POST", "/api/v1/tools/explain", Some(&body));
    assert_eq!(s, 200, "{v}");
    v
}

fn results(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["check"].as_str().unwrap().to_owned(),
                s["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expect_steps(v: &Value, want: [&str; 6]) {
    let checks = [
        "route",
        "certificate",
        "chain",
        "validity",
        "revocation",
        "dn",
    ];
    let want: Vec<(String, String)> = checks
        .iter()
        .zip(want)
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .collect();
    assert_eq!(results(v), want, "{v}");
}

#[test]
fn explain_agrees_with_real_requests_for_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = write_config(dir.path(), "sqlite://data/certgate.db", "");
    let node = NodeProc::start(dir.path(), &cfg);
    setup_mtls(&node, &pki, &echo.url);
    let certs = dir.path().join("pki");

    // Leaves of the node's CA need its key: the harness keeps only client1/client2, so the
    // date cases use a second trusted CA of our own.
    let ours = {
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, "Explain CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        ca.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        let pem = ca.self_signed(&key).unwrap().pem();
        let (s, v) = node.call(
            "POST",
            "/api/v1/certificates",
            Some(&json!({"name": "explain-ca", "pem": pem})),
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = node.call(
            "POST",
            "/api/v1/gateway/trusted-certificates",
            Some(&json!({"certificate_id": v["id"]})),
        );
        assert_eq!(s, 201, "{v}");
        Issuer::new(ca, key)
    };
    let expired = leaf(&certs, "expired", &ours, -10, -1);
    let future = leaf(&certs, "future", &ours, 2, 10);
    let stranger = leaf(&certs, "stranger", &other_ca(), -1, 10);
    let good = pki.cert("client1");

    struct Case {
        name: &'static str,
        path: &'static str,
        cert: Option<(PathBuf, PathBuf)>,
        status: u16,
        reason: Option<&'static str>,
        steps: [&'static str; 6],
    }
    let cases = [
        Case {
            name: "trusted",
            path: "/svc/a",
            cert: Some(good.clone()),
            status: 200,
            reason: None,
            steps: ["pass"; 6],
        },
        Case {
            name: "no certificate, required",
            path: "/svc/a",
            cert: None,
            status: 401,
            reason: Some("no_certificate"),
            steps: ["pass", "fail", "skip", "skip", "skip", "skip"],
        },
        Case {
            name: "untrusted",
            path: "/svc/a",
            cert: Some(stranger),
            status: 403,
            reason: Some("untrusted"),
            steps: ["pass", "pass", "fail", "skip", "skip", "skip"],
        },
        Case {
            name: "expired",
            path: "/svc/a",
            cert: Some(expired),
            status: 403,
            reason: Some("expired"),
            steps: ["pass", "pass", "pass", "fail", "skip", "skip"],
        },
        Case {
            name: "not yet valid",
            path: "/svc/a",
            cert: Some(future),
            status: 403,
            reason: Some("not_yet_valid"),
            steps: ["pass", "pass", "pass", "fail", "skip", "skip"],
        },
        Case {
            name: "no route, trusted",
            path: "/nowhere",
            cert: Some(good.clone()),
            status: 404,
            reason: None,
            steps: ["fail", "pass", "pass", "pass", "pass", "pass"],
        },
        Case {
            name: "no route, no certificate",
            path: "/nowhere",
            cert: None,
            status: 401,
            reason: Some("no_certificate"),
            steps: ["fail", "fail", "skip", "skip", "skip", "skip"],
        },
    ];
    for c in &cases {
        let real = node.probe(c.path, c.cert.clone());
        assert_eq!(real, c.status, "{}: real request", c.name);
        let v = explain(&node, c.path, c.cert.as_ref().map(|(p, _)| p.as_path()));
        assert_eq!(v["status"], c.status, "{}: {v}", c.name);
        assert_eq!(v["reason"], json!(c.reason), "{}: {v}", c.name);
        assert_eq!(v["outcome"], "http", "{}: {v}", c.name);
        expect_steps(&v, c.steps);
    }

    // dn_mismatch: an API override with a pattern client1 does not match.
    let (_, apis) = node.call("GET", "/api/v1/apis", None);
    let api_id = apis[0]["id"].as_i64().unwrap();
    let (s, v) = node.call(
        "PUT",
        &format!("/api/v1/apis/{api_id}/client-cert-auth"),
        Some(&json!({"trusted_dns": ["CN=someone-else,O=Acme"]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(node.probe("/svc/a", Some(good.clone())), 403);
    let v = explain(&node, "/svc/a", Some(&good.0));
    assert_eq!(v["status"], 403, "{v}");
    assert_eq!(v["reason"], "dn_mismatch", "{v}");
    assert_eq!(v["dn"], "O=Acme,CN=client1", "{v}");
    assert_eq!(v["api"]["name"], "svc", "{v}");
    assert_eq!(
        v["effective"]["trusted_dns"],
        json!(["CN=someone-else,O=Acme"]),
        "{v}"
    );
    expect_steps(&v, ["pass", "pass", "pass", "pass", "pass", "fail"]);
    // A matching pattern is named.
    let (s, _) = node.call(
        "PUT",
        &format!("/api/v1/apis/{api_id}/client-cert-auth"),
        Some(&json!({"trusted_dns": ["CN=nobody", "CN=client?,O=*"]})),
    );
    assert_eq!(s, 200);
    assert_eq!(node.probe("/svc/a", Some(good.clone())), 200);
    let v = explain(&node, "/svc/a", Some(&good.0));
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["matched_pattern"], "CN=client?,O=*", "{v}");

    // validation_failure = handshake: the real handshake fails (curl gets no answer) and
    // explain says so.
    let (s, _) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"validation_failure": "handshake"})),
    );
    assert_eq!(s, 200);
    let stranger = (certs.join("stranger.pem"), certs.join("stranger.key"));
    assert_eq!(node.probe("/svc/a", Some(stranger.clone())), 0);
    let v = explain(&node, "/svc/a", Some(&stranger.0));
    assert_eq!(v["status"], 403, "{v}");
    assert_eq!(v["reason"], "untrusted", "{v}");
    assert_eq!(v["outcome"], "tls_handshake_failure", "{v}");

    // Bad input: 422 with the error shape; explain changes nothing (generation stays).
    let (_, before) = node.call("GET", "/api/v1/gateway", None);
    let (s, v) = node.call(
        "POST",
        "/api/v1/tools/explain",
        Some(&json!({"path": "/svc/a", "certificate_pem": "not a pem"})),
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_certificate", "{v}");
    let (s, v) = node.call(
        "POST",
        "/api/v1/tools/explain",
        Some(&json!({"method": "GET"})),
    );
    assert_eq!(s, 422, "{v}");
    let (_, after) = node.call("GET", "/api/v1/gateway", None);
    assert_eq!(before["generation"], after["generation"]);

    // The CLI: exit 0 on 2xx with one line per step, 1 otherwise; --json prints the answer.
    let cli = |args: &[&str]| {
        let out = certgate_testkit::command(BIN)
            .args(["explain", "--admin", &node.admin, "--token", TOKEN])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let good_pem = good.0.to_str().unwrap();
    let (code, out) = cli(&["--cert", good_pem, "/svc/a"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("status: 200\n"), "{out}");
    assert!(
        out.contains("\ndn           pass  O=Acme,CN=client1 matches CN=client?,O=*\n"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(" pass ")).count(),
        6,
        "{out}"
    );
    let (code, out) = cli(&["/svc/a"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("status: 401 (no_certificate)\n"), "{out}");
    assert!(
        out.contains("certificate  fail  no certificate presented, and one is required"),
        "{out}"
    );
    let (code, out) = cli(&["--json", "--cert", stranger.0.to_str().unwrap(), "/svc/a"]);
    assert_eq!(code, Some(1), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"], "tls_handshake_failure");
}

/// The reasons the first test leaves out that a request can show: `revoked` (a configured
/// CRL) and `misdirected_request` (SPEC §16's 421: a Host other than the SNI).
#[test]
fn explain_agrees_with_real_requests_for_revoked_and_misdirected() {
    use rcgen::{
        CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams,
        SerialNumber,
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = write_config(dir.path(), "sqlite://data/certgate.db", "");
    let node = NodeProc::start(dir.path(), &cfg);
    setup_mtls(&node, &pki, &echo.url);
    let certs = dir.path().join("pki");

    // A trusted CA of our own that revokes one of its two leaves.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Revoking CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
    let ca_pem = params.self_signed(&key).unwrap().pem();
    let ca = Issuer::new(params, key);
    let (s, v) = node.call(
        "POST",
        "/api/v1/certificates",
        Some(&json!({"name": "revoking-ca", "pem": ca_pem})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = node.call(
        "POST",
        "/api/v1/gateway/trusted-certificates",
        Some(&json!({"certificate_id": v["id"]})),
    );
    assert_eq!(s, 201, "{v}");
    let serial = [0x42u8, 0x17];
    let revoked = {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "revoked");
        p.distinguished_name.push(DnType::OrganizationName, "Acme");
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        p.not_after = OffsetDateTime::now_utc() + Duration::days(10);
        let cert = p.signed_by(&key, &ca).unwrap();
        let (c, k) = (certs.join("revoked.pem"), certs.join("revoked.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let kept = leaf(&certs, "kept", &ca, -1, 10);
    let crl = CertificateRevocationListParams {
        this_update: OffsetDateTime::now_utc() - Duration::hours(2),
        next_update: OffsetDateTime::now_utc() + Duration::days(7),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: OffsetDateTime::now_utc() - Duration::hours(1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)
    .unwrap()
    .pem()
    .unwrap();
    let (s, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"crls": [crl]})),
    );
    assert_eq!(s, 200, "{v}");

    assert_eq!(node.probe("/svc/a", Some(revoked.clone())), 403);
    let v = explain(&node, "/svc/a", Some(&revoked.0));
    assert_eq!(
        (v["status"].clone(), v["reason"].clone()),
        (json!(403), json!("revoked")),
        "{v}"
    );
    expect_steps(&v, ["pass", "pass", "pass", "pass", "fail", "skip"]);
    assert_eq!(node.probe("/svc/a", Some(kept.clone())), 200);
    let v = explain(&node, "/svc/a", Some(&kept.0));
    assert_eq!(v["status"], 200, "{v}");
    expect_steps(&v, ["pass"; 6]);

    // 421: the SNI says localhost, the Host another name (curl --resolve sends the SNI).
    let port = node.proxy.rsplit(':').next().unwrap().to_string();
    let out = certgate_testkit::command("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-H", "Host: other.example"])
        .arg("--cert")
        .arg(&kept.0)
        .arg("--key")
        .arg(&kept.1)
        .arg(format!("https://localhost:{port}/svc/a"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "421");
    let body = json!({
        "path": "/svc/a",
        "host": "other.example",
        "sni": "localhost",
        "certificate_pem": std::fs::read_to_string(&kept.0).unwrap(),
    });
    let (s, v) = node.call("POST", "/api/v1/tools/explain", Some(&body));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], 421, "{v}");
    assert_eq!(v["reason"], "misdirected_request", "{v}");
    expect_steps(&v, ["pass", "skip", "skip", "skip", "skip", "skip"]);
    // The same Host as the SNI (any case, with a port) passes; no SNI: no check.
    for (host, sni) in [
        ("LOCALHOST:8443", Some("localhost")),
        ("other.example", None),
    ] {
        let mut body = body.clone();
        body["host"] = json!(host);
        body["sni"] = json!(sni);
        let (s, v) = node.call("POST", "/api/v1/tools/explain", Some(&body));
        assert_eq!(
            (s, v["status"].clone()),
            (200, json!(200)),
            "{host} {sni:?}: {v}"
        );
    }
}
