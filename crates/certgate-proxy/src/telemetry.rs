//! Metrics (via the `metrics` facade) and the per-request access log line (via
//! `tracing`, rendered as JSON by the binary's subscriber).

use crate::evaluate::DenialReason;

/// Counts one denial: `certgate_auth_denied_total{reason,api}`. Handshake refusals
/// carry an empty `api` (no request was read, so no API was routed).
pub(crate) fn record_denial(reason: DenialReason, api: &str) {
    metrics::counter!(
        "certgate_auth_denied_total",
        "reason" => reason.as_str(),
        "api" => api.to_owned()
    )
    .increment(1);
}

/// Counts one answered request: `certgate_requests_total{api,status}`.
pub(crate) fn record_request(api: &str, status: u16) {
    metrics::counter!(
        "certgate_requests_total",
        "api" => api.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
}
