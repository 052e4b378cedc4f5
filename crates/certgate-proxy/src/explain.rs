//! SPEC §13 explain: one request judged against a snapshot by the data plane's own code
//! ([`crate::route::normalize_target`], [`crate::route::RouteTable::lookup`],
//! [`ClientIdentity::judge`], [`evaluate`]), with the six steps reported. Nothing here
//! runs on the hot path: the trace is read off the real decision and the identity the
//! real judge produced, so explain and a real request cannot disagree.
//!
//! Choices SPEC leaves open, written down here and in docs/ADMIN_API.md:
//! - explain has no TLS handshake: the SNI is the optional `sni` of the input (an
//!   addition to SPEC's fields). Without it there is no SNI, so no §16 Host check (as for
//!   a client that connects by IP); with it, a `host` naming another host gets the 421
//!   `misdirected_request` a real request would get;
//! - header mode: the certificate is taken as forwarded by a trusted proxy (explain has
//!   no peer), so `untrusted_proxy` is never reported;
//! - a proxied request is reported as status 200 (the upstream's own status is not
//!   known without sending it).

use http::{Method, Request, StatusCode};
use rustls_pki_types::CertificateDer;
use serde::Serialize;

use certgate_store::model::{CertAuthMode, ValidationFailure};

use crate::evaluate::{evaluate, Decision, DenialReason, Presented};
use crate::identity::{dates_only, CertSource, ClientIdentity, IdentityVerdict};
use crate::snapshot::Snapshot;

/// What to explain: a request as a client would send it.
#[derive(Debug, Clone, Default)]
pub struct ExplainRequest {
    /// The request target (path and optional query).
    pub path: String,
    /// The method; `GET` when absent.
    pub method: Option<Method>,
    /// The `Host` header.
    pub host: Option<String>,
    /// The TLS SNI the client would send (`None`: none, as when connecting by IP).
    pub sni: Option<String>,
    /// The certificate chain, leaf first; `None`: no certificate presented.
    pub chain: Option<Vec<CertificateDer<'static>>>,
}

/// The API a request routed to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiRef {
    /// The API's id.
    pub id: i64,
    /// The API's name.
    pub name: String,
}

/// The effective settings of SPEC §3 step 2.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Effective {
    /// Always the gateway's mode.
    pub mode: CertAuthMode,
    /// The API's override, else the gateway's.
    pub required: bool,
    /// The API's override list, else the gateway's.
    pub trusted_dns: Vec<String>,
}

/// The result of one step.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// The check passed.
    Pass,
    /// The check failed (the reason names this step).
    Fail,
    /// The check did not run.
    Skip,
}

/// One step of the evaluation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// `route`, `certificate`, `chain`, `validity`, `revocation` or `dn`.
    pub check: &'static str,
    /// Pass, fail or skip.
    pub result: StepResult,
    /// A sentence for the operator.
    pub detail: String,
}

/// The SPEC §13 explain answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    /// The status a real request would get (200 stands for "proxied").
    pub status: u16,
    /// The §3 reason of a denial, else `None`.
    pub reason: Option<&'static str>,
    /// `http`, or `tls_handshake_failure` when mtls with `validation_failure =
    /// handshake` refuses the chain in the handshake.
    pub outcome: &'static str,
    /// The routed API.
    pub api: Option<ApiRef>,
    /// The effective settings.
    pub effective: Effective,
    /// The leaf's canonical subject DN.
    pub dn: Option<String>,
    /// The first `trusted_dns` pattern that matches the DN.
    pub matched_pattern: Option<String>,
    /// The six steps, in SPEC order.
    pub steps: Vec<Step>,
}

const CERT_STEPS: [&str; 5] = ["certificate", "chain", "validity", "revocation", "dn"];

