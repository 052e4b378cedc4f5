//! The client identity: a presented certificate chain, its parsed leaf and the verdict
//! it got from the chain judge under one trust generation (DESIGN request path step 2),
//! with the instant that verdict stops being true, and the bounded caches of verdicts.
//!
//! In mtls mode one identity belongs to a connection (judged right after every
//! handshake, resumed or not, and judged again when the trust store moves or its
//! `valid_until` passes); in header mode one belongs to a header value.
//!
//! [`VerdictCache`] keeps accepted identities whole (connections of one client share
//! the parse, the verdict, the DN-match results and the rendered headers) and refused
//! ones as (key, reason, end) only: a flood of distinct refused chains costs a few dozen
//! bytes each, never the chain. Both halves are bounded by entries, the accepted half by
//! bytes too.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use http::{HeaderName, HeaderValue};

use certgate_pki::{CertificateInfo, DenyReason as PkiDeny, Dn, Verdict as PkiVerdict, FOREVER};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::evaluate::DenialReason;
use crate::snapshot::{CompiledPatterns, TrustState};

/// Entries kept in one DN-match cache (per identity: one per pattern set seen).
const DN_CACHE_ENTRIES: usize = 8;

/// Where a certificate came from; decides how an empty trust table is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The last second (Unix time) the verdict holds: the earliest notAfter of leaf,
    /// chain used and anchor, and the second before the next nextUpdate of a CRL of the
    /// path (for a refusal: the leaf's next date). Past it the chain is judged again.
    pub valid_until: u64,
    /// SHA-256 over the chain, the key of verdict caches.
    pub chain_hash: [u8; 32],
    /// The chain passed only because `revocation_failure = soft` (a configured CRL of
    /// its path is past nextUpdate): every request it serves is counted.
    pub revocation_soft_pass: bool,
    /// DN-match results per pattern-set id.
    dn_cache: Mutex<Vec<(u64, bool)>>,
    /// The SPEC §7 headers, rendered on first use.
    identity_headers: OnceLock<Vec<(HeaderName, HeaderValue)>>,
    /// The SPEC §16 `xfcc` header, rendered on first use.
    xfcc_header: OnceLock<Vec<(HeaderName, HeaderValue)>>,
    /// The SPEC §16 `rfc9440` headers, rendered on first use.
    rfc9440_headers: OnceLock<Vec<(HeaderName, HeaderValue)>>,
}

impl ClientIdentity {
    /// Parses the leaf of `chain` and judges the chain against `trust` at the trust
    /// state's clock.
    pub fn judge(
        chain: Vec<CertificateDer<'static>>,
        source: CertSource,
        trust: &TrustState,
    ) -> ClientIdentity {
        let now = trust.now();
        let chain_hash = hash_chain(&chain);
        Self::judge_hashed(chain, chain_hash, source, trust, now)
    }

    fn judge_hashed(
        chain: Vec<CertificateDer<'static>>,
        chain_hash: [u8; 32],
        source: CertSource,
        trust: &TrustState,
        now: UnixTime,
    ) -> ClientIdentity {
        let info = chain
            .first()
            .and_then(|leaf| CertificateInfo::from_der(leaf).ok());
        let (verdict, valid_until) = judge_chain(trust, &chain, info.as_ref(), source, now);
        Self::assemble(chain, info, chain_hash, source, trust, verdict, valid_until)
    }

    fn assemble(
        chain: Vec<CertificateDer<'static>>,
        info: Option<CertificateInfo>,
        chain_hash: [u8; 32],
        source: CertSource,
        trust: &TrustState,
        verdict: IdentityVerdict,
        valid_until: impl Into<Until>,
    ) -> ClientIdentity {
        let valid_until = valid_until.into();
        ClientIdentity {
            chain,
            info,
            verdict,
            trust_generation: trust.generation,
            source,
            valid_until: valid_until.until,
            chain_hash,
            revocation_soft_pass: valid_until.soft_pass,
            dn_cache: Mutex::new(Vec::new()),
            identity_headers: OnceLock::new(),
            xfcc_header: OnceLock::new(),
            rfc9440_headers: OnceLock::new(),
        }
    }

