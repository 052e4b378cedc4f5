//! The admin API end to end: a real router on 127.0.0.1:0 over a SQLite file or a PostgreSQL
//! database (every test runs on both: `sqlite::…`, `postgres::…`), driven
//! with reqwest. Every refused write is followed by a read showing nothing changed.

#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use std::fs;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn is_rfc3339_utc_seconds(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.ends_with('Z') && !s.contains('.') && OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

// ---------------------------------------------------------------- auth, errors, health

async fn token_is_required_on_every_api_path() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    for path in [
        "/api/v1/certificates",
        "/api/v1/gateway",
        "/api/v1/truststore",
        "/api/v1/nope",
    ] {
        let no_token = read(
            node.client
                .get(format!("{}{path}", node.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(&no_token, 401, "unauthorized", None);
        let wrong = read(
            node.client
                .get(format!("{}{path}", node.url))
                .bearer_auth("test-token-0123456789abcdeX")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(&wrong, 401, "unauthorized", None);
        let basic = read(
            node.client
                .get(format!("{}{path}", node.url))
                .header("authorization", format!("Basic {TOKEN}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(&basic, 401, "unauthorized", None);
    }
    // A write without a token changes nothing.
    let resp = node
        .client
        .post(format!("{}/api/v1/apis", node.url))
        .json(&json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer"
    );
    assert_eq!(node.get("/api/v1/apis").await, (StatusCode::OK, json!([])));
    // With the token, an unknown path is 404 in the error shape.
    assert_error(&node.get("/api/v1/nope").await, 404, "not_found", None);
    assert_error(
        &node.call(Method::PATCH, "/api/v1/apis", None).await,
        405,
        "method_not_allowed",
        None,
    );
    node.stop().await;
}

async fn health_endpoints_need_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let h = read(
        node.client
            .get(format!("{}/healthz", node.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(h, (StatusCode::OK, json!({"status": "ok"})));
    let r = read(
        node.client
            .get(format!("{}/readyz", node.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(r.1["truststore"], "ok");
    let m = node
        .client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    assert!(m.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = m.text().await.unwrap();
    assert!(
        text.contains("certgate_truststore_status{status=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("certgate_truststore_status{status=\"corrupted\"} 0"),
        "{text}"
    );
    assert!(text.contains("certgate_trusted_certificates 0"), "{text}");
    node.stop().await;
}

async fn malformed_and_invalid_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    // Not JSON: 400.
    assert_error(
        &node.raw(Method::POST, "/api/v1/apis", "{not json").await,
        400,
        "malformed_body",
        None,
    );
    assert_error(
        &node.raw(Method::POST, "/api/v1/apis", "").await,
        400,
        "malformed_body",
        None,
    );
    // Missing, wrongly typed, unknown field: 422.
    assert_error(
        &node
            .post("/api/v1/apis", json!({"name": "a", "base_path": "/a"}))
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .post(
                "/api/v1/apis",
                json!({"name": 5, "base_path": "/a", "upstream": "http://h"}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .post(
                "/api/v1/apis",
                json!({"name": "a", "base_path": "/a", "upstream": "http://h", "extra": 1}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node.post("/api/v1/apis", json!([1, 2])).await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"colour": "blue"}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"mode": "sometimes"}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"required": null}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    // Too large: 413 in the error shape.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(5 * 1024 * 1024));
    assert_error(
        &node.raw(Method::POST, "/api/v1/apis", &big).await,
        413,
        "payload_too_large",
        None,
    );
    // Nothing was written, and no reload ran.
    assert_eq!(node.get("/api/v1/apis").await.1, json!([]));
    assert_eq!(node.reload_count(), 0);
    node.stop().await;
}

// ---------------------------------------------------------------- certificates

async fn certificate_components_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let pem = ca("Root One", -1, 200);
    let (s, c) = node
        .post(
            "/api/v1/certificates",
            json!({"name": "root-one", "pem": pem}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(node.reload_count(), 1, "reload hook ran after the write");
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["name"], "root-one");
    assert_eq!(c["active"], true);
    assert_eq!(c["latest_version"], 1);
    let v = &c["versions"][0];
    assert_eq!(v["version"], 1);
    assert_eq!(v["subject"], "CN=Root One,O=certgate-test");
    assert_eq!(v["issuer"], "CN=Root One,O=certgate-test");
    assert_eq!(v["is_ca"], true);
    let serial = v["serial"].as_str().unwrap();
    assert!(
        !serial.is_empty()
            && serial
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let fp = v["fingerprint_sha256"].as_str().unwrap();
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
    for k in ["not_before", "not_after", "created_at"] {
        assert!(is_rfc3339_utc_seconds(&v[k]), "{k}: {}", v[k]);
    }
    assert!(v.get("pem").is_none(), "no pem in the create answer");

    // GET by id carries the PEM verbatim.
    let (s, one) = node.get(&format!("/api/v1/certificates/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["versions"][0]["pem"], pem);

    // New version.
    let pem2 = ca("Root One", -1, 400);
    let (s, v2) = node
        .post(
            &format!("/api/v1/certificates/{id}/versions"),
            json!({"pem": pem2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    let (_, one) = node.get(&format!("/api/v1/certificates/{id}")).await;
    assert_eq!(one["latest_version"], 2);
    assert_eq!(one["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        one["versions"][0]["pem"], pem,
        "older versions stay readable"
    );

    // Refusals change nothing.
    let before = node.get("/api/v1/certificates").await;
    let reloads = node.reload_count();
    assert_error(
        &node
            .post(
                "/api/v1/certificates",
                json!({"name": "root-one", "pem": ca("X", -1, 10)}),
            )
            .await,
        422,
        "duplicate_name",
        None,
    );
    assert_error(
        &node
            .post("/api/v1/certificates", json!({"name": "  ", "pem": pem}))
            .await,
        422,
        "invalid_name",
        None,
    );
    let key_pem =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    for bad in [
        "hello",
        key_pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        assert_error(
            &node
                .post("/api/v1/certificates", json!({"name": "bad", "pem": bad}))
                .await,
            422,
            "invalid_certificate",
            None,
        );
        assert_error(
            &node
                .post(
                    &format!("/api/v1/certificates/{id}/versions"),
                    json!({"pem": bad}),
                )
                .await,
            422,
            "invalid_certificate",
            None,
        );
    }
    let two = format!("{pem}{pem2}");
    assert_error(
        &node
            .post("/api/v1/certificates", json!({"name": "chain", "pem": two}))
            .await,
        422,
        "invalid_certificate",
        None,
    );
    assert_eq!(node.get("/api/v1/certificates").await, before);
    assert_eq!(node.reload_count(), reloads);

    // Unknown ids.
    assert_error(
        &node.get("/api/v1/certificates/999").await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &node.get("/api/v1/certificates/abc").await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &node
            .post("/api/v1/certificates/999/versions", json!({"pem": pem}))
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &node.delete("/api/v1/certificates/999").await,
        404,
        "not_found",
        None,
    );

    // Delete deactivates.
    assert_eq!(
        node.delete(&format!("/api/v1/certificates/{id}")).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (_, one) = node.get(&format!("/api/v1/certificates/{id}")).await;
    assert_eq!(one["active"], false);
    node.stop().await;
}

async fn lookup_lists_only_active_unexpired_components() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let good = node.upload("good", &ca("Good", -1, 200)).await;
    let expired = node.upload("expired", &ca("Expired", -30, -1)).await;
    let gone = node.upload("gone", &ca("Gone", -1, 200)).await;
    // A component whose latest version expired is not offered, even if an older one is valid.
    let renewed_badly = node.upload("renewed-badly", &ca("RB", -1, 200)).await;
    node.post(
        &format!("/api/v1/certificates/{renewed_badly}/versions"),
        json!({"pem": ca("RB", -30, -2)}),
    )
    .await;
    node.delete(&format!("/api/v1/certificates/{gone}")).await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let (_, all) = node.get("/api/v1/certificates").await;
    assert_eq!(ids(&all), [good, expired, gone, renewed_badly]);
    let (_, lookup) = node.get("/api/v1/certificates?lookup=true").await;
    assert_eq!(ids(&lookup), [good]);
    let (_, no_lookup) = node.get("/api/v1/certificates?lookup=false").await;
    assert_eq!(ids(&no_lookup).len(), 4);
    assert_error(
        &node.get("/api/v1/certificates?lookup=maybe").await,
        422,
        "invalid_query",
        None,
    );
    node.stop().await;
}

// ---------------------------------------------------------------- trust table

async fn trusted_certificates_need_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), false, true).await;
    let id = node.upload("root", &ca("Root", -1, 200)).await;
    let got = node
        .post(
            "/api/v1/gateway/trusted-certificates",
            json!({"certificate_id": id}),
        )
        .await;
    assert_error(
        &got,
        409,
        "ssl_disabled",
        Some("Certificates can be added only when SSL is enabled."),
    );
    assert_eq!(
        node.get("/api/v1/gateway/trusted-certificates").await.1,
        json!([])
    );
    // mtls mode needs SSL too.
    assert_error(
        &node
            .put("/api/v1/gateway/client-cert-auth", json!({"mode": "mtls"}))
            .await,
        409,
        "ssl_disabled",
        None,
    );
    let (_, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(gw["ssl_enabled"], false);
    assert_eq!(gw["client_cert_auth"]["mode"], "none");
    node.stop().await;
}

async fn trust_table_rows_statuses_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let long = node.upload("long", &ca("Long", -1, 200)).await;
    let soon = node.upload("soon", &ca("Soon", -1, 30)).await;
    let expired = node.upload("expired", &ca("Expired", -30, -1)).await;
    let inactive = node.upload("inactive", &ca("Inactive", -1, 200)).await;
    node.delete(&format!("/api/v1/certificates/{inactive}"))
        .await;

    let row = node.trust(long).await;
    assert_eq!(row["certificate_id"], long);
    assert_eq!(row["name"], "long");
    assert_eq!(row["version"], 1);
    assert_eq!(row["latest_version"], 1);
    assert_eq!(row["update_available"], false);
    assert_eq!(row["subject"], "CN=Long,O=certgate-test");
    assert!(row["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(is_rfc3339_utc_seconds(&row["issued_on"]));
    assert!(is_rfc3339_utc_seconds(&row["expires_on"]));
    let days = row["days_to_expiry"].as_i64().unwrap();
    assert!((199..=200).contains(&days), "{days}");
    assert_eq!(row["expiry_status"], "ok");
    let row = node.trust(soon).await;
    assert_eq!(row["expiry_status"], "expiring_soon");
    assert!((29..=30).contains(&row["days_to_expiry"].as_i64().unwrap()));

    let table_before = node.get("/api/v1/gateway/trusted-certificates").await;
    assert_eq!(table_before.1.as_array().unwrap().len(), 2);
    let reloads = node.reload_count();
    let post = |body: Value| node.post("/api/v1/gateway/trusted-certificates", body);
    assert_error(
        &post(json!({"certificate_id": expired})).await,
        422,
        "certificate_expired",
        None,
    );
    assert_error(
        &post(json!({"certificate_id": inactive})).await,
        422,
        "certificate_inactive",
        None,
    );
    assert_error(
        &post(json!({"certificate_id": long})).await,
        422,
        "already_trusted",
        None,
    );
    assert_error(
        &post(json!({"certificate_id": 999})).await,
        404,
        "not_found",
        None,
    );
    let fresh = node.upload("fresh", &ca("Fresh", -1, 200)).await;
    let reloads = reloads + 1;
    assert_error(
        &post(json!({"certificate_id": fresh, "version": 7})).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &post(json!({"certificate_id": "x"})).await,
        422,
        "invalid_body",
        None,
    );
    assert_error(&post(json!({})).await, 422, "invalid_body", None);
    assert_eq!(
        node.get("/api/v1/gateway/trusted-certificates").await,
        table_before
    );
    assert_eq!(node.reload_count(), reloads);

    // Pinned version, update available, upgrade.
    node.post(
        &format!("/api/v1/certificates/{fresh}/versions"),
        json!({"pem": ca("Fresh", -1, 300)}),
    )
    .await;
    let (s, row) = post(json!({"certificate_id": fresh, "version": 1})).await;
    assert_eq!(s, StatusCode::CREATED, "{row}");
    assert_eq!(
        (row["version"].as_i64(), row["latest_version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(row["update_available"], true);
    let (_, gw) = node.get("/api/v1/gateway").await;
    let codes: Vec<&str> = gw["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"trusted_certificate_update_available"),
        "{codes:?}"
    );
    assert!(codes.contains(&"trusted_certificate_expiring"), "{codes:?}");
    let (s, row) = node
        .post(
            &format!("/api/v1/gateway/trusted-certificates/{fresh}/upgrade"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(
        (row["version"].as_i64(), row["update_available"].as_bool()),
        (Some(2), Some(false))
    );
    assert_error(
        &node
            .post(
                "/api/v1/gateway/trusted-certificates/999/upgrade",
                json!({}),
            )
            .await,
        404,
        "not_found",
        None,
    );

    // A component in the trust table cannot be deleted.
    assert_error(
        &node.delete(&format!("/api/v1/certificates/{long}")).await,
        409,
        "certificate_in_use",
        None,
    );
    assert_eq!(
        node.get(&format!("/api/v1/certificates/{long}")).await.1["active"],
        true
    );

    // Removal.
    assert_eq!(
        node.delete(&format!("/api/v1/gateway/trusted-certificates/{long}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &node
            .delete(&format!("/api/v1/gateway/trusted-certificates/{long}"))
            .await,
        404,
        "not_found",
        None,
    );
    let (_, table) = node.get("/api/v1/gateway/trusted-certificates").await;
    let ids: Vec<i64> = table
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["certificate_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [soon, fresh]);
    // The trust store followed.
    let (_, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(
        (ts["status"].as_str(), ts["entries"].as_i64()),
        (Some("ok"), Some(2))
    );
    node.stop().await;
}

async fn an_expired_entry_stays_in_the_table_flagged_expired() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let id = node.upload("was-valid", &ca("Was Valid", -60, -1)).await;
    // Trusted back when it was valid (the store takes `now` as an argument).
    node.store
        .add_trusted(id, None, OffsetDateTime::now_utc() - Duration::days(10))
        .await
        .unwrap();
    let (_, table) = node.get("/api/v1/gateway/trusted-certificates").await;
    assert_eq!(table[0]["expiry_status"], "expired");
    assert!(table[0]["days_to_expiry"].as_i64().unwrap() < 0);
    let (_, gw) = node.get("/api/v1/gateway").await;
    let w: Vec<&Value> = gw["warnings"].as_array().unwrap().iter().collect();
    assert!(
        w.iter().any(|w| w["code"] == "trusted_certificate_expired"),
        "{gw}"
    );
    let (_, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(ts["entries"], 1, "expired entries count");
    // Upgrading to an expired latest version is refused.
    let v2 = node
        .post(
            &format!("/api/v1/certificates/{id}/versions"),
            json!({"pem": ca("Was Valid", -60, -2)}),
        )
        .await;
    assert_eq!(v2.0, StatusCode::CREATED);
    assert_error(
        &node
            .post(
                &format!("/api/v1/gateway/trusted-certificates/{id}/upgrade"),
                json!({}),
            )
            .await,
        422,
        "certificate_expired",
        None,
    );
    assert_eq!(
        node.get("/api/v1/gateway/trusted-certificates").await.1[0]["version"],
        1
    );
    node.stop().await;
}

async fn trust_table_holds_at_most_1000_entries() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    // One certificate reused under 1001 components keeps the test fast; the rule counts entries.
    let pem = ca("Many", -1, 200);
    let now = OffsetDateTime::now_utc();
    for i in 0..1000 {
        let c = node
            .store
            .create_component(&format!("c{i}"), &pem, now)
            .await
            .unwrap();
        node.store.add_trusted(c.id, None, now).await.unwrap();
    }
    let last = node.upload("c1000", &pem).await;
    let got = node
        .post(
            "/api/v1/gateway/trusted-certificates",
            json!({"certificate_id": last}),
        )
        .await;
    assert_error(&got, 422, "limit_exceeded", None);
    let (_, table) = node.get("/api/v1/gateway/trusted-certificates").await;
    assert_eq!(table.as_array().unwrap().len(), 1000);
    let (_, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(ts["entries"], 1000);
    node.stop().await;
}

async fn send_ca_names_refused_when_names_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    // Each subject is about 40 KB: one fits in 65535 bytes, two do not.
    let big1 = node
        .upload("big1", &ca_with_org("Big1", &"a".repeat(40_000), -1, 200))
        .await;
    let big2 = node
        .upload("big2", &ca_with_org("Big2", &"b".repeat(40_000), -1, 200))
        .await;
    node.trust(big1).await;
    let (s, v) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"send_ca_names": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["send_ca_names"], true);
    assert_error(
        &node
            .post(
                "/api/v1/gateway/trusted-certificates",
                json!({"certificate_id": big2}),
            )
            .await,
        422,
        "ca_names_too_large",
        None,
    );
    assert_eq!(
        node.get("/api/v1/gateway/trusted-certificates")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // With send_ca_names off it can be added; turning it on is then refused.
    node.put(
        "/api/v1/gateway/client-cert-auth",
        json!({"send_ca_names": false}),
    )
    .await;
    node.trust(big2).await;
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"send_ca_names": true}),
            )
            .await,
        422,
        "ca_names_too_large",
        None,
    );
    assert_eq!(
        node.get("/api/v1/gateway").await.1["client_cert_auth"]["send_ca_names"],
        false
    );
    node.stop().await;
}

// ---------------------------------------------------------------- gateway settings

async fn gateway_settings_updates_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let (s, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(gw["ssl_enabled"], true);
    // SPEC §8: the store's generation, an integer that follows every write.
    let generation = node.store.generation().await.unwrap();
    assert_eq!(gw["generation"], json!(generation));
    assert_eq!(
        gw["client_cert_auth"],
        json!({
            "mode": "none", "required": false, "header_name": null, "header_format": "auto",
            "trusted_proxies": [], "trusted_dns": [], "validation_failure": "handshake",
            "crls": [], "forward_identity": true, "send_ca_names": false,
            "forward_formats": ["x_client_cert"], "sni_host_check": true,
            "revocation_failure": "strict", "revocation": "crl",
            "revocation_fetch_hosts": [], "revocation_fetch_timeout_ms": 3000
        })
    );
    assert_eq!(gw["trusted_certificates"], json!([]));
    assert_eq!(gw["truststore"]["status"], "ok");
    assert_eq!(gw["warnings"], json!([]));

    // mtls with an empty trust table: allowed, with a warning.
    let (s, v) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"mode": "mtls", "required": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["mode"].as_str(), v["required"].as_bool()),
        (Some("mtls"), Some(true))
    );
    assert_eq!(v["forward_identity"], true, "absent keeps");
    let (_, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(
        gw["warnings"][0]["code"],
        "mtls_without_trusted_certificates"
    );
    assert_eq!(gw["generation"], json!(generation + 1));

    // header mode needs header_name; nothing changes when refused.
    let settings = node.get("/api/v1/gateway").await.1["client_cert_auth"].clone();
    let reloads = node.reload_count();
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"mode": "header"}),
            )
            .await,
        422,
        "header_name_required",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"mode": "header", "header_name": "bad name"}),
            )
            .await,
        422,
        "invalid_header_name",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"trusted_proxies": ["10.0.0.0/8", "nope"]}),
            )
            .await,
        422,
        "invalid_cidr",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"trusted_dns": ["CN=a,,O=b"]}),
            )
            .await,
        422,
        "invalid_dn_pattern",
        Some("invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"),
    );
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"crls": ["not a crl"]}),
            )
            .await,
        422,
        "invalid_crl",
        None,
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("CN=user{i},O=Example")).collect();
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"trusted_dns": too_many}),
            )
            .await,
        422,
        "limit_exceeded",
        None,
    );
    // SPEC §16 revocation fetching: a host that is neither a name, an address nor a CIDR,
    // and a timeout outside 1..=60000 ms.
    for (body, code) in [
        (
            json!({"revocation_fetch_hosts": ["ok.example", "bad host!"]}),
            "invalid_fetch_host",
        ),
        (
            json!({"revocation_fetch_timeout_ms": 0}),
            "invalid_fetch_timeout",
        ),
        (
            json!({"revocation_fetch_timeout_ms": 60001}),
            "invalid_fetch_timeout",
        ),
        (json!({"revocation": "sometimes"}), "invalid_body"),
    ] {
        assert_error(
            &node.put("/api/v1/gateway/client-cert-auth", body).await,
            422,
            code,
            None,
        );
    }
    assert_eq!(
        node.get("/api/v1/gateway").await.1["client_cert_auth"],
        settings
    );
    assert_eq!(node.reload_count(), reloads);

    // Header mode, fully configured.
    let thousand: Vec<String> = (0..1000).map(|i| format!("CN=user{i},OU=*,**")).collect();
    let crl = crl_pem();
    let (s, v) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({
                "mode": "header", "header_name": "X-SSL-Client-Cert", "header_format": "url_encoded_pem",
                "trusted_proxies": ["10.0.0.0/8", "192.168.1.7", "::1"], "trusted_dns": thousand,
                "validation_failure": "http", "crls": [crl], "forward_identity": false
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(node.reload_count(), reloads + 1);
    assert_eq!(v["header_name"], "X-SSL-Client-Cert");
    assert_eq!(v["header_format"], "url_encoded_pem");
    assert_eq!(
        v["trusted_proxies"],
        json!(["10.0.0.0/8", "192.168.1.7/32", "::1/128"])
    );
    assert_eq!(v["trusted_dns"].as_array().unwrap().len(), 1000);
    assert_eq!(v["trusted_dns"][999], "CN=user999,OU=*,**", "order kept");
    assert_eq!(v["crls"][0], crl);
    let (_, gw) = node.get("/api/v1/gateway").await;
    assert_eq!(gw["client_cert_auth"], v);
    let codes: Vec<&str> = gw["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["header_mode_without_trust_table"]);
    for w in gw["warnings"].as_array().unwrap() {
        assert!(!w["message"].as_str().unwrap().is_empty());
    }
    let (_, v) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"trusted_proxies": []}),
        )
        .await;
    assert_eq!(v["trusted_proxies"], json!([]));
    let (_, gw) = node.get("/api/v1/gateway").await;
    let codes: Vec<&str> = gw["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "header_source_unrestricted",
            "header_mode_without_trust_table"
        ]
    );

    // header_name: null clears it (refused while in header mode), absent keeps it.
    assert_error(
        &node
            .put(
                "/api/v1/gateway/client-cert-auth",
                json!({"header_name": null}),
            )
            .await,
        422,
        "header_name_required",
        None,
    );
    let (s, v) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"mode": "none", "header_name": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["header_name"], Value::Null);
    assert_eq!(
        v["trusted_dns"].as_array().unwrap().len(),
        1000,
        "kept for later"
    );
    // An empty body changes nothing.
    let (s, same) = node
        .put("/api/v1/gateway/client-cert-auth", json!({}))
        .await;
    assert_eq!((s, &same), (StatusCode::OK, &v));
    node.stop().await;
}

