//! SPEC §13 client inventory and dry runs against a real `certgate serve` node: clients
//! make real requests with curl and their certificates, then `GET /api/v1/clients`,
//! `?dry_run=true` writes and `certgate clients` / `--dry-run` (as processes) must answer
//! what those requests did, and a dry run must predict exactly what the real write does.

mod harness;

use std::path::{Path, PathBuf};

use harness::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};

/// `sha256:` + lowercase hex of a PEM certificate's DER, as openssl computes it.
fn fingerprint(pem: &Path) -> String {
    let out = certgate_testkit::command("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.trim().rsplit('=').next().unwrap().replace(':', "");
    format!("sha256:{}", hex.to_lowercase())
}

/// A leaf `CN=stranger,O=Acme` of a CA the gateway does not trust.
fn stranger(dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Stranger CA");
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "stranger");
    p.distinguished_name.push(DnType::OrganizationName, "Acme");
    let cert = p.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join("stranger.pem"), dir.join("stranger.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn clients(node: &NodeProc, query: &str) -> Vec<Value> {
    let (s, v) = node.call("GET", &format!("/api/v1/clients{query}"), None);
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn by_subject<'a>(list: &'a [Value], subject: &str) -> &'a Value {
    list.iter()
        .find(|c| c["subject"] == subject)
        .unwrap_or_else(|| panic!("{subject} not in {list:#?}"))
}