    /// The identity of `chain` (leaf first) under `trust`, shared with every other
    /// connection that presented the same chain while the verdict holds: the leaf is
    /// parsed, judged and DN-matched once per trust generation and `valid_until`, not
    /// once per handshake. A chain refused before is not judged again (the cache kept
    /// its verdict, not the chain): the identity then is this connection's own copy.
    pub fn shared(
        chain: &[CertificateDer<'_>],
        source: CertSource,
        trust: &TrustState,
    ) -> Arc<ClientIdentity> {
        let now = trust.now();
        let chain_hash = hash_chain(chain);
        let key = (chain_hash, source);
        let owned = || -> Vec<CertificateDer<'static>> {
            chain.iter().map(|c| c.clone().into_owned()).collect()
        };
        match trust.identities.get(&key, trust.generation, now.as_secs()) {
            Some(Cached::Trusted(id)) => id,
            Some(Cached::Refused(refused)) => Arc::new(Self::from_refused(
                owned(),
                chain_hash,
                source,
                trust,
                refused,
            )),
            None => {
                let id = Arc::new(Self::judge_hashed(owned(), chain_hash, source, trust, now));
                trust.identities.put(key, &id);
                id
            }
        }
    }

    /// The identity of a chain whose refusal a cache kept: parsed (for the log), not
    /// judged again.
    pub(crate) fn from_refused(
        chain: Vec<CertificateDer<'static>>,
        chain_hash: [u8; 32],
        source: CertSource,
        trust: &TrustState,
        refused: Refused,
    ) -> ClientIdentity {
        let info = chain
            .first()
            .and_then(|leaf| CertificateInfo::from_der(leaf).ok());
        Self::assemble(
            chain,
            info,
            chain_hash,
            source,
            trust,
            IdentityVerdict::Denied(refused.reason),
            refused.valid_until,
        )
    }

    /// The same chain judged at `now` (a header value seen for the first time).
    pub(crate) fn judge_at(
        chain: Vec<CertificateDer<'static>>,
        source: CertSource,
        trust: &TrustState,
        now: UnixTime,
    ) -> ClientIdentity {
        let chain_hash = hash_chain(&chain);
        Self::judge_hashed(chain, chain_hash, source, trust, now)
    }

    /// An identity for a header value that does not decode (always denied).
    pub fn malformed_header(trust_generation: u64) -> ClientIdentity {
        ClientIdentity {
            chain: Vec::new(),
            info: None,
            verdict: IdentityVerdict::Denied(DenialReason::MalformedHeader),
            trust_generation,
            source: CertSource::Header,
            valid_until: FOREVER,
            chain_hash: [0; 32],
            revocation_soft_pass: false,
            dn_cache: Mutex::new(Vec::new()),
            identity_headers: OnceLock::new(),
            xfcc_header: OnceLock::new(),
            rfc9440_headers: OnceLock::new(),
        }
    }

    /// True when this verdict may not be used under `trust` any more: the trust store
    /// changed since, or the trust state's clock is past [`ClientIdentity::valid_until`].
    pub fn is_stale(&self, trust: &TrustState) -> bool {
        self.is_stale_at(trust, trust.now().as_secs())
    }

    /// [`ClientIdentity::is_stale`] at `now` (Unix seconds): two comparisons.
    #[inline]
    pub fn is_stale_at(&self, trust: &TrustState, now: u64) -> bool {
        self.trust_generation != trust.generation || now > self.valid_until
    }

    /// The same chain judged again under `trust` (a new value; DN results start empty).
    pub fn rejudge(&self, trust: &TrustState) -> ClientIdentity {
        if self.chain.is_empty() {
            return ClientIdentity::malformed_header(trust.generation);
        }
        let (verdict, valid_until) = judge_chain(
            trust,
            &self.chain,
            self.info.as_ref(),
            self.source,
            trust.now(),
        );
        Self::assemble(
            self.chain.clone(),
            self.info.clone(),
            self.chain_hash,
            self.source,
            trust,
            verdict,
            valid_until,
        )
    }

