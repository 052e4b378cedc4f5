//! Metrics (via the `metrics` facade) and the per-request access log line (via
//! `tracing`, rendered as JSON by the binary's subscriber).

use std::sync::OnceLock;

use metrics::Counter;

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

/// The `certgate_requests_total{api,status}` handles of one API, made on first use, so the
/// hot path increments an atomic instead of building label strings and looking them up in
/// the registry on every request.
#[derive(Debug)]
pub struct RequestCounters {
    api: String,
    /// One slot per status code 100..=599.
    by_status: Box<[OnceLock<Counter>]>,
}

impl RequestCounters {
    /// Counters for the API named `api` (`""`: requests that matched no API).
    pub fn new(api: &str) -> RequestCounters {
        RequestCounters {
            api: api.to_owned(),
            by_status: (100..600).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Counts one answered request.
    pub fn record(&self, status: u16) {
        match self.by_status.get(usize::from(status).wrapping_sub(100)) {
            Some(slot) => slot
                .get_or_init(|| {
                    metrics::counter!(
                        "certgate_requests_total",
                        "api" => self.api.clone(),
                        "status" => status.to_string()
                    )
                })
                .increment(1),
            None => record_request(&self.api, status),
        }
    }
}

/// The counters of requests that matched no API.
pub(crate) fn unrouted_counters() -> &'static RequestCounters {
    static UNROUTED: OnceLock<RequestCounters> = OnceLock::new();
    UNROUTED.get_or_init(|| RequestCounters::new(""))
}

/// Sets `certgate_crl_next_update_seconds{issuer}` (Unix seconds) for every configured
/// CRL (SPEC §16): a value below `time()` is a lapsed CRL.
pub(crate) fn record_crl_next_updates(crls: &[String]) {
    for pem in crls {
        for (issuer, next) in certgate_pki::crl::next_updates_pem(pem) {
            metrics::gauge!("certgate_crl_next_update_seconds", "issuer" => issuer)
                .set(next as f64);
        }
    }
}

/// Counts one request passed by `revocation_failure = soft`:
/// `certgate_revocation_soft_pass_total{api}`.
pub(crate) fn record_soft_pass(api: &str) {
    metrics::counter!("certgate_revocation_soft_pass_total", "api" => api.to_owned()).increment(1);
}

/// Counts one identity whose forwarded headers exceed 16 KiB:
/// `certgate_forwarded_headers_too_large_total`.
pub(crate) fn record_forwarded_too_large() {
    metrics::counter!("certgate_forwarded_headers_too_large_total").increment(1);
}
