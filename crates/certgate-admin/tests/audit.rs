//! The audit log (SPEC §14) over HTTP: one record per committed write with the exact
//! actor, action and target; PEMs shortened to their SHA-256; nothing for refused and
//! no-op writes; the console's actor; `limit` and `before` paging.

#[allow(unused_macros)]
#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn audit(node: &Node, query: &str) -> Vec<Value> {
    let (st, v) = node.get(&format!("/api/v1/audit{query}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().expect("an array").clone()
}

/// (actor, action, target) of every record, oldest first.
fn triples(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .rev()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn t(actor: &str, action: &str, target: &str) -> (String, String, String) {
    (actor.into(), action.into(), target.into())
}

async fn every_write_kind_leaves_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, false).await;
    // Starting mirrors ssl = true from the node's config: the node's own write.
    let start = audit(&node, "").await;
    assert_eq!(
        triples(&start),
        vec![t(
            "system",
            "gateway.ssl_enabled.set",
            "gateway:ssl_enabled"
        )]
    );

    let pem1 = ca("Root A", -1, 365);
    let (st, c) = node
        .post(
            "/api/v1/certificates",
            json!({"name": "root-a", "pem": pem1}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_i64().unwrap();
    let pem2 = ca("Root A2", -1, 365);
    let (st, _) = node
        .post(
            &format!("/api/v1/certificates/{id}/versions"),
            json!({"pem": pem2}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = node
        .post(
            "/api/v1/gateway/trusted-certificates",
            json!({"certificate_id": id, "version": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = node
        .post(
            &format!("/api/v1/gateway/trusted-certificates/{id}/upgrade"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"mode": "mtls", "trusted_dns": ["CN=*"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, api) = node
        .post(
            "/api/v1/apis",
            json!({"name": "orders", "base_path": "/orders", "upstream": "http://127.0.0.1:1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let api_id = api["id"].as_i64().unwrap();
    let (st, _) = node
        .put(
            &format!("/api/v1/apis/{api_id}"),
            json!({"name": "orders2", "base_path": "/orders", "upstream": "http://127.0.0.1:2"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = node
        .put(
            &format!("/api/v1/apis/{api_id}/client-cert-auth"),
            json!({"required": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        node.delete(&format!("/api/v1/apis/{api_id}/client-cert-auth"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        node.delete(&format!("/api/v1/apis/{api_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        node.delete(&format!("/api/v1/gateway/trusted-certificates/{id}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // mtls with an empty trust table is allowed; deactivate the component.
    assert_eq!(
        node.delete(&format!("/api/v1/certificates/{id}")).await.0,
        StatusCode::NO_CONTENT
    );

    let all = audit(&node, "").await;
    assert_eq!(
        triples(&all),
        vec![
            t("system", "gateway.ssl_enabled.set", "gateway:ssl_enabled"),
            t("token", "certificate.create", "certificate:root-a"),
            t(
                "token",
                "certificate_version.add",
                "certificate_version:root-a/2"
            ),
            t(
                "token",
                "trusted_certificate.add",
                "trusted_certificate:root-a"
            ),
            t(
                "token",
                "trusted_certificate.upgrade",
                "trusted_certificate:root-a"
            ),
            t(
                "token",
                "client_cert_auth.update",
                "client_cert_auth:gateway"
            ),
            t("token", "api.create", "api:orders"),
            t("token", "api.update", "api:orders"),
            t(
                "token",
                "api_client_cert_auth.set",
                "client_cert_auth:orders2"
            ),
            t(
                "token",
                "api_client_cert_auth.clear",
                "client_cert_auth:orders2"
            ),
            t("token", "api.delete", "api:orders2"),
            t(
                "token",
                "trusted_certificate.remove",
                "trusted_certificate:root-a"
            ),
            t("token", "certificate.deactivate", "certificate:root-a"),
        ]
    );
    // Ids increase, newest first; each record carries the generation it committed, which
    // is the store's generation for the newest one.
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let gens: Vec<u64> = all
        .iter()
        .map(|r| r["generation"].as_u64().unwrap())
        .collect();
    assert!(gens.windows(2).all(|w| w[0] == w[1] + 1), "{gens:?}");
    assert_eq!(gens[0], node.store.generation().await.unwrap());
    assert!(all[0]["at"].as_str().unwrap().ends_with('Z'));

    // Before/after: the PEM shortened to its SHA-256, nowhere in full.
    let sha = |p: &str| format!("sha256:{}", hex::encode(Sha256::digest(p.as_bytes())));
    let created = &all[all.len() - 2];
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["name"], "root-a");
    assert_eq!(created["after"]["versions"][0]["pem"], sha(&pem1));
    let version = &all[all.len() - 3];
    assert_eq!(version["after"]["pem"], sha(&pem2));
    let upgrade = &all[all.len() - 5];
    assert_eq!(upgrade["before"]["version"], 1);
    assert_eq!(upgrade["after"]["version"], 2);
    assert_eq!(upgrade["after"]["pem"], sha(&pem2));
    let settings = &all[all.len() - 6];
    assert_eq!(settings["before"]["mode"], "none");
    assert_eq!(settings["after"]["mode"], "mtls");
    assert_eq!(settings["after"]["trusted_dns"], json!(["CN=*"]));
    let text = Value::Array(all.clone()).to_string();
    assert!(!text.contains("BEGIN"), "a PEM leaked: {text}");
    assert!(!text.contains(TOKEN), "the token leaked");
    node.stop().await;
}

async fn refused_and_noop_writes_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), false, false).await;
    let (st, api) = node
        .post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let api_id = api["id"].as_i64().unwrap();
    let before = audit(&node, "").await;
    let generation = node.store.generation().await.unwrap();

    // Refused: duplicate, invalid, SSL off, unknown id.
    let refused = [
        node.post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/b", "upstream": "http://127.0.0.1:1"}),
        )
        .await,
        node.post(
            "/api/v1/apis",
            json!({"name": "b", "base_path": "nope", "upstream": "http://127.0.0.1:1"}),
        )
        .await,
        node.put("/api/v1/gateway/client-cert-auth", json!({"mode": "mtls"}))
            .await,
        node.delete("/api/v1/apis/999").await,
    ];
    for r in &refused {
        assert!(r.0.is_client_error(), "{r:?}");
    }
    // No-ops: the same settings, the same API body, clearing an absent override.
    let (st, _) = node
        .put(
            "/api/v1/gateway/client-cert-auth",
            json!({"required": false}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = node
        .put(
            &format!("/api/v1/apis/{api_id}"),
            json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        node.delete(&format!("/api/v1/apis/{api_id}/client-cert-auth"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(audit(&node, "").await, before);
    assert_eq!(node.store.generation().await.unwrap(), generation);
    node.stop().await;
}

async fn limit_and_before_page_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), false, false).await;
    for i in 0..5 {
        let (st, _) = node
            .post(
                "/api/v1/apis",
                json!({"name": format!("a{i}"), "base_path": format!("/a{i}"), "upstream": "http://127.0.0.1:1"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let all = audit(&node, "").await;
    assert_eq!(all.len(), 5);
    let page1 = audit(&node, "?limit=2").await;
    assert_eq!(page1, all[..2].to_vec());
    let last = page1[1]["id"].as_i64().unwrap();
    let page2 = audit(&node, &format!("?limit=2&before={last}")).await;
    assert_eq!(page2, all[2..4].to_vec());
    let page3 = audit(&node, &format!("?before={}", page2[1]["id"])).await;
    assert_eq!(page3, all[4..].to_vec());
    assert_eq!(audit(&node, "?limit=1000").await.len(), 5);
    let over = node.get("/api/v1/audit?limit=1001").await;
    assert_error(
        &over,
        422,
        "limit_exceeded",
        Some("limit must be between 1 and 1000."),
    );
    let bad = node.get("/api/v1/audit?before=x").await;
    assert_error(&bad, 422, "invalid_query", None);
    node.stop().await;
}

async fn console_writes_are_recorded_with_the_session_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), false, false).await;
    let resp = node
        .client
        .post(format!("{}/console/session", node.url))
        .json(&json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session_id = cookie.split_once('=').unwrap().1.to_owned();
    let body: Value = resp.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let resp = node
        .client
        .post(format!("{}/api/v1/apis", node.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "c", "base_path": "/c", "upstream": "http://127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let records = audit(&node, "?limit=1").await;
    let actor = records[0]["actor"].as_str().unwrap();
    let prefix = actor.strip_prefix("console:").expect(actor);
    assert!(
        !prefix.is_empty() && prefix.len() < session_id.len(),
        "{actor}"
    );
    assert!(session_id.starts_with(prefix), "{actor} vs {session_id}");
    assert_eq!(records[0]["action"], "api.create");
    node.stop().await;
}

both_backends!(
    every_write_kind_leaves_one_record,
    refused_and_noop_writes_add_nothing,
    limit_and_before_page_back,
    console_writes_are_recorded_with_the_session_prefix,
);
