//! SPEC §13 tools the data plane answers: `POST /api/v1/tools/explain`, the client
//! inventory and the dry run's lists. The admin crate
//! does not know the proxy; the node injects a [`Tools`] implementation (like the
//! [`crate::ReloadHook`]) that runs the data plane's own evaluation on its live snapshot.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use certgate_pki::CertificateInfo;
use certgate_store::inventory::{AccessChanges, SeenClient};
use certgate_store::GatewayConfig;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::AdminState;

/// A request to explain, validated by the admin API.
#[derive(Debug, Clone)]
pub struct ExplainInput {
    /// The request target, starting with `/`.
    pub path: String,
    /// The method (a valid HTTP token); `None`: GET.
    pub method: Option<String>,
    /// The `Host`.
    pub host: Option<String>,
    /// The TLS SNI the client would send; `None`: none (no §16 Host check).
    pub sni: Option<String>,
    /// The certificate chain as DER, leaf first; `None`: no certificate.
    pub chain_der: Option<Vec<Vec<u8>>>,
}

/// What the node's data plane answers for the admin API's tools.
pub trait Tools: Send + Sync {
    /// The SPEC §13 explain answer for `input`, judged on the live snapshot.
    fn explain(&self, input: ExplainInput) -> serde_json::Value;

    /// The client certificates this node has seen (SPEC §13), newest first.
    fn clients(&self) -> Vec<SeenClient>;

    /// The SPEC §13 dry-run lists: `clients` judged under the live configuration and
    /// under `next` compiled exactly as a reload would compile it. `Err` with the reason
    /// when `next` does not compile (the real write would not become live).
    fn access_changes(
        &self,
        next: &GatewayConfig,
        clients: &[SeenClient],
    ) -> Result<AccessChanges, String>;
}

/// The shared handle the admin state keeps.
pub type ToolsHandle = Arc<dyn Tools>;

/// Body of `POST /api/v1/tools/explain`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainBody {
    path: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    host: Option<String>,
    /// The TLS SNI of the explained request (an addition to SPEC §13's fields).
    #[serde(default)]
    sni: Option<String>,
    #[serde(default)]
    certificate_pem: Option<String>,
}

#[utoipa::path(post, path = "/tools/explain", tag = "tools", request_body = ExplainBody, responses((status = 200, description = "Every step of the evaluation (SPEC §13)", body = Object), crate::openapi::WriteErrors))]
pub(crate) async fn explain(
    State(st): State<AdminState>,
    JsonBody(body): JsonBody<ExplainBody>,
) -> Result<Response, ApiError> {
    let Some(tools) = st.tools.clone() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "tools_unavailable",
            "This admin API runs without a data plane to explain with.",
        ));
    };
    if !body.path.starts_with('/') {
        return Err(ApiError::invalid(
            "invalid_path",
            format!("path {:?} must start with /.", body.path),
        ));
    }
    if let Some(m) = &body.method {
        if axum::http::Method::from_bytes(m.as_bytes()).is_err() {
            return Err(ApiError::invalid(
                "invalid_method",
                format!("method {m:?} is not an HTTP method."),
            ));
        }
    }
    let chain_der = match &body.certificate_pem {
        None => None,
        Some(pem) => {
            let certs = CertificateInfo::parse_pem_chain(pem).map_err(|e| {
                ApiError::invalid(
                    "invalid_certificate",
                    format!("certificate_pem is not a PEM certificate: {e}."),
                )
            })?;
            if certs.is_empty() {
                return Err(ApiError::invalid(
                    "invalid_certificate",
                    "certificate_pem holds no certificate.",
                ));
            }
            Some(certs.into_iter().map(|c| c.der.to_vec()).collect())
        }
    };
    let input = ExplainInput {
        path: body.path,
        method: body.method,
        host: body.host,
        sni: body.sni,
        chain_der,
    };
    Ok(Json(tools.explain(input)).into_response())
}