/// `(subject, api)` of a dry-run list, sorted.
fn entries(v: &Value, key: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_owned(),
                e["api"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn s(v: &str) -> (String, String) {
    let (a, b) = v.split_once('@').unwrap();
    (a.to_owned(), b.to_owned())
}

#[test]
fn the_inventory_records_what_real_requests_did_and_dry_runs_predict_real_writes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = write_config(dir.path(), "sqlite://data/certgate.db", "");
    let node = NodeProc::start(dir.path(), &cfg);
    let ca_id = setup_mtls(&node, &pki, &echo.url);
    let (st, v) = node.call(
        "POST",
        "/api/v1/apis",
        Some(&json!({"name": "files", "base_path": "/files", "upstream": echo.url})),
    );
    assert_eq!(st, 201, "{v}");
    let files_id = v["id"].as_i64().unwrap();
    let (st, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=client1,O=Acme"]})),
    );
    assert_eq!(st, 200, "{v}");
    assert!(clients(&node, "").is_empty(), "nobody has been seen yet");

    let one = pki.cert("client1");
    let two = pki.cert("client2");
    let other = stranger(&dir.path().join("pki"));
    assert_eq!(node.probe("/svc/a", Some(one.clone())), 200);
    assert_eq!(node.probe("/svc/b?x=1", Some(one.clone())), 200);
    assert_eq!(node.probe("/files/report", Some(one.clone())), 200);
    assert_eq!(node.probe("/svc/a", Some(two.clone())), 403);
    assert_eq!(
        node.probe("/svc/a", None),
        401,
        "no certificate: nothing to record"
    );
    assert_eq!(node.probe("/svc/a", Some(other.clone())), 403);

    let all = clients(&node, "");
    assert_eq!(all.len(), 3, "{all:#?}");
    // Newest last_seen first: the stranger asked last.
    assert_eq!(all[0]["subject"], "O=Acme,CN=stranger", "{all:#?}");
    let c1 = by_subject(&all, "O=Acme,CN=client1");
    assert_eq!(c1["issuer"], "CN=Cluster Test CA");
    assert_eq!(c1["fingerprint_sha256"], fingerprint(&one.0).as_str());
    assert_eq!(c1["requests"], 3);
    assert_eq!(c1["denied"], json!({}));
    assert_eq!(c1["apis"], json!(["files", "svc"]));
    for key in ["not_after", "first_seen", "last_seen"] {
        let t = c1[key].as_str().unwrap();
        assert!(
            t.len() == 20 && t.ends_with('Z'),
            "{key} is RFC 3339 UTC: {t}"
        );
    }
    assert!(c1["first_seen"].as_str() <= c1["last_seen"].as_str());
    let c2 = by_subject(&all, "O=Acme,CN=client2");
    assert_eq!(c2["requests"], 1);
    assert_eq!(c2["denied"], json!({"dn_mismatch": 1}));
    assert_eq!(c2["apis"], json!(["svc"]));
    let s3 = by_subject(&all, "O=Acme,CN=stranger");
    assert_eq!(s3["denied"], json!({"untrusted": 1}));
    assert_eq!(s3["issuer"], "CN=Stranger CA");

    // Filters.
    let files = clients(&node, "?api=files");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["subject"], "O=Acme,CN=client1");
    let mut denied: Vec<String> = clients(&node, "?denied=true")
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_owned())
        .collect();
    denied.sort();
    assert_eq!(denied, ["O=Acme,CN=client2", "O=Acme,CN=stranger"]);
    assert_eq!(clients(&node, "?denied=false").len(), 1);
    let (st, v) = node.call("GET", "/api/v1/clients?denied=maybe", None);
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_query");
    let unauth = certgate_testkit::command("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/api/v1/clients", node.admin))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&unauth.stdout), "401");

    // Dry runs: nothing changes (generation, real answers), the lists name who would move.
    let g = node.generation();
    let (st, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth?dry_run=true",
        Some(&json!({"trusted_dns": ["CN=client2,O=Acme"]})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        entries(&v, "would_lose_access"),
        [s("O=Acme,CN=client1@files"), s("O=Acme,CN=client1@svc")]
    );
    assert_eq!(
        entries(&v, "would_gain_access"),
        [s("O=Acme,CN=client2@svc")]
    );
    let lost = &v["would_lose_access"][0];
    assert_eq!(lost["fingerprint_sha256"], fingerprint(&one.0).as_str());
    assert_eq!(
        lost["requests"], 3,
        "entries are inventory records plus api"
    );
    assert_eq!(node.generation(), g, "a dry run bumps no generation");
    assert_eq!(node.probe("/svc/a", Some(one.clone())), 200);

    let (st, v) = node.call(
        "DELETE",
        &format!("/api/v1/gateway/trusted-certificates/{ca_id}?dry_run=true"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        entries(&v, "would_lose_access"),
        [s("O=Acme,CN=client1@files"), s("O=Acme,CN=client1@svc")]
    );
    assert_eq!(entries(&v, "would_gain_access"), []);

    let (st, v) = node.call(
        "PUT",
        &format!("/api/v1/apis/{files_id}/client-cert-auth?dry_run=true"),
        Some(&json!({"trusted_dns": ["CN=nobody"]})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        entries(&v, "would_lose_access"),
        [s("O=Acme,CN=client1@files")]
    );
    // A dry run refused like the real write.
    let (st, v) = node.call(
        "PUT",
        &format!("/api/v1/apis/{files_id}/client-cert-auth?dry_run=true"),
        Some(&json!({"trusted_dns": ["=nobody"]})),
    );
    assert_eq!(st, 422, "{v}");
    assert_eq!(node.generation(), g);

    // The CLI shows the same.
    let out = node.cli(&["clients"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SUBJECT"), "{text}");
    assert!(
        text.contains("O=Acme,CN=client2") && text.contains("dn_mismatch=1"),
        "{text}"
    );
    let out = node.cli(&["clients", "--denied", "--api", "svc", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[1]["subject"], "O=Acme,CN=client2");
    let out = node.cli(&["dn", "set", "CN=client2,O=Acme", "--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Dry run: nothing was changed."), "{text}");
    assert!(text.contains("Would lose access (2):"), "{text}");
    assert!(text.contains("Would gain access (1):"), "{text}");
    assert!(text.contains("svc  O=Acme,CN=client2"), "{text}");
    let out = node.cli(&["--json", "trust", "remove", &ca_id.to_string(), "--dry-run"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries(&v, "would_lose_access").len(), 2, "{v}");
    let out = node.cli(&[
        "api",
        "override",
        &files_id.to_string(),
        "--dn",
        "CN=nobody",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Would lose access (1):") && text.contains("files"),
        "{text}"
    );
    assert_eq!(node.generation(), g, "CLI dry runs change nothing");
    assert_eq!(node.probe("/svc/a", Some(two.clone())), 403);

    // The real write does what the dry run said.
    let (st, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=client2,O=Acme"]})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(node.probe("/svc/a", Some(one.clone())), 403);
    assert_eq!(node.probe("/files/x", Some(one.clone())), 403);
    assert_eq!(node.probe("/svc/a", Some(two.clone())), 200);

    // Clients refused in the handshake are recorded too.
    let (st, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"validation_failure": "handshake"})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        node.probe("/svc/a", Some(other)),
        0,
        "refused in the handshake"
    );
    let all = clients(&node, "");
    let s3 = by_subject(&all, "O=Acme,CN=stranger");
    assert_eq!(s3["requests"], 2, "{s3}");
    assert_eq!(s3["denied"], json!({"untrusted": 2}));
    assert_eq!(all[0]["subject"], "O=Acme,CN=stranger");
}
