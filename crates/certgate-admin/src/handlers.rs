//! The `/api/v1` handlers: thin translations between HTTP and [`Store`] calls.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use certgate_pki::{CertificateInfo, Dn, PatternSet};
use certgate_store::views::{
    ApiBody, ApiOverrideBody, ClientCertAuthPatch, NewComponentBody, NewVersionBody, TrustBody,
};
use certgate_store::{gateway_view, validate};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::{from_value, JsonBody};
use crate::query::Query;
use crate::{Actor, AdminState};

type Result<T> = std::result::Result<T, ApiError>;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Path ids: anything that is not an integer names nothing, so 404.
fn id(raw: &str) -> Result<i64> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("No resource with id {raw:?}.")))
}

fn created<T: Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Whether the query asks for a dry run (SPEC §13 `?dry_run=true`). `false` or no
/// `dry_run` is a real write; any other value is refused (422) rather than guessed.
pub(crate) fn dry_run(query: &Option<String>) -> Result<bool> {
    Ok(Query::parse(query.as_deref())
        .bool("dry_run")?
        .unwrap_or(false))
}

/// Runs `write` as a dry run: the real write's rules on a transaction that is rolled
/// back, so a refused write answers its real error and nothing changes (the generation
/// stays). The answer lists the clients that would lose or gain access under the
/// configuration the write would leave ([`access_changes`]).
async fn rehearse<T, F, Fut>(st: &AdminState, write: F) -> Result<Response>
where
    F: FnOnce(certgate_store::Store) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, certgate_store::StoreError>>,
{
    let (_, next) = st.store.rehearse(write).await?;
    Ok(Json(serde_json::Value::Object(access_changes(st, &next).await?)).into_response())
}

/// The SPEC §13 dry-run lists for `next`, the configuration a rehearsed write would leave:
/// `would_lose_access` and `would_gain_access`, the inventory's clients (of the whole
/// cluster) judged by the data plane under the live configuration and under `next`.
/// Without a data plane (an admin API alone) there is nobody to judge: both lists empty.
pub(crate) async fn access_changes(
    st: &AdminState,
    next: &certgate_store::GatewayConfig,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let changes = match &st.tools {
        None => certgate_store::inventory::AccessChanges::default(),
        Some(tools) => {
            let clients = crate::clients::all(st).await;
            tools.access_changes(next, &clients).map_err(|e| {
                ApiError::invalid(
                    "invalid_config",
                    format!("The configuration this write leaves does not compile: {e}."),
                )
            })?
        }
    };
    match serde_json::to_value(changes) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        other => Err(ApiError::internal(format!(
            "the dry-run answer does not encode as an object: {other:?}"
        ))),
    }
}

// ---------------------------------------------------------------- certificates

#[utoipa::path(post, path = "/certificates", tag = "certificates", request_body = NewComponentBody, responses((status = 201, description = "The new component with its version 1", body = certgate_store::views::Component), crate::openapi::WriteErrors))]
pub(crate) async fn create_component(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewComponentBody>,
) -> Result<Response> {
    let c = st
        .store
        .acting_as(actor.to_string())
        .create_component(&body.name, &body.pem, now())
        .await?;
    st.after_write().await?;
    Ok(created(c))
}

#[utoipa::path(get, path = "/certificates", tag = "certificates", params(("lookup" = Option<bool>, Query, description = "`true`: only active components whose latest version is unexpired")), responses((status = 200, description = "Every component (versions without PEM)", body = Vec<certgate_store::views::Component>), crate::openapi::ReadErrors))]
pub(crate) async fn list_components(
    State(st): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let lookup = Query::parse(query.as_deref())
        .bool("lookup")?
        .unwrap_or(false);
    Ok(Json(st.store.list_components(lookup, now()).await?).into_response())
}

#[utoipa::path(get, path = "/certificates/{id}", tag = "certificates", params(("id" = i64, Path, description = "The id")), responses((status = 200, description = "The component with every version and its PEM", body = certgate_store::views::Component), crate::openapi::ReadErrors))]
pub(crate) async fn get_component(
    State(st): State<AdminState>,
    Path(raw): Path<String>,
) -> Result<Response> {
    Ok(Json(st.store.get_component(id(&raw)?).await?).into_response())
}

#[utoipa::path(post, path = "/certificates/{id}/versions", tag = "certificates", params(("id" = i64, Path, description = "The id")), request_body = NewVersionBody, responses((status = 201, description = "The new version", body = certgate_store::views::CertificateVersion), crate::openapi::WriteErrors))]
pub(crate) async fn add_version(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<NewVersionBody>,
) -> Result<Response> {
    let v = st
        .store
        .acting_as(actor.to_string())
        .add_version(id(&raw)?, &body.pem, now())
        .await?;
    st.after_write().await?;
    Ok(created(v))
}

