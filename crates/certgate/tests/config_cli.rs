//! SPEC §15 declarative configuration against real `certgate serve` nodes: `certgate
//! export` (JSON and YAML) of one node applied with `certgate apply -f` to an empty node
//! reproduces it and is live for the very next real request; a second apply changes
//! nothing (not the generation); `--dry-run` and `PUT /api/v1/config?dry_run=true` answer
//! the change lists and who would lose access, and change nothing; a refused document
//! changes nothing and names the bad value's document path.

mod harness;

use std::path::Path;
use std::process::Output;

use harness::*;
use serde_json::{json, Value};

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn export(node: &NodeProc) -> Value {
    serde_json::from_str(&stdout(&node.cli(&["export"]))).unwrap()
}

/// `curl` with the token and any headers; answers (status, body text, content type).
fn curl(
    node: &NodeProc,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut cmd = certgate_testkit::command("curl");
    cmd.args([
        "-s",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code} %{content_type}",
        "-X",
        method,
    ])
    .arg("-H")
    .arg(format!("Authorization: Bearer {TOKEN}"));
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let out = cmd.arg(format!("{}{path}", node.admin)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (status, ctype) = tail.split_once(' ').unwrap_or((tail, ""));
    (status.parse().unwrap(), body.to_owned(), ctype.to_owned())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn export_and_apply_reproduce_a_node_live_and_dry_runs_predict_the_real_apply() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg_a = write_config(&dir.path().join("a"), "sqlite://data/certgate.db", "");
    let a = NodeProc::start(&dir.path().join("a"), &cfg_a);
    setup_mtls(&a, &pki, &echo.url);
    assert_eq!(a.probe("/svc/x", Some(pki.cert("client1"))), 200);
    let (s, v) = a.call(
        "PUT",
        "/api/v1/apis/1/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=client1,O=Acme", "CN=client2,O=Acme"]})),
    );
    assert_eq!(s, 200, "{v}");

    // JSON and YAML exports of node a.
    let doc = export(&a);
    assert_eq!(doc["certificates"][0]["name"], "ca");
    assert_eq!(
        doc["trusted_certificates"],
        json!([{"name": "ca", "version": 1}])
    );
    assert_eq!(doc["client_cert_auth"]["mode"], "mtls");
    assert_eq!(
        doc["apis"][0]["client_cert_auth"]["trusted_dns"][1],
        "CN=client2,O=Acme"
    );
    let yaml = stdout(&a.cli(&["export", "--yaml"]));
    assert!(
        yaml.contains("trusted_certificates:\n- name: ca\n  version: 1\n"),
        "{yaml}"
    );
    let (s, body, ctype) = curl(
        &a,
        "GET",
        "/api/v1/config",
        &["Accept: application/yaml"],
        None,
    );
    assert_eq!((s, ctype.as_str()), (200, "application/yaml"), "{body}");
    assert_eq!(body.trim_end(), yaml.trim_end());

    // The YAML applied to an empty node b makes it equal to a, live for the next request.
    let cfg_b = write_config(&dir.path().join("b"), "sqlite://data/certgate.db", "");
    let b = NodeProc::start(&dir.path().join("b"), &cfg_b);
    assert_eq!(
        b.probe("/svc/x", None),
        404,
        "b starts empty (mode none, no API)"
    );
    let file = write(dir.path(), "a.yaml", &yaml);
    let out = stdout(&b.cli(&["apply", "-f", &file]));
    assert!(out.starts_with("Changed ("), "{out}");
    for line in [
        "created      certificate:ca",
        "created      trusted_certificate:ca",
        "created      api:svc",
        "created      client_cert_auth:svc",
        "updated      client_cert_auth:gateway",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
    assert_eq!(b.probe("/svc/x", Some(pki.cert("client1"))), 200);
    assert_eq!(b.probe("/svc/x", Some(pki.cert("big"))), 403);
    assert_eq!(export(&b), doc);
    let (s, log) = b.call("GET", "/api/v1/audit?limit=20", None);
    assert_eq!(s, 200);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "config.apply"
                && r["target"] == "api:svc"
                && r["actor"] == "token"),
        "{log:#}"
    );

    // A second apply (of the JSON form this time) changes nothing, not the generation.
    let g = b.generation();
    let json_file = write(dir.path(), "a.json", &doc.to_string());
    let out = stdout(&b.cli(&["apply", "-f", &json_file]));
    assert_eq!(out, "No change: the store already equals the document.\n");
    assert_eq!(b.generation(), g);

    // A dry run that narrows the gateway's DN list: client1 would lose access to /other
    // (which inherits it), nothing changes; the real apply then does what it said.
    let (s, v) = b.call(
        "POST",
        "/api/v1/apis",
        Some(&json!({"name": "other", "base_path": "/other", "upstream": echo.url})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(b.probe("/other/x", Some(pki.cert("client1"))), 200);
    let mut tighter = export(&b);
    tighter["client_cert_auth"]["trusted_dns"] = json!(["CN=nobody"]);
    let tight_file = write(dir.path(), "tight.json", &tighter.to_string());
    let g = b.generation();
    let out = stdout(&b.cli(&["apply", "-f", &tight_file, "--dry-run"]));
    assert!(
        out.starts_with("Would change (1):\n  updated      client_cert_auth:gateway\nDry run: nothing was changed.\nWould lose access (1):\n"),
        "{out}"
    );
    assert!(out.contains("other"), "{out}");
    let (s, body, _) = curl(
        &b,
        "PUT",
        "/api/v1/config?dry_run=true",
        &["Content-Type: application/json"],
        Some(&tighter.to_string()),
    );
    assert_eq!(s, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["updated"], json!(["client_cert_auth:gateway"]));
    assert_eq!(answer["created"], json!([]));
    let lost = answer["would_lose_access"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{answer:#}");
    assert_eq!(lost[0]["api"], "other");
    assert_eq!(lost[0]["subject"], "O=Acme,CN=client1");
    assert_eq!(answer["would_gain_access"], json!([]));
    assert_eq!(b.generation(), g, "a dry run changes nothing");
    assert_eq!(b.probe("/other/x", Some(pki.cert("client1"))), 200);
    let out = stdout(&b.cli(&["apply", "-f", &tight_file]));
    assert_eq!(
        out,
        "Changed (1):\n  updated      client_cert_auth:gateway\n"
    );
    assert_eq!(b.generation(), g + 1);
    assert_eq!(b.probe("/other/x", Some(pki.cert("client1"))), 403);
    assert_eq!(
        b.probe("/svc/x", Some(pki.cert("client1"))),
        200,
        "svc has its own list"
    );
}

#[test]
fn refused_documents_change_nothing_and_name_the_document_path() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = write_config(dir.path(), "sqlite://data/certgate.db", "");
    let node = NodeProc::start(dir.path(), &cfg);
    setup_mtls(&node, &pki, &echo.url);
    let before = export(&node);
    let g = node.generation();

    // A bad value deep in the document: 422 with its path, over HTTP and the CLI.
    let mut bad = before.clone();
    bad["apis"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "new", "base_path": "/new", "upstream": echo.url}));
    bad["apis"][0]["base_path"] = json!("svc");
    let (s, body, _) = curl(
        &node,
        "PUT",
        "/api/v1/config",
        &["Content-Type: application/json"],
        Some(&bad.to_string()),
    );
    assert_eq!(s, 422, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "invalid_base_path");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("apis[0].base_path: "), "{message}");
    let file = write(dir.path(), "bad.json", &bad.to_string());
    let out = node.cli(&["apply", "-f", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apis[0].base_path: ") && stderr.contains("(invalid_base_path, HTTP 422)"),
        "{stderr}"
    );

    // A version left out of a component's list.
    let mut bad = before.clone();
    bad["certificates"][0]["versions"] = json!([]);
    let (s, body, _) = curl(&node, "PUT", "/api/v1/config", &[], Some(&bad.to_string()));
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("certificates[0].versions: "), "{body}");

    // Not YAML (by Content-Type) is 400; YAML of the wrong shape is 422; an unknown field too.
    let (s, body, _) = curl(
        &node,
        "PUT",
        "/api/v1/config",
        &["Content-Type: application/yaml"],
        Some("apis: [unclosed"),
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("\"malformed_body\""), "{body}");
    let (s, body, _) = curl(
        &node,
        "PUT",
        "/api/v1/config",
        &["Content-Type: application/yaml"],
        Some("apis: []\n"),
    );
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("\"invalid_body\""), "{body}");
    let mut bad = before.clone();
    bad["apis"][0]["mode"] = json!("none");
    let (s, body, _) = curl(&node, "PUT", "/api/v1/config", &[], Some(&bad.to_string()));
    assert_eq!(s, 422, "{body}");

    // Without the token: 401.
    let out = certgate_testkit::command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--data-binary",
        ])
        .arg(before.to_string())
        .arg(format!("{}/api/v1/config", node.admin))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    // Nothing changed, and the gateway still admits and refuses as before.
    assert_eq!(export(&node), before);
    assert_eq!(node.generation(), g);
    assert_eq!(node.probe("/svc/x", Some(pki.cert("client1"))), 200);
    assert_eq!(node.probe("/new/x", Some(pki.cert("client1"))), 404);
}