// ---------------------------------------------------------------- APIs

async fn apis_crud_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let (s, orders) = node
        .post(
            "/api/v1/apis",
            json!({"name": "orders", "base_path": "/orders", "upstream": "http://127.0.0.1:8081"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{orders}");
    let id = orders["id"].as_i64().unwrap();
    assert_eq!(
        orders,
        json!({"id": id, "name": "orders", "base_path": "/orders", "upstream": "http://127.0.0.1:8081", "override": null})
    );
    // Nested and root base paths are allowed.
    for (name, bp) in [("orders-v1", "/orders/v1"), ("root", "/")] {
        let (s, v) = node
            .post(
                "/api/v1/apis",
                json!({"name": name, "base_path": bp, "upstream": "https://api.example.com/x"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let before = node.get("/api/v1/apis").await;
    assert_eq!(before.1.as_array().unwrap().len(), 3);
    let reloads = node.reload_count();
    let create = |name: &str, bp: &str, up: &str| {
        node.post(
            "/api/v1/apis",
            json!({"name": name, "base_path": bp, "upstream": up}),
        )
    };
    for bp in ["", "orders", "/orders/", "/a//b", "/a?x", "/a#x"] {
        assert_error(
            &create("x", bp, "http://h").await,
            422,
            "invalid_base_path",
            None,
        );
    }
    assert_error(
        &create("x", "/orders", "http://h").await,
        422,
        "duplicate_base_path",
        None,
    );
    assert_error(
        &create("orders", "/other", "http://h").await,
        422,
        "duplicate_name",
        None,
    );
    assert_error(
        &create("", "/other", "http://h").await,
        422,
        "invalid_name",
        None,
    );
    for up in ["ftp://h", "h:80", "/path", "http://", "http://h/?q"] {
        assert_error(&create("x", "/x", up).await, 422, "invalid_upstream", None);
    }
    assert_eq!(node.get("/api/v1/apis").await, before);
    assert_eq!(node.reload_count(), reloads);

    // GET one, PUT, DELETE.
    assert_eq!(
        node.get(&format!("/api/v1/apis/{id}")).await,
        (StatusCode::OK, orders.clone())
    );
    let (s, updated) = node
        .put(
            &format!("/api/v1/apis/{id}"),
            json!({"name": "orders2", "base_path": "/orders2", "upstream": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["base_path"], "/orders2");
    // Keeping its own base path is no duplicate; taking another's is.
    let (s, _) = node
        .put(
            &format!("/api/v1/apis/{id}"),
            json!({"name": "orders2", "base_path": "/orders2", "upstream": "http://127.0.0.1:10"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_error(
        &node
            .put(
                &format!("/api/v1/apis/{id}"),
                json!({"name": "orders2", "base_path": "/", "upstream": "http://h"}),
            )
            .await,
        422,
        "duplicate_base_path",
        None,
    );
    assert_error(
        &node
            .put(
                "/api/v1/apis/999",
                json!({"name": "n", "base_path": "/n", "upstream": "http://h"}),
            )
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(&node.get("/api/v1/apis/999").await, 404, "not_found", None);
    assert_eq!(
        node.delete(&format!("/api/v1/apis/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &node.delete(&format!("/api/v1/apis/{id}")).await,
        404,
        "not_found",
        None,
    );
    assert_eq!(
        node.get("/api/v1/apis").await.1.as_array().unwrap().len(),
        2
    );
    node.stop().await;
}

async fn api_overrides_and_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    node.put(
        "/api/v1/gateway/client-cert-auth",
        json!({"mode": "mtls", "required": false, "trusted_dns": ["O=Example,**"]}),
    )
    .await;
    let (_, api) = node
        .post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:1"}),
        )
        .await;
    let path = format!("/api/v1/apis/{}/client-cert-auth", api["id"]);
    assert_eq!(
        node.get(&path).await.1,
        json!({"override": null, "effective": {"mode": "mtls", "required": false, "trusted_dns": ["O=Example,**"]}})
    );
    // A mode field is refused with its own message.
    let got = node
        .put(&path, json!({"mode": "none", "required": true}))
        .await;
    assert_error(&got, 422, "mode_not_overridable", None);
    assert!(got.1["error"]["message"].as_str().unwrap().contains("mode"));
    assert_error(
        &node.put(&path, json!({"required": true, "other": 1})).await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node.put(&path, json!({"trusted_dns": ["FOO=bar"]})).await,
        422,
        "invalid_dn_pattern",
        None,
    );
    assert_error(
        &node.raw(Method::PUT, &path, "nope").await,
        400,
        "malformed_body",
        None,
    );
    assert_eq!(node.get(&path).await.1["override"], Value::Null);

    let (s, ov) = node.put(&path, json!({"required": true})).await;
    assert_eq!(s, StatusCode::OK, "{ov}");
    assert_eq!(ov, json!({"required": true, "trusted_dns": null}));
    assert_eq!(
        node.get(&path).await.1,
        json!({"override": {"required": true, "trusted_dns": null},
               "effective": {"mode": "mtls", "required": true, "trusted_dns": ["O=Example,**"]}})
    );
    // [] = no DN restriction for this API; the list replaces, not merges.
    node.put(&path, json!({"trusted_dns": []})).await;
    assert_eq!(
        node.get(&path).await.1,
        json!({"override": {"required": null, "trusted_dns": []},
               "effective": {"mode": "mtls", "required": false, "trusted_dns": []}})
    );
    node.put(
        &path,
        json!({"trusted_dns": ["CN=svc,**"], "required": true}),
    )
    .await;
    assert_eq!(
        node.get(&path).await.1["effective"]["trusted_dns"],
        json!(["CN=svc,**"])
    );
    // The API object shows the override too.
    assert_eq!(
        node.get(&format!("/api/v1/apis/{}", api["id"])).await.1["override"],
        json!({"required": true, "trusted_dns": ["CN=svc,**"]})
    );
    // Too many patterns.
    let too_many: Vec<String> = (0..1001).map(|i| format!("CN=u{i}")).collect();
    assert_error(
        &node.put(&path, json!({"trusted_dns": too_many})).await,
        422,
        "limit_exceeded",
        None,
    );
    // Back to inheriting.
    assert_eq!(node.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(node.get(&path).await.1["override"], Value::Null);
    assert_error(
        &node.get("/api/v1/apis/999/client-cert-auth").await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &node
            .put("/api/v1/apis/999/client-cert-auth", json!({}))
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &node.delete("/api/v1/apis/999/client-cert-auth").await,
        404,
        "not_found",
        None,
    );
    // The data plane's view (GatewayConfig) carries the same.
    let cfg = node.store.load_config().await.unwrap();
    assert_eq!(cfg.apis.len(), 1);
    assert!(cfg.apis[0].override_.is_none());
    node.stop().await;
}

// ---------------------------------------------------------------- tools

async fn dn_match_tool() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let dn = "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com";
    let (s, v) = node
        .post(
            "/api/v1/tools/dn-match",
            json!({"patterns": ["**,O=Other,**", "CN=localhost,**"], "dn": dn}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"dn": dn, "matched": true, "pattern": "CN=localhost,**"})
    );
    let (_, v) = node
        .post(
            "/api/v1/tools/dn-match",
            json!({"patterns": ["CN=*"], "dn": dn}),
        )
        .await;
    assert_eq!(v, json!({"dn": dn, "matched": false, "pattern": null}));
    let pem = ca("Tool Test", -1, 10);
    let (_, v) = node
        .post(
            "/api/v1/tools/dn-match",
            json!({"patterns": ["CN=Tool*,O=certgate-test"], "certificate_pem": pem}),
        )
        .await;
    assert_eq!(
        v,
        json!({"dn": "CN=Tool Test,O=certgate-test", "matched": true, "pattern": "CN=Tool*,O=certgate-test"})
    );
    assert_error(
        &node
            .post(
                "/api/v1/tools/dn-match",
                json!({"patterns": ["CN=a,,O=b"], "dn": dn}),
            )
            .await,
        422,
        "invalid_dn_pattern",
        Some("invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"),
    );
    assert_error(
        &node
            .post(
                "/api/v1/tools/dn-match",
                json!({"patterns": [], "dn": "not a dn"}),
            )
            .await,
        422,
        "invalid_dn",
        None,
    );
    assert_error(
        &node
            .post(
                "/api/v1/tools/dn-match",
                json!({"patterns": [], "dn": dn, "certificate_pem": pem}),
            )
            .await,
        422,
        "invalid_body",
        None,
    );
    assert_error(
        &node
            .post(
                "/api/v1/tools/dn-match",
                json!({"patterns": [], "certificate_pem": "junk"}),
            )
            .await,
        422,
        "invalid_certificate",
        None,
    );
    node.stop().await;
}

// ---------------------------------------------------------------- trust store through the API

async fn truststore_faults_show_on_readyz_api_and_metrics_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, false).await;
    let id = node.upload("root", &ca("Root", -1, 200)).await;
    node.trust(id).await;
    let (s, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (ts["status"].as_str(), ts["entries"].as_i64()),
        (Some("ok"), Some(1))
    );
    assert_eq!(ts["sha256"].as_str().unwrap().len(), 64);
    assert!(is_rfc3339_utc_seconds(&ts["built_at"]));
    let bundle = dir.path().join("truststore/truststore.pem");

    type Damage<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let damages: [Damage; 4] = [
        ("missing", Box::new(|| fs::remove_file(&bundle).unwrap())),
        (
            "corrupted",
            Box::new(|| {
                let mut b = fs::read(&bundle).unwrap();
                b[40] ^= 0x20;
                fs::write(&bundle, b).unwrap();
            }),
        ),
        (
            "corrupted",
            Box::new(|| {
                let b = fs::read(&bundle).unwrap();
                fs::write(&bundle, &b[..b.len() - 10]).unwrap();
            }),
        ),
        (
            "io_error",
            Box::new(|| {
                fs::remove_file(&bundle).unwrap();
                fs::create_dir(&bundle).unwrap();
            }),
        ),
    ];
    for (status, damage) in damages {
        damage();
        let reloads = node.reload_count();
        let r = read(
            node.client
                .get(format!("{}/readyz", node.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.0, StatusCode::SERVICE_UNAVAILABLE, "{status}: {}", r.1);
        assert_eq!(r.1["truststore"], status);
        assert!(r.1["reason"].as_str().unwrap().contains(status), "{}", r.1);
        assert_eq!(
            node.reload_count(),
            reloads + 1,
            "the data plane is told at once"
        );
        let (_, ts) = node.get("/api/v1/truststore").await;
        assert_eq!(
            ts,
            json!({"status": status, "entries": 0, "sha256": null, "built_at": null})
        );
        assert_eq!(
            node.get("/api/v1/gateway").await.1["truststore"]["status"],
            status
        );
        let text = node
            .client
            .get(format!("{}/metrics", node.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(&format!(
                "certgate_truststore_status{{status=\"{status}\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains("certgate_truststore_status{status=\"ok\"} 0"),
            "{text}"
        );
        // auto_recover is off: it stays failed.
        assert_eq!(node.get("/api/v1/truststore").await.1["status"], status);

        if bundle.is_dir() {
            fs::remove_dir(&bundle).unwrap();
        }
        let (s, ts) = node.post("/api/v1/truststore/recover", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{ts}");
        assert_eq!(
            (ts["status"].as_str(), ts["entries"].as_i64()),
            (Some("ok"), Some(1))
        );
        let r = read(
            node.client
                .get(format!("{}/readyz", node.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    }
    node.stop().await;
}

async fn truststore_auto_recovers_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let id = node.upload("root", &ca("Root", -1, 200)).await;
    node.trust(id).await;
    let bundle = dir.path().join("truststore/truststore.pem");
    fs::write(&bundle, b"garbage").unwrap();
    let r = read(
        node.client
            .get(format!("{}/readyz", node.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let (_, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(
        (ts["status"].as_str(), ts["entries"].as_i64()),
        (Some("ok"), Some(1))
    );
    assert!(fs::read_to_string(&bundle)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    node.stop().await;
}

// ---------------------------------------------------------------- metrics

async fn metrics_show_generation_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let a = node.upload("alpha \"one\"", &ca("Alpha", -1, 30)).await;
    let b = node.upload("beta", &ca("Beta", -1, 200)).await;
    node.trust(a).await;
    node.trust(b).await;
    let text = node
        .client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let generation = node.store.generation().await.unwrap();
    assert!(
        text.contains(&format!("certgate_config_generation {generation}\n")),
        "{text}"
    );
    assert!(text.contains("certgate_trusted_certificates 2\n"), "{text}");
    let value = |prefix: &str| -> i64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing in {text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let alpha = value(&format!(
        "certgate_trusted_certificate_expiry_seconds{{certificate_id=\"{a}\",name=\"alpha \\\"one\\\"\"}}"
    ));
    let beta = value(&format!(
        "certgate_trusted_certificate_expiry_seconds{{certificate_id=\"{b}\",name=\"beta\"}}"
    ));
    assert!((29 * 86400..=30 * 86400).contains(&alpha), "{alpha}");
    assert!(beta > 199 * 86400, "{beta}");
    assert_eq!(
        value("certgate_truststore_earliest_expiry_seconds "),
        alpha.min(value("certgate_truststore_earliest_expiry_seconds "))
    );
    let earliest = value("certgate_truststore_earliest_expiry_seconds ");
    assert!(
        (alpha - 5..=alpha).contains(&earliest),
        "{earliest} vs {alpha}"
    );
    // A removed entry leaves no series behind.
    node.delete(&format!("/api/v1/gateway/trusted-certificates/{a}"))
        .await;
    let text = node
        .client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("alpha"), "{text}");
    node.stop().await;
}

async fn metrics_append_the_prometheus_handle() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("certgate_test_requests_total", "api" => "orders").increment(3);
    });
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with_metrics(dir.path(), true, true, Some(handle)).await;
    let text = node
        .client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("certgate_config_generation "), "{text}");
    assert!(
        text.contains("certgate_test_requests_total{api=\"orders\"} 3"),
        "{text}"
    );
    node.stop().await;
}

// ---------------------------------------------------------------- restart

async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, false).await;
    let id = node.upload("root", &ca("Root", -1, 200)).await;
    node.post(
        &format!("/api/v1/certificates/{id}/versions"),
        json!({"pem": ca("Root", -1, 300)}),
    )
    .await;
    let other = node.upload("other", &ca("Other", -1, 200)).await;
    node.post(
        "/api/v1/gateway/trusted-certificates",
        json!({"certificate_id": id, "version": 1}),
    )
    .await;
    node.trust(other).await;
    node.put(
        "/api/v1/gateway/client-cert-auth",
        json!({"mode": "header", "header_name": "X-Client-Cert", "trusted_proxies": ["10.1.0.0/16"],
               "trusted_dns": ["CN=b", "CN=a", "CN=c"], "crls": [crl_pem()]}),
    )
    .await;
    let (_, api) = node
        .post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/a/b", "upstream": "https://up.example:8443/base"}),
        )
        .await;
    node.put(
        &format!("/api/v1/apis/{}/client-cert-auth", api["id"]),
        json!({"trusted_dns": []}),
    )
    .await;

    let paths = [
        "/api/v1/certificates".to_string(),
        format!("/api/v1/certificates/{id}"),
        "/api/v1/gateway".to_string(),
        "/api/v1/gateway/trusted-certificates".to_string(),
        "/api/v1/apis".to_string(),
        format!("/api/v1/apis/{}/client-cert-auth", api["id"]),
        "/api/v1/truststore".to_string(),
    ];
    let mut before = Vec::new();
    for p in &paths {
        before.push(node.get(p).await);
    }
    let config_before = node.store.load_config().await.unwrap();
    node.stop().await;

    let node = Node::start(dir.path(), true, false).await;
    for (p, b) in paths.iter().zip(&before) {
        assert_eq!(&node.get(p).await, b, "{p}");
    }
    let config_after = node.store.load_config().await.unwrap();
    assert_eq!(config_after, config_before);
    assert_eq!(node.reload_count(), 0);
    node.stop().await;
}

// Every test above runs on SQLite (`sqlite::…`) and on PostgreSQL (`postgres::…`).
both_backends!(
    token_is_required_on_every_api_path,
    health_endpoints_need_no_token,
    malformed_and_invalid_bodies,
    certificate_components_and_versions,
    lookup_lists_only_active_unexpired_components,
    trusted_certificates_need_ssl,
    trust_table_rows_statuses_and_rules,
    an_expired_entry_stays_in_the_table_flagged_expired,
    trust_table_holds_at_most_1000_entries,
    send_ca_names_refused_when_names_overflow,
    gateway_settings_updates_and_rules,
    apis_crud_and_rules,
    api_overrides_and_effective_settings,
    dn_match_tool,
    truststore_faults_show_on_readyz_api_and_metrics_then_recover,
    truststore_auto_recovers_when_enabled,
    metrics_show_generation_and_expiry,
    metrics_append_the_prometheus_handle,
    restart_keeps_everything,
);