/// Explains `req` under `snapshot` (SPEC §13). Pure: caches, counters and the snapshot
/// are left as they were.
pub fn explain(snapshot: &Snapshot, req: &ExplainRequest) -> Explanation {
    let method = req.method.clone().unwrap_or(Method::GET);
    let mut target = Request::builder().method(method);
    if let Some(host) = &req.host {
        target = target.header(http::header::HOST, host.as_str());
    }
    let built = target.uri(req.path.as_str()).body(());
    let normalized = built.map_err(|e| e.to_string()).and_then(|mut r| {
        match crate::route::normalize_target(&mut r) {
            Ok(()) => Ok(r),
            Err(e) => Err(format!("the request target is refused: {e}")),
        }
    });
    let request = match normalized {
        Ok(r) => r,
        Err(detail) => return refused_target(snapshot, detail),
    };
    let path = request.uri().path().to_owned();
    let route = snapshot.routes.lookup(&path).cloned();
    let (required, patterns) = match route.as_deref() {
        Some(r) => (r.required, &r.patterns),
        None => (snapshot.required, &snapshot.gateway_patterns),
    };
    let effective = Effective {
        mode: snapshot.mode,
        required,
        trusted_dns: patterns
            .set
            .patterns()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    };
    let route_step = match route.as_deref() {
        Some(r) => step(
            "route",
            StepResult::Pass,
            format!("API {:?} (base path {})", r.name, r.base_path),
        ),
        None => step(
            "route",
            StepResult::Fail,
            format!("no API matches {path}; the gateway's settings apply, then 404"),
        ),
    };
    let api = route.as_deref().map(|r| ApiRef {
        id: r.api_id,
        name: r.name.clone(),
    });

    // SPEC §16: a Host other than the SNI is refused before any certificate check.
    if snapshot.sni_host_check
        && req
            .sni
            .as_deref()
            .is_some_and(|sni| !crate::server::host_is(&request, sni))
    {
        let mut steps = vec![route_step];
        for check in CERT_STEPS {
            steps.push(step(
                check,
                StepResult::Skip,
                "not checked: the Host names another host than the SNI".into(),
            ));
        }
        return Explanation {
            status: StatusCode::MISDIRECTED_REQUEST.as_u16(),
            reason: Some(DenialReason::MisdirectedRequest.as_str()),
            outcome: "http",
            api,
            effective,
            dn: None,
            matched_pattern: None,
            steps,
        };
    }

    // SPEC §3 step 3: the certificate, judged by the data plane's own judge.
    let source = match snapshot.mode {
        CertAuthMode::Header => CertSource::Header,
        _ => CertSource::Mtls,
    };
    let identity = match (&req.chain, snapshot.mode) {
        (_, CertAuthMode::None) | (None, _) => None,
        (Some(chain), _) => Some(ClientIdentity::judge(
            chain.clone(),
            source,
            &snapshot.trust,
        )),
    };
    let presented = match &identity {
        Some(id) => Presented::Certificate(id),
        None => Presented::None,
    };
    let decision = evaluate(snapshot, route.as_deref(), presented);

    let dn = identity
        .as_ref()
        .and_then(|id| id.info.as_ref())
        .map(|i| i.subject.to_string());
    let matched_pattern = identity
        .as_ref()
        .and_then(|id| id.info.as_ref())
        .and_then(|i| patterns.set.first_matching(&i.subject))
        .map(|p| p.as_str().to_owned());

    let mut steps = vec![route_step];
    let mut outcome = "http";
    if snapshot.mode == CertAuthMode::None {
        for check in CERT_STEPS {
            steps.push(step(
                check,
                StepResult::Skip,
                "mode none: certificates are not checked".into(),
            ));
        }
    } else if let Some(id) = &identity {
        let failed_at = match id.verdict {
            IdentityVerdict::Denied(reason) => Some((
                failing_step(reason, id, snapshot.trust.now().as_secs()),
                reason,
            )),
            IdentityVerdict::Trusted => None,
        };
        if failed_at.is_some()
            && snapshot.mode == CertAuthMode::Mtls
            && snapshot.validation_failure == ValidationFailure::Handshake
        {
            outcome = "tls_handshake_failure";
        }
        let mut done = false;
        for check in CERT_STEPS {
            let s = if done {
                step(
                    check,
                    StepResult::Skip,
                    "not checked after a failure".into(),
                )
            } else if let Some((_, reason)) = failed_at.filter(|(at, _)| *at == check) {
                done = true;
                step(check, StepResult::Fail, fail_detail(reason))
            } else if check == "dn" {
                dn_step(
                    &decision,
                    dn.as_deref(),
                    matched_pattern.as_deref(),
                    &effective,
                )
            } else {
                step(check, StepResult::Pass, pass_detail(check, snapshot))
            };
            steps.push(s);
        }
    } else {
        let s = if required {
            step(
                "certificate",
                StepResult::Fail,
                "no certificate presented, and one is required".into(),
            )
        } else {
            step(
                "certificate",
                StepResult::Pass,
                "no certificate presented; none is required".into(),
            )
        };
        steps.push(s);
        for check in &CERT_STEPS[1..] {
            steps.push(step(check, StepResult::Skip, "no certificate".into()));
        }
    }

    let (status, reason) = match decision {
        Decision::Proxy => (StatusCode::OK, None),
        Decision::NotFound => (StatusCode::NOT_FOUND, None),
        Decision::Deny { status, reason } => (status, Some(reason.as_str())),
    };
    Explanation {
        status: status.as_u16(),
        reason,
        outcome,
        api,
        effective,
        dn,
        matched_pattern,
        steps,
    }
}

