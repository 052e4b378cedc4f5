//! The OpenAPI 3.1 document of the admin API (SPEC §8 `GET /api/v1/openapi.json`).
//!
//! The document is generated, not written: every handler carries a `#[utoipa::path]`
//! annotation next to its code, the JSON shapes derive `utoipa::ToSchema`, and the router
//! itself is built from those annotations ([`crate::router`] uses `utoipa_axum`'s
//! `OpenApiRouter`), so a route cannot exist without its entry in the document. This
//! module owns the parts no handler owns: the document's info, the bearer security scheme,
//! the error answer's schema and the shared error responses.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The error answer of every endpoint: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorAnswer {
    /// What went wrong.
    error: ErrorDetail,
}

/// The `error` object of an [`ErrorAnswer`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// snake_case, stable (SPEC §8).
    code: String,
    /// A sentence for the user.
    message: String,
}

/// The answer of a dry run (SPEC §13 `?dry_run=true`): the inventory's clients whose last
/// request to an API would change status class, each an inventory record plus `api`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunAnswer {
    /// Clients answered 2xx now that would be refused (401/403) after the change.
    would_lose_access: Vec<serde_json::Value>,
    /// Clients refused now that would be answered 2xx after the change.
    would_gain_access: Vec<serde_json::Value>,
}

/// The errors every `/api/v1` read can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only the variants' types and attributes are read (by the derive).
pub(crate) enum ReadErrors {
    /// No or a wrong bearer token.
    #[response(status = 401, description = "`unauthorized`: no valid bearer token")]
    Unauthorized(ErrorAnswer),
    /// The id names nothing.
    #[response(status = 404, description = "`not_found`")]
    NotFound(ErrorAnswer),
    /// The store failed; the detail is in the node's log.
    #[response(status = 500, description = "`internal_error`")]
    Internal(ErrorAnswer),
}

/// The errors every `/api/v1` write can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only the variants' types and attributes are read (by the derive).
pub(crate) enum WriteErrors {
    /// Malformed JSON, a wrong type or an unknown field.
    #[response(
        status = 400,
        description = "`invalid_json` and other malformed bodies"
    )]
    BadRequest(ErrorAnswer),
    /// No or a wrong bearer token (or, from the console, a missing CSRF token).
    #[response(status = 401, description = "`unauthorized`: no valid bearer token")]
    Unauthorized(ErrorAnswer),
    /// The id names nothing.
    #[response(status = 404, description = "`not_found`")]
    NotFound(ErrorAnswer),
    /// A name or base path already taken, or an object still in use.
    #[response(status = 409, description = "a conflict with the stored configuration")]
    Conflict(ErrorAnswer),
    /// A value the rules of SPEC §8 refuse; the code names the rule.
    #[response(
        status = 422,
        description = "a refused value (the code names the rule)"
    )]
    Invalid(ErrorAnswer),
    /// The store failed, or the change could not be made live; nothing changed.
    #[response(status = 500, description = "`internal_error`")]
    Internal(ErrorAnswer),
}

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "certgate admin API",
        description = "Configuration of certgate's client certificate authentication \
                       (SPEC §8, §11-§15). Every /api/v1 endpoint needs \
                       `Authorization: Bearer <token>` or a console session.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
pub(crate) struct ApiDoc;

/// Adds the `bearer` HTTP security scheme the document's `security` names.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The whole document, generated once from the router's annotations.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = crate::routes().split_for_parts();
        // Serialising a document of plain strings and maps cannot fail; an empty object
        // would still be valid JSON if it ever did.
        doc.to_json().unwrap_or_else(|_| "{}".to_string())
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"),
        ReadErrors
    )
)]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
