//! # certgate-admin
//!
//! The admin REST API of SPEC §8 (axum), plus `/healthz`, `/readyz` and `/metrics`.
//!
//! ## Wiring
//!
//! ```no_run
//! # async fn demo(store: certgate_store::Store, ts: std::sync::Arc<certgate_store::TrustStore>) -> std::io::Result<()> {
//! use std::sync::Arc;
//! let reload: certgate_admin::ReloadHook = Arc::new(|| Box::pin(async { /* rebuild the snapshot */ Ok(()) }));
//! let state = certgate_admin::AdminState::new(store, ts, "a-long-random-token".to_string(), reload, None);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
//! certgate_admin::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! - [`AdminState::new`] takes the [`Store`], the node's [`TrustStore`], the bearer
//!   token, a [`ReloadHook`] and an optional Prometheus handle.
//! - [`router`] builds the `axum::Router`; [`serve`] runs it on a listener until
//!   `shutdown` resolves (in-flight requests finish).
//!
//! ## Behaviour
//!
//! - Every path under `/api/v1` needs `Authorization: Bearer <token>` (compared in
//!   constant time); otherwise 401 with the error shape. An empty token never matches.
//! - Errors are `{"error": {"code", "message"}}`: 400 for a body that is not JSON, 422 for
//!   a JSON body with a missing, unknown, wrongly typed or invalid field, 404 for unknown
//!   ids and paths, 409 for conflicts with the state, 413 over the 4 MiB body limit.
//! - After every successful write the API syncs the trust store with the new
//!   configuration, then awaits the reload hook, so the change is live on this node when
//!   the answer is sent (SPEC §2).
//! - `/readyz` (and `GET /api/v1/truststore`, `GET /api/v1/gateway`) re-verify the
//!   trust store files; when that changes the trust store status, the reload hook runs so
//!   the data plane fails closed at once.
//! - The web console (SPEC §11) is served at `/console/` (see `console`); its sessions
//!   ([`session`]) authenticate `/api/v1` like the bearer token, writes needing the
//!   session's `X-CSRF-Token`. `GET /api/v1/activity/denials` ([`activity`]) feeds its
//!   Activity chart.
//! - `GET /api/v1/clients` (`clients`) answers the client inventory of SPEC §13 from the
//!   node's data plane (the [`tools::Tools`] it was given), joined in cluster mode with
//!   the parts the other nodes wrote to the store; dry runs judge those clients.
//! - `/metrics` renders the gauges of this crate (see [`health`]) followed by whatever
//!   the Prometheus handle holds (the data plane's counters).

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use certgate_store::{GatewayConfig, Store, TrustStore, TrustStoreInfo};
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub mod activity;
mod clients;
pub mod cluster;
mod config;
mod console;
pub mod error;
pub mod extract;
mod handlers;
pub mod health;
pub mod openapi;
mod query;
pub mod session;
pub mod tools;

pub use error::ApiError;
pub use extract::{JsonBody, BODY_LIMIT};
pub use session::{Actor, Clock};

/// Rebuilds the node's data plane snapshot; the admin API awaits it after each write.
///
/// It answers [`ReloadFailed`] when the change could not be made live on this node; the
/// write that triggered it then answers 503 `reload_failed` (SPEC §2: a write is
/// acknowledged only when it is live).
pub type ReloadHook =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), ReloadFailed>> + Send>> + Send + Sync>;

/// Why a reload did not make the store's configuration live on this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReloadFailed(pub String);

/// A reload hook that does nothing (tests, tools).
pub fn noop_reload() -> ReloadHook {
    Arc::new(|| Box::pin(async { Ok(()) }))
}

