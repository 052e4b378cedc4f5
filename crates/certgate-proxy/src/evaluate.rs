//! Request evaluation (SPEC §3 steps 2-5): a pure function from the snapshot, the route
//! and the certificate to a [`Decision`]. No I/O; the response never says which check
//! failed, the [`DenialReason`] goes to the log and the denial counter only.

use http::StatusCode;

use certgate_store::model::CertAuthMode;

use crate::identity::{ClientIdentity, IdentityVerdict};
use crate::route::Route;
use crate::snapshot::Snapshot;

/// Why a request was denied: the `reason` label of `certgate_auth_denied_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// Required, and no certificate was presented.
    NoCertificate,
    /// The chain does not verify against the trust store (or the trust table is empty).
    Untrusted,
    /// The certificate (or a chain member) is past notAfter.
    Expired,
    /// The certificate (or a chain member) is before notBefore.
    NotYetValid,
    /// A CRL revokes the certificate.
    Revoked,
    /// The certificate header does not decode.
    MalformedHeader,
    /// `trusted_dns` is non-empty and no pattern matches the subject DN.
    DnMismatch,
    /// Required, and the certificate header came from a peer outside `trusted_proxies`.
    UntrustedProxy,
    /// The node's trust store is not usable: every certificate fails closed.
    TruststoreUnavailable,
    /// A CRL for a certificate of the chain is past its nextUpdate, so the revocation
    /// status cannot be learned (SPEC §16, `revocation_failure = strict`).
    RevocationUnknown,
    /// mtls with `sni_host_check`: the request's Host names another host than the TLS
    /// SNI (SPEC §16; 421, counted under this reason, beyond SPEC §3's list).
    MisdirectedRequest,
}

impl DenialReason {
    /// The label value of SPEC §3.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::NoCertificate => "no_certificate",
            DenialReason::Untrusted => "untrusted",
            DenialReason::Expired => "expired",
            DenialReason::NotYetValid => "not_yet_valid",
            DenialReason::Revoked => "revoked",
            DenialReason::MalformedHeader => "malformed_header",
            DenialReason::DnMismatch => "dn_mismatch",
            DenialReason::UntrustedProxy => "untrusted_proxy",
            DenialReason::TruststoreUnavailable => "truststore_unavailable",
            DenialReason::RevocationUnknown => "revocation_unknown",
            DenialReason::MisdirectedRequest => "misdirected_request",
        }
    }
}

/// The certificate of a request, as step 3 of SPEC §3 found it.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// No certificate.
    None,
    /// A certificate header arrived from a peer that is not a trusted proxy; it was
    /// removed and is treated as absent.
    FromUntrustedProxy,
    /// A certificate (mtls handshake or trusted header), judged.
    Certificate(&'a ClientIdentity),
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Proxy to the route's upstream.
    Proxy,
    /// Auth passed but no API matches: 404.
    NotFound,
    /// 401 or 403.
    Deny {
        /// 401 (no certificate) or 403 (a certificate that fails).
        status: StatusCode,
        /// For the log and the counter.
        reason: DenialReason,
    },
}

impl Decision {
    fn deny(status: StatusCode, reason: DenialReason) -> Decision {
        Decision::Deny { status, reason }
    }
}

/// Evaluates one request (SPEC §3 steps 2-5). `route` is the routed API or `None` (the
/// gateway settings still apply, then 404). The identity's verdict must be current for
/// the snapshot's trust generation and clock (the caller re-judges stale identities,
/// see [`ClientIdentity::is_stale`]).
pub fn evaluate(snapshot: &Snapshot, route: Option<&Route>, presented: Presented<'_>) -> Decision {
    let pass = if route.is_some() {
        Decision::Proxy
    } else {
        Decision::NotFound
    };
    if snapshot.mode == CertAuthMode::None {
        return pass;
    }
    // Step 2: effective settings.
    let (required, patterns) = match route {
        Some(r) => (r.required, &r.patterns),
        None => (snapshot.required, &snapshot.gateway_patterns),
    };
    // Steps 3-4.
    let identity = match presented {
        Presented::Certificate(id) => id,
        Presented::None if required => {
            return Decision::deny(StatusCode::UNAUTHORIZED, DenialReason::NoCertificate)
        }
        Presented::FromUntrustedProxy if required => {
            return Decision::deny(StatusCode::UNAUTHORIZED, DenialReason::UntrustedProxy)
        }
        Presented::None | Presented::FromUntrustedProxy => return pass,
    };
    // Step 5: a presented certificate must be valid, required or not.
    if let IdentityVerdict::Denied(reason) = identity.verdict {
        return Decision::deny(StatusCode::FORBIDDEN, reason);
    }
    if !identity.dn_matches(patterns) {
        return Decision::deny(StatusCode::FORBIDDEN, DenialReason::DnMismatch);
    }
    pass
}
