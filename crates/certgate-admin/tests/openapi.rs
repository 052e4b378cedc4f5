//! `GET /api/v1/openapi.json` (SPEC §8): an OpenAPI 3.1 document of every endpoint of §8
//! and §11-§15, behind the token like all of `/api/v1`. Checked both ways: every endpoint
//! SPEC names is in the document, and every operation of the document is served (the
//! router answers it with something other than its "No such endpoint." 404 or its 405).

#[allow(unused_macros)]
#[path = "../../certgate-store/tests/support/backend.rs"]
mod backend;
mod common;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use common::{Node, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The endpoints SPEC §8 and §11-§15 name, as the document must spell them.
const SPEC_ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/v1/certificates"),
    ("get", "/api/v1/certificates"),
    ("get", "/api/v1/certificates/{id}"),
    ("delete", "/api/v1/certificates/{id}"),
    ("post", "/api/v1/certificates/{id}/versions"),
    ("get", "/api/v1/gateway"),
    ("put", "/api/v1/gateway/client-cert-auth"),
    ("get", "/api/v1/gateway/trusted-certificates"),
    ("post", "/api/v1/gateway/trusted-certificates"),
    (
        "post",
        "/api/v1/gateway/trusted-certificates/{certificate_id}/upgrade",
    ),
    (
        "delete",
        "/api/v1/gateway/trusted-certificates/{certificate_id}",
    ),
    ("post", "/api/v1/apis"),
    ("get", "/api/v1/apis"),
    ("get", "/api/v1/apis/{id}"),
    ("put", "/api/v1/apis/{id}"),
    ("delete", "/api/v1/apis/{id}"),
    ("get", "/api/v1/apis/{id}/client-cert-auth"),
    ("put", "/api/v1/apis/{id}/client-cert-auth"),
    ("delete", "/api/v1/apis/{id}/client-cert-auth"),
    ("get", "/api/v1/truststore"),
    ("post", "/api/v1/truststore/recover"),
    ("post", "/api/v1/tools/dn-match"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    // §11
    ("post", "/console/session"),
    ("get", "/console/session"),
    ("delete", "/console/session"),
    // §12
    ("get", "/api/v1/cluster/nodes"),
    // §13
    ("post", "/api/v1/tools/explain"),
    ("get", "/api/v1/clients"),
    // §14
    ("get", "/api/v1/audit"),
    // §15
    ("get", "/api/v1/config"),
    ("put", "/api/v1/config"),
];

async fn document(node: &Node) -> Value {
    let resp = node
        .client
        .get(format!("{}/api/v1/openapi.json", node.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let resp = node
        .client
        .get(format!("{}/api/v1/openapi.json", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let doc = document(&node).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc["info"]["title"], "certgate admin API");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Schemas are generated from the handlers' types: the component view lists its fields.
    let component = &doc["components"]["schemas"]["Component"]["properties"];
    for field in ["id", "name", "active", "latest_version", "versions"] {
        assert!(
            component.get(field).is_some(),
            "Component.{field}: {component}"
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn every_spec_endpoint_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let doc = document(&node).await;
    let mut missing = Vec::new();
    for (method, path) in SPEC_ENDPOINTS {
        if doc["paths"][path][method].is_null() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    node.stop().await;
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), true, true).await;
    let doc = document(&node).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        // An id that names nothing: the endpoint answers its own 404, not the router's.
        let concrete = path
            .replace("{id}", "999999")
            .replace("{certificate_id}", "999999");
        assert!(!concrete.contains('{'), "unknown path parameter in {path}");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = node.call(m.clone(), &concrete, None).await;
            let fallback = (status == StatusCode::NOT_FOUND
                && body["error"]["message"] == "No such endpoint.")
                || status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(
                !fallback,
                "{m} {path} is documented but not served: {status} {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= SPEC_ENDPOINTS.len(), "only {checked} operations");
    node.stop().await;
}
