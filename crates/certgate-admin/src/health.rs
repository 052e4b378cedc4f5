//! `/healthz`, `/readyz` and `/metrics` (no token).
//!
//! `/metrics` renders these gauges, computed at scrape time from the store and the trust
//! store, then appends the Prometheus handle's output (the data plane's counters):
//!
//! - `certgate_config_generation`: the generation in the store;
//! - `certgate_trusted_certificates`: entries of the trust table;
//! - `certgate_truststore_status{status}`: 1 for the current status, 0 for the others;
//! - `certgate_trusted_certificate_expiry_seconds{certificate_id,name}`: seconds from now
//!   to the entry's notAfter (negative once expired);
//! - `certgate_truststore_earliest_expiry_seconds`: the smallest of those (absent with an
//!   empty trust table).
//!
//! They are rendered here rather than registered in the global recorder because a
//! recorder cannot forget a label set: an entry removed from the trust table would keep
//! exporting its last expiry forever.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use certgate_store::TrustStoreStatus;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::AdminState;

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "The process answers")))]
pub(crate) async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: 200 when the store answers and the trust store is `ok`, else 503 with
/// a short reason (the detail of a failure goes to the log: the endpoint needs no token).
///
/// Cheap enough for a probe every second: a `SELECT 1`, the configuration generation
/// and two `stat` calls; the configuration is read and the trust store verified again
/// only when the generation or the trust store files moved since the last look
/// ([`TrustStore::current`](certgate_store::TrustStore::current)).
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, description = "Ready to serve"), (status = 503, description = "Not ready; the body says why")))]
pub(crate) async fn readyz(State(st): State<AdminState>) -> Response {
    let unready = |reason: &str, truststore: Option<&str>| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "reason": reason,
                "truststore": truststore,
            })),
        )
            .into_response()
    };
    const STORE_DOWN: &str = "the store is unreachable";
    // SPEC §12: during a store outage a node that serves a configuration stays ready
    // (`"store": "unreachable"`); without one it is not ready.
    let (applied, source) = st
        .node()
        .map_or((None, crate::cluster::ConfigSource::Store), |n| n.applied());
    let (info, store) = match st.store().ping().await {
        Ok(()) => {
            let generation = match st.store().generation().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(error = %e, "readyz: the configuration generation cannot be read");
                    return unready(STORE_DOWN, None);
                }
            };
            let ts = st.truststore().clone();
            let cached = tokio::task::spawn_blocking(move || ts.current(generation))
                .await
                .ok()
                .flatten();
            let info = match cached {
                Some(info) => Ok(info),
                None => match st.store().load_config().await {
                    Ok(config) => st.check_truststore(config).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "readyz: the configuration cannot be read");
                        return unready("the configuration cannot be read", None);
                    }
                },
            };
            (info, "ok")
        }
        Err(e) => {
            tracing::warn!(error = %e, "readyz: the store is unreachable");
            match applied {
                Some(c) => (st.check_truststore((*c).clone()).await, "unreachable"),
                None => return unready(STORE_DOWN, None),
            }
        }
    };
    if store == "ok" {
        if let Some(reason) = st.node().and_then(|n| n.reload_failure()) {
            return unready(
                &format!("the store's configuration is not live on this node: {reason}"),
                info.as_ref().ok().map(|i| i.status.as_str()),
            );
        }
    }
    match info {
        Ok(info) if info.status == TrustStoreStatus::Ok => Json(serde_json::json!({
            "status": "ready",
            "truststore": info.status.as_str(),
            "store": store,
            "config_source": source.as_str(),
        }))
        .into_response(),
        Ok(info) => unready(
            &format!(
                "the trust store is {}: client certificates are rejected until it is recovered",
                info.status
            ),
            Some(info.status.as_str()),
        ),
        // Logged where it was made.
        Err(_) => unready("the trust store cannot be checked", None),
    }
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()), responses((status = 200, description = "Prometheus text", content_type = "text/plain"), (status = 500, description = "`internal_error`", body = crate::openapi::ErrorAnswer)))]
pub(crate) async fn metrics(State(st): State<AdminState>) -> Result<Response, ApiError> {
    let config = st.store.load_config().await?;
    let ts = st.check_truststore(config.clone()).await?;
    let now = OffsetDateTime::now_utc();
    let mut out = String::new();
    gauge_header(
        &mut out,
        "certgate_config_generation",
        "The configuration generation in the store.",
    );
    let _ = writeln!(out, "certgate_config_generation {}", config.generation);
    gauge_header(
        &mut out,
        "certgate_trusted_certificates",
        "Entries of the gateway trust table.",
    );
    let _ = writeln!(
        out,
        "certgate_trusted_certificates {}",
        config.trusted_certificates.len()
    );
    gauge_header(
        &mut out,
        "certgate_truststore_status",
        "1 for the trust store's current status, 0 for the others.",
    );
    for s in TrustStoreStatus::ALL {
        let _ = writeln!(
            out,
            "certgate_truststore_status{{status=\"{}\"}} {}",
            s.as_str(),
            u8::from(s == ts.status)
        );
    }
    gauge_header(
        &mut out,
        "certgate_trusted_certificate_expiry_seconds",
        "Seconds until the trusted certificate's notAfter (negative once expired).",
    );
    let mut earliest: Option<i64> = None;
    for t in &config.trusted_certificates {
        let secs = (t.not_after - now).whole_seconds();
        earliest = Some(earliest.map_or(secs, |e| e.min(secs)));
        let _ = writeln!(
            out,
            "certgate_trusted_certificate_expiry_seconds{{certificate_id=\"{}\",name=\"{}\"}} {secs}",
            t.certificate_id,
            escape_label(&t.name)
        );
    }
    gauge_header(
        &mut out,
        "certgate_truststore_earliest_expiry_seconds",
        "Seconds until the earliest notAfter of the trust table.",
    );
    if let Some(e) = earliest {
        let _ = writeln!(out, "certgate_truststore_earliest_expiry_seconds {e}");
    }
    if let Some(handle) = &st.metrics {
        out.push_str(&handle.render());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Escapes a label value as the Prometheus text format requires.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}