#[utoipa::path(delete, path = "/certificates/{id}", tag = "certificates", params(("id" = i64, Path, description = "The id")), responses((status = 204, description = "Deactivated (its versions stay as history)"), crate::openapi::WriteErrors))]
pub(crate) async fn delete_component(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Response> {
    st.store
        .acting_as(actor.to_string())
        .deactivate_component(id(&raw)?)
        .await?;
    st.after_write().await?;
    Ok(no_content())
}

// ---------------------------------------------------------------- gateway

#[utoipa::path(get, path = "/gateway", tag = "gateway", responses((status = 200, description = "The gateway's settings, trust table, trust store and warnings", body = certgate_store::views::GatewayView), crate::openapi::ReadErrors))]
pub(crate) async fn get_gateway(State(st): State<AdminState>) -> Result<Response> {
    let config = st.store.load_config().await?;
    let ts = st.check_truststore(config.clone()).await?;
    let mut view = gateway_view(&config, ts, now())?;
    let large = crate::activity::forwarded_too_large(&st);
    if large > 0 {
        view.warnings.push(certgate_store::views::Warning {
            code: "forwarded_headers_too_large".into(),
            message: format!(
                "{large} time(s) since this node started, a client chain made forwarded identity \
                 headers larger than 16 KiB (forward_formats {}); upstreams may refuse them. \
                 Forward fewer formats or have clients send shorter chains.",
                serde_json::to_string(&config.client_cert_auth.forward_formats).unwrap_or_default()
            ),
        });
    }
    Ok(Json(view).into_response())
}

#[utoipa::path(put, path = "/gateway/client-cert-auth", tag = "gateway", params(("dry_run" = Option<bool>, Query, description = "`true`: change nothing, answer who would lose or gain access (SPEC §13)")), request_body = ClientCertAuthPatch, responses((status = 200, description = "The settings now live (or, with dry_run, who would lose or gain access)", body = certgate_store::model::ClientCertAuthSettings), crate::openapi::WriteErrors))]
pub(crate) async fn put_client_cert_auth(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    RawQuery(query): RawQuery,
    JsonBody(patch): JsonBody<ClientCertAuthPatch>,
) -> Result<Response> {
    if dry_run(&query)? {
        return rehearse(
            &st,
            |s| async move { s.update_client_cert_auth(&patch).await },
        )
        .await;
    }
    let s = st
        .store
        .acting_as(actor.to_string())
        .update_client_cert_auth(&patch)
        .await?;
    st.after_write().await?;
    Ok(Json(s).into_response())
}

#[utoipa::path(get, path = "/gateway/trusted-certificates", tag = "gateway", responses((status = 200, description = "The trust table", body = Vec<certgate_store::views::TrustTableRow>), crate::openapi::ReadErrors))]
pub(crate) async fn list_trusted(State(st): State<AdminState>) -> Result<Response> {
    Ok(Json(st.store.trust_table(now()).await?).into_response())
}

#[utoipa::path(post, path = "/gateway/trusted-certificates", tag = "gateway", request_body = TrustBody, responses((status = 201, description = "The new trust table row", body = certgate_store::views::TrustTableRow), crate::openapi::WriteErrors))]
pub(crate) async fn add_trusted(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<TrustBody>,
) -> Result<Response> {
    let row = st
        .store
        .acting_as(actor.to_string())
        .add_trusted(body.certificate_id, body.version, now())
        .await?;
    st.after_write().await?;
    Ok(created(row))
}

#[utoipa::path(post, path = "/gateway/trusted-certificates/{certificate_id}/upgrade", tag = "gateway", params(("certificate_id" = i64, Path, description = "The certificate component id")), responses((status = 200, description = "The row, pinned to the latest version", body = certgate_store::views::TrustTableRow), crate::openapi::WriteErrors))]
pub(crate) async fn upgrade_trusted(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Response> {
    let row = st
        .store
        .acting_as(actor.to_string())
        .upgrade_trusted(id(&raw)?, now())
        .await?;
    st.after_write().await?;
    Ok(Json(row).into_response())
}

#[utoipa::path(delete, path = "/gateway/trusted-certificates/{certificate_id}", tag = "gateway", params(("certificate_id" = i64, Path, description = "The certificate component id"), ("dry_run" = Option<bool>, Query, description = "`true`: change nothing, answer who would lose or gain access (SPEC §13)")), responses((status = 204, description = "No longer trusted"), (status = 200, description = "dry_run: who would lose or gain access", body = crate::openapi::DryRunAnswer), crate::openapi::WriteErrors))]
pub(crate) async fn remove_trusted(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if dry_run(&query)? {
        let cid = id(&raw)?;
        return rehearse(&st, |s| async move { s.remove_trusted(cid).await }).await;
    }
    st.store
        .acting_as(actor.to_string())
        .remove_trusted(id(&raw)?)
        .await?;
    st.after_write().await?;
    Ok(no_content())
}

// ---------------------------------------------------------------- APIs

#[utoipa::path(post, path = "/apis", tag = "apis", request_body = ApiBody, responses((status = 201, description = "The new API", body = certgate_store::model::Api), crate::openapi::WriteErrors))]
pub(crate) async fn create_api(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<ApiBody>,
) -> Result<Response> {
    let api = st
        .store
        .acting_as(actor.to_string())
        .create_api(&body)
        .await?;
    st.after_write().await?;
    Ok(created(api))
}

#[utoipa::path(get, path = "/apis", tag = "apis", responses((status = 200, description = "Every API", body = Vec<certgate_store::model::Api>), crate::openapi::ReadErrors))]
pub(crate) async fn list_apis(State(st): State<AdminState>) -> Result<Response> {
    Ok(Json(st.store.list_apis().await?).into_response())
}

#[utoipa::path(get, path = "/apis/{id}", tag = "apis", params(("id" = i64, Path, description = "The id")), responses((status = 200, description = "The API", body = certgate_store::model::Api), crate::openapi::ReadErrors))]
pub(crate) async fn get_api(
    State(st): State<AdminState>,
    Path(raw): Path<String>,
) -> Result<Response> {
    Ok(Json(st.store.get_api(id(&raw)?).await?).into_response())
}

#[utoipa::path(put, path = "/apis/{id}", tag = "apis", params(("id" = i64, Path, description = "The id")), request_body = ApiBody, responses((status = 200, description = "The API as stored", body = certgate_store::model::Api), crate::openapi::WriteErrors))]
pub(crate) async fn put_api(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<ApiBody>,
) -> Result<Response> {
    let api_id = id(&raw)?;
    let api = st
        .store
        .acting_as(actor.to_string())
        .update_api(api_id, &body)
        .await?;
    st.after_write().await?;
    Ok(Json(api).into_response())
}

#[utoipa::path(delete, path = "/apis/{id}", tag = "apis", params(("id" = i64, Path, description = "The id")), responses((status = 204, description = "Deleted"), crate::openapi::WriteErrors))]
pub(crate) async fn delete_api(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Response> {
    st.store
        .acting_as(actor.to_string())
        .delete_api(id(&raw)?)
        .await?;
    st.after_write().await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/apis/{id}/client-cert-auth", tag = "apis", params(("id" = i64, Path, description = "The id")), responses((status = 200, description = "The API's override and the settings in effect", body = certgate_store::views::ApiCertAuthView), crate::openapi::ReadErrors))]
pub(crate) async fn get_api_auth(
    State(st): State<AdminState>,
    Path(raw): Path<String>,
) -> Result<Response> {
    Ok(Json(st.store.api_cert_auth(id(&raw)?).await?).into_response())
}

#[utoipa::path(put, path = "/apis/{id}/client-cert-auth", tag = "apis", params(("id" = i64, Path, description = "The id"), ("dry_run" = Option<bool>, Query, description = "`true`: change nothing, answer who would lose or gain access (SPEC §13)")), request_body = ApiOverrideBody, responses((status = 200, description = "The override now live (or, with dry_run, who would lose or gain access)", body = certgate_store::model::ApiOverride), crate::openapi::WriteErrors))]
pub(crate) async fn put_api_auth(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    JsonBody(value): JsonBody<serde_json::Value>,
) -> Result<Response> {
    let dry = dry_run(&query)?;
    let api_id = id(&raw)?;
    if value.get("mode").is_some() {
        return Err(ApiError::invalid(
            "mode_not_overridable",
            "mode cannot be overridden per API: it is a gateway-wide setting \
             (PUT /api/v1/gateway/client-cert-auth). An API may override required and trusted_dns.",
        ));
    }
    let body: ApiOverrideBody = from_value(value)?;
    if dry {
        let ov = body.into();
        return rehearse(
            &st,
            |s| async move { s.set_api_override(api_id, &ov).await },
        )
        .await;
    }
    let ov = st
        .store
        .acting_as(actor.to_string())
        .set_api_override(api_id, &body.into())
        .await?;
    st.after_write().await?;
    Ok(Json(ov).into_response())
}

#[utoipa::path(delete, path = "/apis/{id}/client-cert-auth", tag = "apis", params(("id" = i64, Path, description = "The id"), ("dry_run" = Option<bool>, Query, description = "`true`: change nothing, answer who would lose or gain access (SPEC §13)")), responses((status = 204, description = "The API inherits the gateway's settings again"), (status = 200, description = "dry_run: who would lose or gain access", body = crate::openapi::DryRunAnswer), crate::openapi::WriteErrors))]
pub(crate) async fn delete_api_auth(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if dry_run(&query)? {
        let api_id = id(&raw)?;
        return rehearse(&st, |s| async move { s.clear_api_override(api_id).await }).await;
    }
    st.store
        .acting_as(actor.to_string())
        .clear_api_override(id(&raw)?)
        .await?;
    st.after_write().await?;
    Ok(no_content())
}

// ---------------------------------------------------------------- trust store

#[utoipa::path(get, path = "/truststore", tag = "truststore", responses((status = 200, description = "The trust store's state", body = certgate_store::TrustStoreInfo), crate::openapi::ReadErrors))]
pub(crate) async fn get_truststore(State(st): State<AdminState>) -> Result<Response> {
    let config = st.store.load_config().await?;
    Ok(Json(st.check_truststore(config).await?).into_response())
}

#[utoipa::path(post, path = "/truststore/recover", tag = "truststore", responses((status = 200, description = "The trust store rebuilt from the database", body = certgate_store::TrustStoreInfo), crate::openapi::WriteErrors))]
pub(crate) async fn recover_truststore(State(st): State<AdminState>) -> Result<Response> {
    Ok(Json(st.recover_truststore().await?).into_response())
}

// ---------------------------------------------------------------- tools

/// Body of `POST /api/v1/tools/dn-match`: `dn` or `certificate_pem`, not both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnMatchBody {
    patterns: Vec<String>,
    #[serde(default)]
    dn: Option<String>,
    #[serde(default)]
    certificate_pem: Option<String>,
}

/// Answer of `POST /api/v1/tools/dn-match`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DnMatchAnswer {
    dn: String,
    matched: bool,
    pattern: Option<String>,
}

#[utoipa::path(post, path = "/tools/dn-match", tag = "tools", request_body = DnMatchBody, responses((status = 200, description = "The DN and the first pattern it matches", body = DnMatchAnswer), crate::openapi::WriteErrors))]
pub(crate) async fn dn_match(JsonBody(body): JsonBody<DnMatchBody>) -> Result<Response> {
    validate::patterns(&body.patterns)?;
    let set = PatternSet::compile(&body.patterns)
        .map_err(|e| ApiError::invalid("invalid_dn_pattern", e.to_string()))?;
    let dn = match (body.dn, body.certificate_pem) {
        (Some(dn), None) => {
            Dn::parse(&dn).map_err(|e| ApiError::invalid("invalid_dn", e.to_string()))?
        }
        (None, Some(pem)) => {
            let certs = CertificateInfo::parse_pem_chain(&pem).map_err(|e| {
                ApiError::invalid(
                    "invalid_certificate",
                    format!("certificate_pem is not a PEM certificate: {e}."),
                )
            })?;
            certs
                .into_iter()
                .next()
                .ok_or_else(|| {
                    ApiError::invalid(
                        "invalid_certificate",
                        "certificate_pem holds no certificate.",
                    )
                })?
                .subject
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_body",
                "Give exactly one of dn and certificate_pem.",
            ))
        }
    };
    let first = set.first_match(&dn);
    let pattern = first.and_then(|i| body.patterns.get(i).cloned());
    Ok(Json(DnMatchAnswer {
        dn: dn.to_string(),
        matched: pattern.is_some(),
        pattern,
    })
    .into_response())
}

// ---------------------------------------------------------------- audit

/// `GET /api/v1/audit` (SPEC §14): `?limit=` (default 100, at most 1000) and
/// `?before=<id>`, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(("limit" = Option<i64>, Query, description = "At most this many records (default 100, at most 1000)"), ("before" = Option<i64>, Query, description = "Only records with a lower id")), responses((status = 200, description = "The newest records first", body = Vec<certgate_store::audit::AuditRecord>), crate::openapi::ReadErrors))]
pub(crate) async fn audit(
    State(st): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    use certgate_store::audit::DEFAULT_LIMIT;
    let q = Query::parse(query.as_deref());
    let limit = q.int("limit")?.unwrap_or(DEFAULT_LIMIT);
    let before = q.int("before")?;
    Ok(Json(st.store.audit_log(limit, before).await?).into_response())
}
