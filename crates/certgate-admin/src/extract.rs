//! [`JsonBody`]: a JSON body extractor whose rejections use the admin API's error shape:
//! a body that is not JSON is 400 `malformed_body`, JSON that does not fit the expected
//! shape (missing, unknown or wrongly typed field) is 422 `invalid_body`, and a body over
//! the limit is 413 `payload_too_large`. (axum's own `Json` rejects in plain text.)
//! Also [`token_eq`], the bearer token comparison.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The largest request body accepted (a `trusted_dns` list of 1000 long patterns, or
/// CRLs, fit well within it).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A JSON request body deserialized into `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Parses `bytes` as JSON, then as `T`, with the admin API's rejections.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_value(bytes)?;
    from_value(value)
}

/// Parses `bytes` as any JSON value (400 when it is not JSON).
pub fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("The request body is not valid JSON: {e}."),
        )
    })
}

/// Deserializes a JSON value as `T` (422 when a field is missing, unknown or invalid).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::invalid("invalid_body", format!("The request body is invalid: {e}."))
    })
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A request body as bytes, with the admin API's rejections (413 over [`BODY_LIMIT`]).
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.into_response().status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("The request body is larger than {BODY_LIMIT} bytes."),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    "The request body could not be read.",
                )
            }
        })?;
        Ok(RawBody(bytes))
    }
}

/// Whether the presented bearer token equals the configured one, in time that depends
/// on neither token's content nor its length: both sides are hashed with SHA-256 and the
/// digests compared in constant time (a plain constant-time compare of the tokens
/// returns early on a length mismatch, which tells an attacker the token's length). An
/// empty configured token never matches.
pub fn token_eq(presented: &str, expected: &str) -> bool {
    let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let b: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    let same = bool::from(a.ct_eq(&b));
    same && !expected.is_empty()
}

#[cfg(test)]
mod tests {
    use super::token_eq;

    #[test]
    fn token_eq_matches_only_the_same_token() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(token_eq(token, token));
        assert!(!token_eq("0123456789abcdef0123456789abcdeX", token));
        assert!(!token_eq("0123456789abcdef", token));
        assert!(!token_eq(&format!("{token}0"), token));
        assert!(!token_eq("", token));
        assert!(!token_eq("", ""));
    }
}
