//! Unauthenticated and internal answers say little (issue 9, defect 8): `/readyz` and
//! 5xx admin answers carry a short reason, never paths or database text (those go to
//! the log); `/readyz` answers from a cache keyed by the configuration generation and
//! the trust store files' stat, and stays correct when either moves.

#[allow(unused_macros)]
#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use common::{assert_error, ca, Node};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Asserts that an answer names no file, no database and no internal error text.
fn assert_no_internals(body: &Value, data_dir: &std::path::Path) {
    let text = body.to_string();
    let dir = data_dir.display().to_string();
    for leak in [
        dir.as_str(),
        "truststore.pem",
        "manifest.json",
        "certgate.db",
        "SHA-256",
        "sqlx",
        "database",
        "pool",
        "No such file",
        "os error",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked in {text}");
    }
}

async fn readyz(node: &Node) -> (StatusCode, Value) {
    let resp = node
        .client
        .get(format!("{}/readyz", node.url))
        .send()
        .await
        .unwrap();
    common::read(resp).await
}

#[tokio::test]
async fn readyz_gives_a_short_reason_for_a_damaged_trust_store_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, false).await;
    let id = node.upload("root", &ca("Root", -1, 365)).await;
    node.trust(id).await;
    assert_eq!(readyz(&node).await.0, StatusCode::OK);

    // Damaged behind the node's back: the cached answer is not reused (the files'
    // stat moved).
    let bundle = node.truststore.bundle_path();
    let mut pem = std::fs::read(&bundle).unwrap();
    pem.extend_from_slice(b"garbage\n");
    std::fs::write(&bundle, pem).unwrap();
    let (status, body) = readyz(&node).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["truststore"], "corrupted");
    assert_eq!(
        body["reason"],
        "the trust store is corrupted: client certificates are rejected until it is recovered"
    );
    assert_no_internals(&body, dir.path());

    let (status, _) = node.post("/api/v1/truststore/recover", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(readyz(&node).await.0, StatusCode::OK);
    node.stop().await;
}

#[tokio::test]
async fn readyz_cache_follows_configuration_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, false).await;
    assert_eq!(readyz(&node).await.0, StatusCode::OK);
    assert_eq!(node.truststore.status().entries, 0);
    // A trust-table change written straight to the store (as another node or the CLI
    // would): the generation moves, so /readyz syncs the trust store again instead of
    // answering from its cache.
    let id = node.upload("root", &ca("Root", -1, 365)).await;
    let before = node.store.generation().await.unwrap();
    node.store
        .add_trusted(id, None, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(node.store.generation().await.unwrap() > before);
    let (status, body) = readyz(&node).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(node.truststore.status().entries, 1);
    let (_, ts) = node.get("/api/v1/truststore").await;
    assert_eq!(ts["entries"], 1);
    node.stop().await;
}

#[tokio::test]
async fn an_unreachable_store_gives_short_answers_without_internals() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    assert_eq!(readyz(&node).await.0, StatusCode::OK);
    // The store's connections are gone: every query fails inside sqlx.
    node.store.close().await;

    let (status, body) = readyz(&node).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        json!({"status": "unavailable", "reason": "the store is unreachable", "truststore": null})
    );

    let got = node.get("/api/v1/gateway").await;
    // SPEC §12: an unreachable store is 503 `store_unavailable` (nothing changed).
    assert_error(&got, 503, "store_unavailable", None);
    assert_no_internals(&got.1, dir.path());
    let got = node
        .post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:9"}),
        )
        .await;
    // SPEC §12: an unreachable store is 503 `store_unavailable` (nothing changed).
    assert_error(&got, 503, "store_unavailable", None);
    assert_no_internals(&got.1, dir.path());
}
