//! The client identity: a presented certificate chain, its parsed leaf and the verdict
//! it got from the chain judge under one trust generation (DESIGN request path step 2).
//!
//! In mtls mode one identity belongs to a connection (judged right after every
//! handshake, resumed or not, and re-judged when the trust store moves); in header mode
//! one belongs to a header value (cached by value and trust generation).

use std::sync::{Arc, Mutex, OnceLock};

use http::{HeaderName, HeaderValue};
use std::time::{Duration, Instant};

use certgate_pki::{CertificateInfo, DenyReason as PkiDeny, Verdict as PkiVerdict};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::evaluate::DenialReason;
use crate::snapshot::{CompiledPatterns, TrustState};

/// How long a verdict is reused before the chain is judged again (certificates and
/// anchors expire while connections and caches live).
pub(crate) const VERDICT_TTL: Duration = Duration::from_secs(60);

/// Entries kept in one DN-match cache (per identity: one per pattern set seen).
const DN_CACHE_ENTRIES: usize = 8;

/// Where a certificate came from; decides how an empty trust table is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    /// Presented in the TLS handshake: an empty trust table fails closed.
    Mtls,
    /// Forwarded by a trusted proxy: an empty trust table means dates and DN only.
    Header,
}

/// The outcome of judging a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityVerdict {
    /// The chain verified (or, header mode with an empty trust table, the dates hold).
    Trusted,
    /// The chain failed; the reason goes to logs and metrics only.
    Denied(DenialReason),
}

/// A presented client certificate and its verdict.
#[derive(Debug)]
pub struct ClientIdentity {
    /// The chain as presented, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The parsed leaf; `None` when it does not parse (then the verdict is a denial).
    pub info: Option<CertificateInfo>,
    /// The verdict under [`ClientIdentity::trust_generation`].
    pub verdict: IdentityVerdict,
    /// The trust generation the verdict was reached under.
    pub trust_generation: u64,
    /// Where the certificate came from.
    pub source: CertSource,
    /// When the verdict was reached.
    pub judged_at: Instant,
    /// SHA-256 over the chain, the key of verdict caches.
    pub chain_hash: [u8; 32],
    /// DN-match results per pattern-set id.
    dn_cache: Mutex<Vec<(u64, bool)>>,
    /// The SPEC §7 headers, rendered on first use.
    identity_headers: OnceLock<Vec<(HeaderName, HeaderValue)>>,
}

impl ClientIdentity {
    /// Parses the leaf of `chain` and judges the chain against `trust`.
    pub fn judge(
        chain: Vec<CertificateDer<'static>>,
        source: CertSource,
        trust: &TrustState,
    ) -> ClientIdentity {
        let info = chain
            .first()
            .and_then(|leaf| CertificateInfo::from_der(leaf).ok());
        let chain_hash = hash_chain(&chain);
        let verdict = judge_chain(trust, &chain, info.as_ref(), source);
        ClientIdentity {
            chain,
            info,
            verdict,
            trust_generation: trust.generation,
            source,
            judged_at: Instant::now(),
            chain_hash,
            dn_cache: Mutex::new(Vec::new()),
            identity_headers: OnceLock::new(),
        }
    }