/// Everything the admin API needs. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    store: Store,
    truststore: Arc<TrustStore>,
    token: Arc<str>,
    reload: ReloadHook,
    metrics: Option<PrometheusHandle>,
    node: Option<Arc<cluster::NodeHandle>>,
    /// Console sessions (SPEC §11).
    sessions: Arc<session::Sessions>,
    /// The time source of sessions and the activity window.
    clock: Clock,
    /// Whether the session cookie is marked `Secure` (the admin listener is TLS).
    secure_cookies: bool,
    /// Denial samples for the console's Activity page.
    activity: Arc<activity::Activity>,
    /// The data plane's tools (explain), when a node runs one.
    tools: Option<tools::ToolsHandle>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("store", &self.store)
            .field("truststore", &self.truststore)
            .field("token", &"<redacted>")
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl AdminState {
    /// The state of an admin API over `store` and `truststore`, guarded by `token`.
    pub fn new(
        store: Store,
        truststore: Arc<TrustStore>,
        token: String,
        reload: ReloadHook,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        AdminState {
            store,
            truststore,
            token: token.into(),
            reload,
            metrics,
            node: None,
            sessions: Arc::default(),
            clock: session::system_clock(),
            secure_cookies: false,
            activity: Arc::default(),
            tools: None,
        }
    }

    /// The node this admin API runs on (cluster listing order, `/readyz` during a store
    /// outage).
    pub fn with_node(mut self, node: Arc<cluster::NodeHandle>) -> Self {
        self.node = Some(node);
        self
    }

    /// The data plane's SPEC §13 tools (explain); without them the endpoint answers 503.
    pub fn with_tools(mut self, tools: tools::ToolsHandle) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The node, when set.
    pub fn node(&self) -> Option<&Arc<cluster::NodeHandle>> {
        self.node.as_ref()
    }

    /// Uses `clock` for session expiry and the activity window (tests move it instead of
    /// sleeping).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Marks the session cookie `Secure`; set it when the admin listener serves TLS.
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// The console sessions held by this state.
    pub fn sessions(&self) -> &session::Sessions {
        &self.sessions
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The node's trust store.
    pub fn truststore(&self) -> &Arc<TrustStore> {
        &self.truststore
    }

    /// After a committed write: sync the trust store, then run the reload hook.
    pub(crate) async fn after_write(&self) -> Result<(), ApiError> {
        let config = self.store.load_config().await?;
        self.run_truststore(config, |ts, c| ts.sync(c)).await?;
        self.reload().await
    }

    /// Runs the reload hook; a failure is the 503 `reload_failed` answer.
    async fn reload(&self) -> Result<(), ApiError> {
        (self.reload)().await.map_err(|e| {
            tracing::error!(error = %e, "a committed change is not live on this node");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "reload_failed",
                format!(
                    "The change is stored but not live on this node: {e}. The node keeps its previous configuration, retries, and is not ready until it is live."
                ),
            )
        })
    }

    /// Re-verifies the trust store against the current configuration; runs the reload
    /// hook when its status changed.
    pub(crate) async fn check_truststore(
        &self,
        config: GatewayConfig,
    ) -> Result<TrustStoreInfo, ApiError> {
        let before = self.truststore.status().status;
        let info = self.run_truststore(config, |ts, c| ts.sync(c)).await?;
        if info.status != before {
            self.reload().await?;
        }
        Ok(info)
    }

    /// Rebuilds the trust store now, then runs the reload hook.
    pub(crate) async fn recover_truststore(&self) -> Result<TrustStoreInfo, ApiError> {
        let config = self.store.load_config().await?;
        let info = self.run_truststore(config, |ts, c| ts.recover(c)).await?;
        self.reload().await?;
        Ok(info)
    }

    /// Runs a trust store operation (blocking file I/O) off the async threads.
    async fn run_truststore(
        &self,
        config: GatewayConfig,
        op: fn(&TrustStore, &GatewayConfig) -> TrustStoreInfo,
    ) -> Result<TrustStoreInfo, ApiError> {
        let ts = Arc::clone(&self.truststore);
        tokio::task::spawn_blocking(move || op(&ts, &config))
            .await
            .map_err(|e| ApiError::internal(format!("trust store task failed: {e}")))
    }

    fn token_matches(&self, presented: &str) -> bool {
        extract::token_eq(presented, &self.token)
    }
}

/// Refuses `/api/v1` requests without the right bearer token or a console session
/// cookie (with `X-CSRF-Token` on writes, SPEC §11).
async fn require_token(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let bearer_ok = presented.is_some_and(|t| state.token_matches(t));
    let actor = if bearer_ok {
        Some(Actor::Token)
    } else {
        match session::authenticate(&state, req.method(), req.headers()) {
            session::CookieAuth::Ok(prefix) => Some(Actor::Console(prefix)),
            session::CookieAuth::CsrfFailed => return session::csrf_failed().into_response(),
            session::CookieAuth::None => None,
        }
    };
    match actor {
        Some(actor) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        None => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid bearer token is required (Authorization: Bearer <token>).",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such endpoint.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept this method.",
    )
}

/// The `/api/v1` endpoints (paths relative to `/api/v1`), each with its OpenAPI entry.
fn api_routes() -> OpenApiRouter<AdminState> {
    use handlers as h;
    OpenApiRouter::new()
        .routes(routes!(h::create_component, h::list_components))
        .routes(routes!(h::get_component, h::delete_component))
        .routes(routes!(h::add_version))
        .routes(routes!(h::get_gateway))
        .routes(routes!(h::put_client_cert_auth))
        .routes(routes!(h::list_trusted, h::add_trusted))
        .routes(routes!(h::remove_trusted))
        .routes(routes!(h::upgrade_trusted))
        .routes(routes!(h::create_api, h::list_apis))
        .routes(routes!(h::get_api, h::put_api, h::delete_api))
        .routes(routes!(
            h::get_api_auth,
            h::put_api_auth,
            h::delete_api_auth
        ))
        .routes(routes!(h::get_truststore))
        .routes(routes!(h::recover_truststore))
        .routes(routes!(h::dn_match))
        .routes(routes!(tools::explain))
        .routes(routes!(clients::list_clients))
        .routes(routes!(cluster::list_nodes))
        .routes(routes!(activity::denials))
        .routes(routes!(h::audit))
        .routes(routes!(config::get_config, config::put_config))
        .routes(routes!(openapi::openapi_json))
}

/// The endpoints outside `/api/v1` that the document lists: health, metrics and the
/// console's session (the console's static files are not API).
fn outer_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
}

/// Every documented endpoint with its full path: what [`openapi::document`] is made of.
pub(crate) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api_routes())
        .merge(outer_routes())
}

/// The admin API's router: `/api/v1/…` (token required), `/healthz`, `/readyz`, `/metrics`,
/// the console.
pub fn router(state: AdminState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cluster::wait_cluster,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let (outer, _) = outer_routes().split_for_parts();
    Router::new()
        .nest("/api/v1", api)
        .merge(outer)
        .route("/", get(console::redirect))
        .route("/console", get(console::redirect))
        .route("/console/", get(console::index))
        .route("/console/{file}", get(console::file))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(console::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Activity samples: one now (the baseline), then one a minute while serving.
    activity::sample_now(&state);
    let sampler_state = state.clone();
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            activity::sample_now(&sampler_state);
        }
    });
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sampler.abort();
    result
}