    /// An upper estimate of the heap this identity holds once its headers are rendered
    /// (the chain, the parsed leaf with its DER copy, names and SANs, the headers), what
    /// the caches count against their byte bounds.
    pub fn approx_bytes(&self) -> usize {
        let chain: usize = self
            .chain
            .iter()
            .map(|c| c.len() + std::mem::size_of::<CertificateDer<'static>>())
            .sum();
        let info = self.info.as_ref().map_or(0, |i| {
            let sans: usize = i.sans.iter().map(|s| s.len() + 48).sum();
            let names = dn_bytes(&i.subject) + dn_bytes(&i.issuer);
            // The rendered headers: both DNs (escaped, worst case x4) plus small values.
            let headers = 4 * (dn_text_len(&i.subject) + dn_text_len(&i.issuer)) + 512;
            i.der.len() + sans + names + headers + 256
        });
        std::mem::size_of::<ClientIdentity>() + chain + info + 128
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

    /// The `x-forwarded-client-cert` element of SPEC §16, rendered once per identity.
    pub fn xfcc_header(&self) -> &[(HeaderName, HeaderValue)] {
        self.xfcc_header.get_or_init(|| {
            self.info
                .as_ref()
                .map(|i| crate::upstream::xfcc_header_values(i, &self.chain))
                .unwrap_or_default()
        })
    }

    /// The RFC 9440 `Client-Cert` (and `Client-Cert-Chain`) of SPEC §16, rendered once
    /// per identity.
    pub fn rfc9440_headers(&self) -> &[(HeaderName, HeaderValue)] {
        self.rfc9440_headers.get_or_init(|| {
            if self.info.is_none() {
                return Vec::new();
            }
            crate::upstream::rfc9440_header_values(&self.chain)
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

/// A verdict's end, and whether it passed only by `revocation_failure = soft`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Until {
    /// See [`ClientIdentity::valid_until`].
    pub(crate) until: u64,
    /// See [`ClientIdentity::revocation_soft_pass`].
    pub(crate) soft_pass: bool,
}

impl Until {
    fn soft(until: u64) -> Until {
        Until {
            until,
            soft_pass: true,
        }
    }
}

impl From<u64> for Until {
    fn from(until: u64) -> Until {
        Until {
            until,
            soft_pass: false,
        }
    }
}

/// Judges a chain (leaf first) against `trust` at `now`: the verdict and its end.
pub(crate) fn judge_chain(
    trust: &TrustState,
    chain: &[CertificateDer<'_>],
    info: Option<&CertificateInfo>,
    source: CertSource,
    now: UnixTime,
) -> (IdentityVerdict, Until) {
    if !trust.available {
        return (
            IdentityVerdict::Denied(DenialReason::TruststoreUnavailable),
            FOREVER.into(),
        );
    }
    let Some((leaf, intermediates)) = chain.split_first() else {
        return (IdentityVerdict::Denied(not_parsed(source)), FOREVER.into());
    };
    let Some(info) = info else {
        return (IdentityVerdict::Denied(not_parsed(source)), FOREVER.into());
    };
    match (&trust.judge, source) {
        (Some(judge), _) => {
            let judged = judge.judge(leaf, intermediates, now);
            let verdict = match judged.verdict {
                PkiVerdict::Trusted => match &trust.fetch {
                    None => IdentityVerdict::Trusted,
                    Some(fetch) => {
                        use crate::revocation::FetchedStatus;
                        let end = judged.valid_until;
                        return match fetch.check(judge, leaf, intermediates, now) {
                            FetchedStatus::Good { until } => {
                                (IdentityVerdict::Trusted, end.min(until).into())
                            }
                            FetchedStatus::Revoked { until } => (
                                IdentityVerdict::Denied(DenialReason::Revoked),
                                end.min(until).into(),
                            ),
                            // Judged again on the next handshake or request: a fetch may
                            // have answered by then.
                            FetchedStatus::Unknown if trust.revocation_soft => {
                                (IdentityVerdict::Trusted, Until::soft(now.as_secs()))
                            }
                            FetchedStatus::Unknown => (
                                IdentityVerdict::Denied(DenialReason::RevocationUnknown),
                                now.as_secs().into(),
                            ),
                        };
                    }
                },
                PkiVerdict::Denied(PkiDeny::RevocationUnknown) if trust.revocation_soft => {
                    return (IdentityVerdict::Trusted, Until::soft(judged.valid_until));
                }
                PkiVerdict::Denied(reason) => IdentityVerdict::Denied(map_deny(reason, source)),
            };
            (verdict, judged.valid_until.into())
        }
        // mtls with an empty trust table fails closed (SPEC §2).
        (None, CertSource::Mtls) => (
            IdentityVerdict::Denied(DenialReason::Untrusted),
            FOREVER.into(),
        ),
        // header with an empty trust table: the load balancer vouched for the chain;
        // the dates are still checked (SPEC §6), and the configured CRLs by serial.
        (None, CertSource::Header) => {
            let now = now.as_secs();
            match dates_only(info, now) {
                (IdentityVerdict::Trusted, until) => {
                    match trust.unanchored_revocations.status(leaf, now) {
                        Ok(crl_until) => (IdentityVerdict::Trusted, until.min(crl_until).into()),
                        Err(PkiDeny::RevocationUnknown) if trust.revocation_soft => {
                            (IdentityVerdict::Trusted, Until::soft(until))
                        }
                        Err(reason) => (
                            IdentityVerdict::Denied(map_deny(reason, source)),
                            FOREVER.into(),
                        ),
                    }
                }
                (denied, until) => (denied, until.into()),
            }
        }
    }
}

/// The date check of a certificate judged without a trust table at `now` (Unix
/// seconds), and until when its answer holds. Valid through the notAfter second.
pub(crate) fn dates_only(info: &CertificateInfo, now: u64) -> (IdentityVerdict, u64) {
    let secs = |t: time::OffsetDateTime| u64::try_from(t.unix_timestamp()).unwrap_or(0);
    let (not_before, not_after) = (secs(info.not_before), secs(info.not_after));
    if now < not_before {
        (
            IdentityVerdict::Denied(DenialReason::NotYetValid),
            not_before - 1,
        )
    } else if now > not_after {
        (IdentityVerdict::Denied(DenialReason::Expired), FOREVER)
    } else {
        (IdentityVerdict::Trusted, not_after)
    }
}

/// Heap estimate of a parsed DN (attributes twice: as read and normalised).
fn dn_bytes(dn: &Dn) -> usize {
    320 + dn
        .rdns()
        .iter()
        .map(|rdn| {
            48 + rdn
                .attributes
                .iter()
                .map(|a| 200 + 2 * a.value.len())
                .sum::<usize>()
        })
        .sum::<usize>()
}

/// About the length of a DN's rendering (values plus `K=` and separators).
fn dn_text_len(dn: &Dn) -> usize {
    dn.rdns()
        .iter()
        .flat_map(|rdn| &rdn.attributes)
        .map(|a| a.value.len() + 8)
        .sum()
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
        PkiDeny::RevocationUnknown => DenialReason::RevocationUnknown,
    }
}

/// A refused chain as the caches keep it: no chain, no parse, just the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Why it was refused.
    pub(crate) reason: DenialReason,
    /// The last second the refusal holds.
    pub(crate) valid_until: u64,
}

/// What a [`VerdictCache`] holds for a key.
#[derive(Debug)]
pub(crate) enum Cached {
    /// An accepted identity, whole, shared.
    Trusted(Arc<ClientIdentity>),
    /// A refusal.
    Refused(Refused),
}

/// The bounds of one [`VerdictCache`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheLimits {
    /// Accepted identities kept.
    pub(crate) trusted_entries: usize,
    /// Bytes of accepted identities kept ([`ClientIdentity::approx_bytes`] plus the key).
    pub(crate) trusted_bytes: usize,
    /// Refusals kept (each a fixed few dozen bytes).
    pub(crate) refused_entries: usize,
}

/// What a [`VerdictCache`] holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    /// Accepted identities.
    pub trusted_entries: usize,
    /// Bytes counted for them.
    pub trusted_bytes: usize,
    /// Refusals.
    pub refused_entries: usize,
    /// Bytes counted for them.
    pub refused_bytes: usize,
}

/// Verdicts of one trust generation by key, bounded (see the module docs). A half that
/// would grow past a bound is emptied first (cheap, and an attacker who fills the
/// refused half cannot push accepted clients out). The cache holds one trust generation:
/// storing a verdict of a newer one empties it, one of an older one is not kept, and a
/// lookup for another generation finds nothing.
#[derive(Debug)]
pub(crate) struct VerdictCache<K> {
    limits: CacheLimits,
    inner: Mutex<CacheInner<K>>,
}

#[derive(Debug)]
struct CacheInner<K> {
    generation: u64,
    trusted: HashMap<K, Arc<ClientIdentity>>,
    trusted_bytes: usize,
    refused: HashMap<K, Refused>,
}

impl<K: Hash + Eq> VerdictCache<K> {
    /// An empty cache with these bounds.
    pub(crate) fn new(limits: CacheLimits) -> VerdictCache<K> {
        VerdictCache {
            limits,
            inner: Mutex::new(CacheInner {
                generation: 0,
                trusted: HashMap::new(),
                trusted_bytes: 0,
                refused: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner<K>> {
        // The state is consistent after every statement; a panic elsewhere cannot
        // leave it half-changed.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached verdict of `key` while it holds under `generation` at `now`.
    pub(crate) fn get(&self, key: &K, generation: u64, now: u64) -> Option<Cached> {
        let inner = self.lock();
        if inner.generation != generation {
            return None;
        }
        if let Some(id) = inner.trusted.get(key) {
            if now <= id.valid_until {
                return Some(Cached::Trusted(id.clone()));
            }
        }
        let refused = inner.refused.get(key)?;
        (now <= refused.valid_until).then_some(Cached::Refused(*refused))
    }

    /// Remembers `id` (an accepted one whole, a refused one as its verdict), replacing
    /// what the key held.
    pub(crate) fn put(&self, key: K, id: &Arc<ClientIdentity>) {
        let mut inner = self.lock();
        if id.trust_generation < inner.generation {
            // Judged under a snapshot that was already replaced: not worth keeping.
            return;
        }
        if inner.generation != id.trust_generation {
            inner.trusted.clear();
            inner.trusted_bytes = 0;
            inner.refused.clear();
            inner.generation = id.trust_generation;
        }
        if let Some(old) = inner.trusted.remove(&key) {
            let old = old.approx_bytes() + std::mem::size_of::<K>();
            inner.trusted_bytes = inner.trusted_bytes.saturating_sub(old);
        }
        inner.refused.remove(&key);
        match id.verdict {
            IdentityVerdict::Trusted => {
                let bytes = id.approx_bytes() + std::mem::size_of::<K>();
                if bytes > self.limits.trusted_bytes {
                    return;
                }
                if inner.trusted.len() >= self.limits.trusted_entries
                    || inner.trusted_bytes + bytes > self.limits.trusted_bytes
                {
                    inner.trusted.clear();
                    inner.trusted_bytes = 0;
                }
                inner.trusted.insert(key, id.clone());
                inner.trusted_bytes += bytes;
            }
            IdentityVerdict::Denied(reason) => {
                if inner.refused.len() >= self.limits.refused_entries {
                    inner.refused.clear();
                }
                let refused = Refused {
                    reason,
                    valid_until: id.valid_until,
                };
                inner.refused.insert(key, refused);
            }
        }
    }

    /// What the cache holds now.
    pub(crate) fn usage(&self) -> CacheUsage {
        let inner = self.lock();
        CacheUsage {
            trusted_entries: inner.trusted.len(),
            trusted_bytes: inner.trusted_bytes,
            refused_entries: inner.refused.len(),
            refused_bytes: inner.refused.capacity() * refused_entry_bytes::<K>(),
        }
    }
}

/// The bytes one refused entry costs in a `HashMap` slot (key, value, control byte).
pub(crate) const fn refused_entry_bytes<K>() -> usize {
    std::mem::size_of::<(K, Refused)>() + 1
}