    /// The identity of `chain` (leaf first) under `trust`, shared with every other
    /// connection that presented the same chain while the verdict is fresh: the leaf is
    /// parsed, judged and DN-matched once per trust generation (and TTL), not once per
    /// handshake. The chain is copied only when it is judged.
    pub fn shared(
        chain: &[CertificateDer<'_>],
        source: CertSource,
        trust: &TrustState,
    ) -> Arc<ClientIdentity> {
        let chain_hash = hash_chain(chain);
        if let Some(id) = trust.cached_identity(&chain_hash, source) {
            return id;
        }
        let owned: Vec<CertificateDer<'static>> =
            chain.iter().map(|c| c.clone().into_owned()).collect();
        let id = Arc::new(ClientIdentity::judge(owned, source, trust));
        trust.store_identity(id.clone());
        id
    }

    /// An identity for a header value that does not decode (always denied).
    pub fn malformed_header(trust_generation: u64) -> ClientIdentity {
        ClientIdentity {
            chain: Vec::new(),
            info: None,
            verdict: IdentityVerdict::Denied(DenialReason::MalformedHeader),
            trust_generation,
            source: CertSource::Header,
            judged_at: Instant::now(),
            chain_hash: [0; 32],
            dn_cache: Mutex::new(Vec::new()),
            identity_headers: OnceLock::new(),
        }
    }

    /// True when this verdict may not be used under `trust` any more: the trust store
    /// changed since, or the verdict is older than the TTL.
    pub fn is_stale(&self, trust: &TrustState) -> bool {
        self.trust_generation != trust.generation || self.judged_at.elapsed() >= VERDICT_TTL
    }

    /// The same chain judged again under `trust` (a new value; DN results start empty).
    pub fn rejudge(&self, trust: &TrustState) -> ClientIdentity {
        if self.chain.is_empty() {
            return ClientIdentity::malformed_header(trust.generation);
        }
        let verdict = judge_chain(trust, &self.chain, self.info.as_ref(), self.source);
        ClientIdentity {
            chain: self.chain.clone(),
            info: self.info.clone(),
            verdict,
            trust_generation: trust.generation,
            source: self.source,
            judged_at: Instant::now(),
            chain_hash: self.chain_hash,
            dn_cache: Mutex::new(Vec::new()),
            identity_headers: OnceLock::new(),
        }
    }

    /// The `X-Client-Cert-*` headers of SPEC §7 for this identity, rendered once and
    /// reused by every request (and connection) that forwards it. Empty when the leaf
    /// did not parse.
    pub fn identity_headers(&self) -> &[(HeaderName, HeaderValue)] {
        self.identity_headers.get_or_init(|| {
            self.info
                .as_ref()
                .map(crate::upstream::identity_header_values)
                .unwrap_or_default()
        })
    }

    /// Whether the subject DN matches a pattern of `patterns` (true for an empty set),
    /// cached per pattern-set id for the life of this identity.
    pub fn dn_matches(&self, patterns: &CompiledPatterns) -> bool {
        if patterns.set.is_empty() {
            return true;
        }
        let Some(info) = self.info.as_ref() else {
            return false;
        };
        if let Ok(cache) = self.dn_cache.lock() {
            if let Some((_, hit)) = cache.iter().find(|(id, _)| *id == patterns.id) {
                return *hit;
            }
        }
        let matched = patterns.set.first_match(&info.subject).is_some();
        if let Ok(mut cache) = self.dn_cache.lock() {
            if cache.len() >= DN_CACHE_ENTRIES {
                cache.remove(0);
            }
            cache.push((patterns.id, matched));
        }
        matched
    }
}

/// SHA-256 over the length-prefixed DER of every certificate of a chain.
pub(crate) fn hash_chain(chain: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for cert in chain {
        h.update((cert.len() as u64).to_be_bytes());
        h.update(cert.as_ref());
    }
    h.finalize().into()
}

/// Judges a chain (leaf first) against `trust`.
pub(crate) fn judge_chain(
    trust: &TrustState,
    chain: &[CertificateDer<'_>],
    info: Option<&CertificateInfo>,
    source: CertSource,
) -> IdentityVerdict {
    if !trust.available {
        return IdentityVerdict::Denied(DenialReason::TruststoreUnavailable);
    }
    let Some((leaf, intermediates)) = chain.split_first() else {
        return IdentityVerdict::Denied(not_parsed(source));
    };
    let Some(info) = info else {
        return IdentityVerdict::Denied(not_parsed(source));
    };
    match (&trust.judge, source) {
        (Some(judge), _) => match judge.verify(leaf, intermediates, UnixTime::now()) {
            PkiVerdict::Trusted => IdentityVerdict::Trusted,
            PkiVerdict::Denied(reason) => IdentityVerdict::Denied(map_deny(reason, source)),
        },
        // mtls with an empty trust table fails closed (SPEC §2).
        (None, CertSource::Mtls) => IdentityVerdict::Denied(DenialReason::Untrusted),
        // header with an empty trust table: the load balancer vouched for the chain;
        // the dates are still checked (SPEC §6).
        (None, CertSource::Header) => match dates_only(info, OffsetDateTime::now_utc()) {
            IdentityVerdict::Trusted if trust.unanchored_revocations.is_revoked(leaf) => {
                IdentityVerdict::Denied(DenialReason::Revoked)
            }
            v => v,
        },
    }
}

/// The date check of a certificate judged without a trust table.
pub(crate) fn dates_only(info: &CertificateInfo, now: OffsetDateTime) -> IdentityVerdict {
    if now < info.not_before {
        IdentityVerdict::Denied(DenialReason::NotYetValid)
    } else if now > info.not_after {
        IdentityVerdict::Denied(DenialReason::Expired)
    } else {
        IdentityVerdict::Trusted
    }
}

fn not_parsed(source: CertSource) -> DenialReason {
    match source {
        CertSource::Mtls => DenialReason::Untrusted,
        CertSource::Header => DenialReason::MalformedHeader,
    }
}

fn map_deny(reason: PkiDeny, source: CertSource) -> DenialReason {
    match reason {
        PkiDeny::Untrusted => DenialReason::Untrusted,
        PkiDeny::Expired => DenialReason::Expired,
        PkiDeny::NotYetValid => DenialReason::NotYetValid,
        PkiDeny::Revoked => DenialReason::Revoked,
        PkiDeny::Malformed => not_parsed(source),
    }
}