fn step(check: &'static str, result: StepResult, detail: String) -> Step {
    Step {
        check,
        result,
        detail,
    }
}

/// The step a reason names (SPEC §13); an `expired` / `not_yet_valid` whose leaf's own
/// dates hold is the chain's (an anchor or intermediate).
fn failing_step(reason: DenialReason, id: &ClientIdentity, now: u64) -> &'static str {
    match reason {
        DenialReason::NoCertificate
        | DenialReason::MalformedHeader
        | DenialReason::UntrustedProxy
        | DenialReason::MisdirectedRequest => "certificate",
        DenialReason::Untrusted | DenialReason::TruststoreUnavailable => {
            if id.info.is_none() {
                "certificate"
            } else {
                "chain"
            }
        }
        DenialReason::Expired | DenialReason::NotYetValid => {
            match id.info.as_ref().map(|i| dates_only(i, now).0) {
                Some(IdentityVerdict::Trusted) => "chain",
                _ => "validity",
            }
        }
        DenialReason::Revoked | DenialReason::RevocationUnknown => "revocation",
        DenialReason::DnMismatch => "dn",
    }
}

fn fail_detail(reason: DenialReason) -> String {
    match reason {
        DenialReason::MalformedHeader => "the certificate does not decode".into(),
        DenialReason::Untrusted => {
            "the chain does not verify against the trust store (no trusted anchor)".into()
        }
        DenialReason::TruststoreUnavailable => {
            "the node's trust store is unavailable: every certificate fails closed".into()
        }
        DenialReason::Expired => "a certificate of the chain is past its notAfter".into(),
        DenialReason::NotYetValid => "a certificate of the chain is before its notBefore".into(),
        DenialReason::Revoked => "a CRL revokes the certificate".into(),
        DenialReason::RevocationUnknown => "the revocation status cannot be learned".into(),
        other => format!("refused: {}", other.as_str()),
    }
}

fn pass_detail(check: &str, snapshot: &Snapshot) -> String {
    match check {
        "certificate" => "a certificate was presented and parses".into(),
        "chain" if snapshot.trust.judge.is_none() => {
            "empty trust table: the load balancer vouched for the chain".into()
        }
        "chain" => format!(
            "the chain verifies against the trust store ({} anchors)",
            snapshot.trust.anchors
        ),
        "validity" => "every certificate of the chain is within its dates".into(),
        _ => "not revoked".into(),
    }
}

fn dn_step(
    decision: &Decision,
    dn: Option<&str>,
    matched: Option<&str>,
    effective: &Effective,
) -> Step {
    let dn = dn.unwrap_or("");
    match decision {
        Decision::Deny {
            reason: DenialReason::DnMismatch,
            ..
        } => step(
            "dn",
            StepResult::Fail,
            format!(
                "{dn} matches none of the {} trusted DN patterns",
                effective.trusted_dns.len()
            ),
        ),
        _ if effective.trusted_dns.is_empty() => {
            step("dn", StepResult::Pass, "no DN restriction".into())
        }
        _ => step(
            "dn",
            StepResult::Pass,
            format!("{dn} matches {}", matched.unwrap_or("")),
        ),
    }
}

fn refused_target(snapshot: &Snapshot, detail: String) -> Explanation {
    let mut steps = vec![step("route", StepResult::Fail, detail)];
    for check in CERT_STEPS {
        steps.push(step(
            check,
            StepResult::Skip,
            "the target is refused".into(),
        ));
    }
    Explanation {
        status: StatusCode::BAD_REQUEST.as_u16(),
        reason: None,
        outcome: "http",
        api: None,
        effective: Effective {
            mode: snapshot.mode,
            required: snapshot.required,
            trusted_dns: Vec::new(),
        },
        dn: None,
        matched_pattern: None,
        steps,
    }
}
