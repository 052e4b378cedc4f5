//! `?dry_run=true` (SPEC §13) on the four single writes: 200 with the lose/gain lists,
//! nothing changes (the configuration and the generation stay, the data plane is not
//! reloaded), and a write that would be refused answers the real write's error.

#[allow(unused_macros)]
#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use common::{assert_error, ca, Node};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn empty_lists() -> Value {
    json!({"would_lose_access": [], "would_gain_access": []})
}

#[tokio::test]
async fn dry_runs_change_nothing_and_refuse_like_the_real_write() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let cid = node.upload("root", &ca("Root", -1, 300)).await;
    node.trust(cid).await;
    let (s, api) = node
        .post(
            "/api/v1/apis",
            json!({"name": "a", "base_path": "/a", "upstream": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{api}");
    let api_id = api["id"].as_i64().unwrap();
    let (s, v) = node
        .put(
            &format!("/api/v1/apis/{api_id}/client-cert-auth"),
            json!({"required": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let before = node.store.load_config().await.unwrap();
    let reloads = node.reload_count();
    let dry = [
        (
            Method::PUT,
            "/api/v1/gateway/client-cert-auth?dry_run=true".to_string(),
            Some(json!({"mode": "mtls", "required": true, "trusted_dns": ["CN=x"]})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/gateway/trusted-certificates/{cid}?dry_run=true"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/apis/{api_id}/client-cert-auth?dry_run=true"),
            Some(json!({"required": false, "trusted_dns": []})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/apis/{api_id}/client-cert-auth?dry_run=true"),
            None,
        ),
    ];
    for (method, path, body) in dry {
        let (s, v) = node.call(method.clone(), &path, body).await;
        assert_eq!((s, &v), (StatusCode::OK, &empty_lists()), "{method} {path}");
    }
    assert_eq!(node.store.load_config().await.unwrap(), before);
    assert_eq!(
        node.reload_count(),
        reloads,
        "a dry run reloaded the data plane"
    );

    // Refused dry runs answer exactly what the real write answers.
    let refused = [
        (
            Method::PUT,
            "/api/v1/gateway/client-cert-auth",
            Some(json!({"mode": "header", "required": true})),
        ),
        (
            Method::DELETE,
            "/api/v1/gateway/trusted-certificates/999",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/apis/999/client-cert-auth",
            Some(json!({"required": false})),
        ),
        (
            Method::PUT,
            "/api/v1/gateway/client-cert-auth",
            Some(json!({"trusted_dns": ["CN=a,,O=b"]})),
        ),
    ];
    for (method, path, body) in refused {
        let dry = node
            .call(
                method.clone(),
                &format!("{path}?dry_run=true"),
                body.clone(),
            )
            .await;
        let real = node.call(method.clone(), path, body).await;
        assert!(dry.0.is_client_error(), "{method} {path}: {dry:?}");
        assert_eq!(dry, real, "{method} {path}");
    }
    assert_eq!(node.store.load_config().await.unwrap(), before);

    let got = node
        .call(
            Method::DELETE,
            &format!("/api/v1/gateway/trusted-certificates/{cid}?dry_run=maybe"),
            None,
        )
        .await;
    assert_error(&got, 422, "invalid_query", None);
    assert_eq!(node.store.load_config().await.unwrap(), before);
    node.stop().await;
}
