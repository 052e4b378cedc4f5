//! SPEC §15 over HTTP: `GET /api/v1/config` answers the whole configuration as one
//! document (JSON, or YAML with `Accept: application/yaml`), `PUT /api/v1/config` makes
//! the store equal to a document (JSON, or YAML by `Content-Type`) in one transaction and
//! answers what changed; with `?dry_run=true` it changes nothing and answers, beside those
//! lists, who would lose or gain access (SPEC §13). The rules live in
//! [`certgate_store::config`].

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use certgate_store::config::{ApplyAnswer, ConfigDocument};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::{from_value, parse_value, RawBody};
use crate::handlers::{access_changes, dry_run};
use crate::{Actor, AdminState};

/// The media type of the YAML form.
pub const YAML: &str = "application/yaml";

/// Whether a media-type header names YAML (`application/yaml`, `application/x-yaml`,
/// `text/yaml`, with or without parameters).
fn names_yaml(value: Option<&HeaderValue>) -> bool {
    value.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|part| {
            let media = part.split(';').next().unwrap_or("").trim();
            ["application/yaml", "application/x-yaml", "text/yaml"]
                .iter()
                .any(|y| media.eq_ignore_ascii_case(y))
        })
    })
}

/// Parses a document: YAML when `Content-Type` says so, JSON otherwise. Not parseable is
/// 400 `malformed_body`; a document of the wrong shape is 422 `invalid_body`.
fn parse_document(headers: &HeaderMap, body: &[u8]) -> Result<ConfigDocument, ApiError> {
    let value = if names_yaml(headers.get(header::CONTENT_TYPE)) {
        yaml_serde::from_slice::<serde_json::Value>(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("The request body is not valid YAML: {e}."),
            )
        })?
    } else {
        parse_value(body)?
    };
    from_value(value)
}

#[utoipa::path(get, path = "/config", tag = "config",
    responses(
        (status = 200, description = "The whole configuration (SPEC §15); YAML with `Accept: application/yaml`", content((ConfigDocument = "application/json"), (ConfigDocument = "application/yaml"))),
        crate::openapi::ReadErrors,
    ))]
pub(crate) async fn get_config(
    State(st): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = st.store.export_config().await?;
    if names_yaml(headers.get(header::ACCEPT)) {
        let text = yaml_serde::to_string(&doc).map_err(|e| {
            ApiError::internal(format!("the document does not encode as YAML: {e}"))
        })?;
        return Ok(([(header::CONTENT_TYPE, YAML)], text).into_response());
    }
    Ok(Json(doc).into_response())
}

#[utoipa::path(put, path = "/config", tag = "config",
    params(("dry_run" = Option<bool>, Query, description = "`true`: change nothing; answer the lists and who would lose or gain access (SPEC §13)")),
    request_body(content((ConfigDocument = "application/json"), (ConfigDocument = "application/yaml"))),
    responses(
        (status = 200, description = "What the document changed (with dry_run: what it would change, and who would lose or gain access)", body = ApplyAnswer),
        crate::openapi::WriteErrors,
    ))]
pub(crate) async fn put_config(
    State(st): State<AdminState>,
    Extension(actor): Extension<Actor>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let dry = dry_run(&query)?;
    let doc = parse_document(&headers, &body)?;
    let now = OffsetDateTime::now_utc();
    if dry {
        let (answer, next) = st
            .store
            .acting_as(actor.to_string())
            .rehearse(|s| async move { s.apply_config(&doc, now).await })
            .await?;
        let mut out = access_changes(&st, &next).await?;
        match serde_json::to_value(answer) {
            Ok(serde_json::Value::Object(lists)) => out.extend(lists),
            other => {
                return Err(ApiError::internal(format!(
                    "the apply answer does not encode as an object: {other:?}"
                )))
            }
        }
        return Ok(Json(serde_json::Value::Object(out)).into_response());
    }
    let answer = st
        .store
        .acting_as(actor.to_string())
        .apply_config(&doc, now)
        .await?;
    if !answer.is_empty() {
        st.after_write().await?;
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::names_yaml;
    use axum::http::HeaderValue;

    #[test]
    fn yaml_media_types_are_recognised_with_parameters_and_in_lists() {
        for yes in [
            "application/yaml",
            "application/x-yaml; charset=utf-8",
            "text/yaml",
            "application/json, Application/YAML;q=0.9",
        ] {
            assert!(names_yaml(Some(&HeaderValue::from_static(yes))), "{yes}");
        }
        for no in ["application/json", "text/plain", "application/yamlx", "*/*"] {
            assert!(!names_yaml(Some(&HeaderValue::from_static(no))), "{no}");
        }
        assert!(!names_yaml(None));
    }
}
