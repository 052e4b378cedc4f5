//! The data plane's own responses: the JSON error bodies of SPEC §3 and the body type
//! shared with proxied responses.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

/// Errors of a response body (ours never fail; upstream bodies can).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the proxy sends.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// The message of SPEC §3's table for a status.
pub fn message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request.",
        401 => "Certificate authorization required to access the resource.",
        403 => "Certificate validation failed. You are not allowed to access the resource.",
        404 => "No API matches the requested path.",
        421 => "Misdirected request.",
        502 => "The upstream service could not be reached.",
        501 => "Not implemented.",
        504 => "The upstream service did not answer in time.",
        _ => status.canonical_reason().unwrap_or("Error."),
    }
}

/// The exact body `{"code": <status>, "message": "<message>"}`.
pub fn error_body(status: StatusCode) -> String {
    format!(
        "{{\"code\": {}, \"message\": \"{}\"}}",
        status.as_u16(),
        message(status)
    )
}

/// A JSON error response with `Content-Type: application/json`.
pub fn error_response(status: StatusCode) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(error_body(status)))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_exact() {
        assert_eq!(
            error_body(StatusCode::UNAUTHORIZED),
            r#"{"code": 401, "message": "Certificate authorization required to access the resource."}"#
        );
        assert_eq!(
            error_body(StatusCode::FORBIDDEN),
            r#"{"code": 403, "message": "Certificate validation failed. You are not allowed to access the resource."}"#
        );
        assert_eq!(
            error_body(StatusCode::NOT_FOUND),
            r#"{"code": 404, "message": "No API matches the requested path."}"#
        );
        assert_eq!(
            error_body(StatusCode::BAD_GATEWAY),
            r#"{"code": 502, "message": "The upstream service could not be reached."}"#
        );
        assert_eq!(
            error_body(StatusCode::BAD_REQUEST),
            r#"{"code": 400, "message": "Bad request."}"#
        );
        assert_eq!(
            error_body(StatusCode::NOT_IMPLEMENTED),
            r#"{"code": 501, "message": "Not implemented."}"#
        );
        assert_eq!(
            error_body(StatusCode::GATEWAY_TIMEOUT),
            r#"{"code": 504, "message": "The upstream service did not answer in time."}"#
        );
    }
}
