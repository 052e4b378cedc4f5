//! Issue 14: forwarded identity headers over 16 KiB are reported by the admin API. A
//! client whose certificate makes the `x-forwarded-client-cert` header larger than that is served (the upstream decides), and `GET /api/v1/gateway` then
//! warns `forwarded_headers_too_large`, naming the count and the formats.

mod harness;

use harness::*;
use serde_json::json;

fn warning(node: &NodeProc) -> Option<String> {
    let (s, v) = node.call("GET", "/api/v1/gateway", None);
    assert_eq!(s, 200, "{v}");
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "forwarded_headers_too_large")
        .map(|w| w["message"].as_str().unwrap().to_string())
}

#[test]
fn a_chain_whose_forwarded_headers_pass_16_kib_raises_an_admin_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let pki = Pki::new(&tmp.path().join("pki"));
    let echo = Echo::start();
    let db = tmp.path().join("certgate.db");
    let cfg = write_config(&dir, &format!("sqlite://{}", db.display()), "");
    let node = NodeProc::start(&dir, &cfg);
    setup_mtls(&node, &pki, &echo.url);
    let (s, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"forward_formats": ["xfcc", "rfc9440"]})),
    );
    assert_eq!(s, 200, "{v}");

    // An ordinary certificate: no warning.
    assert_eq!(node.probe("/svc/a", Some(pki.cert("client1"))), 200);
    assert_eq!(warning(&node), None);

    // An 11 KiB certificate: XFCC carries it URL-encoded as PEM, past 16 KiB (the
    // RFC 9440 header, base64 DER, stays below: one header set counted).
    assert_eq!(node.probe("/svc/b", Some(pki.cert("big"))), 200);
    let message = warning(&node).expect("no forwarded_headers_too_large warning");
    assert!(
        message.starts_with("1 time(s) since this node started"),
        "{message}"
    );
    assert!(message.contains(r#"["xfcc","rfc9440"]"#), "{message}");
}
