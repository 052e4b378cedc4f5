//! Cluster mode of the admin API (SPEC §12): `GET /api/v1/cluster/nodes`, the
//! `?wait=cluster` option of every write, and the [`NodeHandle`] through which the node
//! tells the admin API who it is and what it serves (for `/readyz` during a store outage).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use certgate_store::views::{NodeState, NodeView};
use certgate_store::GatewayConfig;

use crate::error::ApiError;
use crate::AdminState;

/// How long `?wait=cluster` waits for every `up` node (SPEC §12).
pub const WAIT_LIMIT: Duration = Duration::from_secs(5);
const WAIT_POLL: Duration = Duration::from_millis(25);

/// Where the node's running configuration came from (`/readyz` `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Read from the store.
    Store,
    /// Read from `<data_dir>/last-config.json` because the store was unreachable at start.
    LastConfig,
}

impl ConfigSource {
    /// `store` or `last-config`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::Store => "store",
            ConfigSource::LastConfig => "last-config",
        }
    }
}

#[derive(Debug)]
struct Applied {
    source: ConfigSource,
    config: Option<Arc<GatewayConfig>>,
    /// Why the last reload did not make the store's configuration live (`None`: it did).
    failure: Option<String>,
}

/// The node the admin API runs on: its id, and the configuration it applied last.
#[derive(Debug)]
pub struct NodeHandle {
    id: String,
    applied: Mutex<Applied>,
}

impl NodeHandle {
    /// A node with id `id` that has applied nothing yet.
    pub fn new(id: impl Into<String>) -> Arc<NodeHandle> {
        Arc::new(NodeHandle {
            id: id.into(),
            applied: Mutex::new(Applied {
                source: ConfigSource::Store,
                config: None,
                failure: None,
            }),
        })
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records the configuration the node now serves and where it came from.
    pub fn set_applied(&self, config: Arc<GatewayConfig>, source: ConfigSource) {
        let mut a = self.lock();
        a.config = Some(config);
        a.source = source;
    }

    /// The configuration the node serves, if any, and its source.
    pub fn applied(&self) -> (Option<Arc<GatewayConfig>>, ConfigSource) {
        let a = self.lock();
        (a.config.clone(), a.source)
    }

    /// Records the outcome of a reload: `Some(reason)` when the store's configuration
    /// could not be made live (the node keeps serving the previous one and is not ready),
    /// `None` when it is live.
    pub fn set_reload_failure(&self, failure: Option<String>) {
        self.lock().failure = failure;
    }

    /// Why the last reload failed, if it did.
    pub fn reload_failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `GET /api/v1/cluster/nodes`: every recorded node, the answering node first.
#[utoipa::path(get, path = "/cluster/nodes", tag = "cluster", responses((status = 200, description = "Every recorded node, this node first", body = Vec<certgate_store::views::NodeView>), crate::openapi::ReadErrors))]
pub(crate) async fn list_nodes(State(st): State<AdminState>) -> Result<Response, ApiError> {
    let mut nodes = st.store().nodes().await?;
    if let Some(me) = st.node() {
        if let Some(i) = nodes.iter().position(|n| n.id == me.id()) {
            let mine = nodes.remove(i);
            nodes.insert(0, mine);
        }
    }
    Ok(Json(nodes).into_response())
}

/// The ids of `up` nodes that have not applied `generation`.
pub fn lagging(nodes: &[NodeView], generation: u64) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.state == NodeState::Up && n.config_generation < generation)
        .map(|n| n.id.clone())
        .collect()
}

fn wants_cluster_wait(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD)
        && req
            .uri()
            .query()
            .is_some_and(|q| crate::query::Query::parse(Some(q)).get("wait") == Some("cluster"))
}

/// `?wait=cluster` on a write: after a successful answer, waits until every `up` node
/// has applied the store's generation (at most [`WAIT_LIMIT`]). Answers the write's own
/// answer when they all did, else 200 with `"lagging": [node ids]` (added to the
/// answer's JSON object, or alone for a write that would answer 204).
pub(crate) async fn wait_cluster(
    State(st): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    if !wants_cluster_wait(&req) {
        return next.run(req).await;
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        return resp;
    }
    let generation = match st.store().generation().await {
        Ok(g) => g,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut behind = Vec::new();
    loop {
        match st.store().nodes().await {
            Ok(nodes) => {
                behind = lagging(&nodes, generation);
                if behind.is_empty() {
                    return resp;
                }
            }
            Err(e) => tracing::warn!(error = %e, "wait=cluster: cannot read the nodes"),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
    let (_, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, crate::BODY_LIMIT)
        .await
        .unwrap_or_default();
    let mut value = if bytes.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({}))
    };
    match value.as_object_mut() {
        Some(obj) => {
            obj.insert("lagging".into(), serde_json::json!(behind));
        }
        None => value = serde_json::json!({ "lagging": behind, "result": value }),
    }
    let mut out = Json(value).into_response();
    *out.status_mut() = StatusCode::OK;
    out
}
