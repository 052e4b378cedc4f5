//! The immutable [`Snapshot`] of the live configuration that every request reads, and
//! its construction from a stored [`GatewayConfig`].
//!
//! A snapshot owns everything compiled for the hot path: the route table with effective
//! settings per API, compiled DN pattern sets, the chain judge of the trust store with
//! its verdict cache, and the generation numbers that tell connections when the trust
//! store, the mode or the TLS configuration moved.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use certgate_pki::{Judge, PatternSet, RevokedSerials};
use certgate_store::model::{
    CertAuthMode, ForwardFormat, GatewayConfig, RevocationFailure, RevocationSource,
    ValidationFailure,
};
use http::HeaderName;
use ipnet::IpNet;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::UnixTime;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::clock::Clock;
use crate::header_mode::HeaderCache;
use crate::identity::{CacheLimits, CacheUsage, CertSource, VerdictCache};
use crate::inventory::Inventory;
use crate::route::{Route, RouteTable, Upstream};
use crate::telemetry::RequestCounters;

/// The bounds of the identity cache (one per trust generation, shared by the
/// connections of a client): accepted identities by count and bytes, refusals by count
/// (a refusal is a fixed ~50 bytes). Documented in docs/BEHAVIOUR.md.
pub(crate) const IDENTITY_CACHE_LIMITS: CacheLimits = CacheLimits {
    trusted_entries: 10_000,
    trusted_bytes: 32 << 20,
    refused_entries: 10_000,
};

/// A compiled DN pattern set with an id that is stable while its patterns stay the
/// same (the key of per-connection DN-match caches).
#[derive(Debug)]
pub struct CompiledPatterns {
    /// Unique per distinct compiled set.
    pub id: u64,
    /// The compiled patterns (empty: no DN restriction).
    pub set: PatternSet,
}

/// Header-mode settings (SPEC §2, §6).
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    /// The certificate header, matched case-insensitively.
    pub name: HeaderName,
    /// How to decode it.
    pub format: certgate_pki::HeaderFormat,
}

/// An identity cache key: the chain hash and where it came from.
pub(crate) type IdentityKey = ([u8; 32], CertSource);

/// The trust store as the data plane uses it: one per trust generation.
#[derive(Debug)]
pub struct TrustState {
    /// Bumped whenever anchors, CRLs or availability change.
    pub generation: u64,
    /// False when the node's trust store is unusable: every certificate fails closed.
    pub available: bool,
    /// The judge; `None` when the trust table is empty.
    pub judge: Option<Judge>,
    /// Number of trust anchors.
    pub anchors: usize,
    /// The anchors' subjects, for `send_ca_names`.
    pub ca_names: Vec<rustls::DistinguishedName>,
    /// Revoked serials of the configured CRLs, used in header mode when the trust table
    /// is empty (there is no anchor to verify a CRL signature with).
    pub unanchored_revocations: RevokedSerials,
    /// `revocation_failure = soft`: a chain whose status cannot be learned passes.
    pub revocation_soft: bool,
    /// SPEC §16 `crl_dp` / `ocsp`: the sources fetched; `None` for `crl`.
    pub(crate) fetch: Option<crate::revocation::FetchPolicy>,
    /// The clock every verdict of this state is judged and checked against.
    clock: Arc<dyn Clock>,
    /// Judged identities by chain, shared by connections (see [`VerdictCache`]).
    pub(crate) identities: VerdictCache<IdentityKey>,
}

impl TrustState {
    fn new(
        generation: u64,
        available: bool,
        judge: Option<Judge>,
        anchors: usize,
        ca_names: Vec<rustls::DistinguishedName>,
        unanchored_revocations: RevokedSerials,
        clock: Arc<dyn Clock>,
    ) -> TrustState {
        TrustState {
            generation,
            available,
            judge,
            anchors,
            ca_names,
            unanchored_revocations,
            revocation_soft: false,
            fetch: None,
            clock,
            identities: VerdictCache::new(IDENTITY_CACHE_LIMITS),
        }
    }

    /// A fail-closed trust state (generation 0, nothing trusted).
    pub(crate) fn empty(clock: Arc<dyn Clock>) -> TrustState {
        TrustState::new(
            0,
            true,
            None,
            0,
            Vec::new(),
            RevokedSerials::default(),
            clock,
        )
    }

    /// Now, by the clock of the freshness rules.
    #[inline]
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// What the identity cache of this trust generation holds.
    pub fn identity_cache_usage(&self) -> CacheUsage {
        self.identities.usage()
    }
}

/// The live configuration, compiled for the hot path. Immutable; replaced as a whole.
#[derive(Debug)]
pub struct Snapshot {
    /// The store generation this snapshot was built from.
    pub config_generation: u64,
    /// The gateway's `mode`.
    pub mode: CertAuthMode,
    /// The gateway's `required`.
    pub required: bool,
    /// mtls: what a failed chain does.
    pub validation_failure: ValidationFailure,
    /// Add `X-Client-Cert-*` upstream.
    pub forward_identity: bool,
    /// The identity formats forwarded upstream (SPEC §16); all off when
    /// `forward_identity` is false.
    pub forward: ForwardSet,
    /// mtls and `sni_host_check`: 421 when Host names another host than the SNI.
    pub sni_host_check: bool,
    /// mtls: list the anchors' names in the CertificateRequest.
    pub send_ca_names: bool,
    /// Header mode settings (`Some` only in header mode).
    pub header: Option<HeaderSettings>,
    /// Peers whose certificate header (and `X-Forwarded-For`) is honoured.
    pub trusted_proxies: Vec<IpNet>,
    /// The gateway's `trusted_dns`, compiled.
    pub gateway_patterns: Arc<CompiledPatterns>,
    /// The deployed APIs.
    pub routes: RouteTable,
    /// The trust store.
    pub trust: Arc<TrustState>,
    /// Bumped when `mode` changes: connections of an older generation close after
    /// their current response.
    pub mode_generation: u64,
    /// Bumped when the TLS server configuration must be rebuilt (mode, CA names).
    pub tls_generation: u64,
    pub(crate) header_cache: Arc<HeaderCache>,
    /// The clients this node has seen (SPEC §13), shared by every snapshot of a runtime.
    pub inventory: Arc<Inventory>,
}

impl Snapshot {
    /// What the header-mode verdict cache holds (shared by every snapshot of a runtime).
    pub fn header_cache_usage(&self) -> CacheUsage {
        self.header_cache.usage()
    }

    /// Whether `peer` is a trusted proxy: in `trusted_proxies`, or any peer in header
    /// mode when the list is empty (SPEC §2).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        if self.trusted_proxies.is_empty() {
            return self.mode == CertAuthMode::Header;
        }
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// A stored configuration that cannot be compiled into a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A DN pattern (gateway or API override) does not parse.
    #[error(transparent)]
    Pattern(#[from] certgate_pki::PatternError),
    /// A trusted certificate's PEM does not parse.
    #[error("trusted certificate {name} (id {id}) is unusable: {reason}")]
    TrustedCertificate {
        /// The component id.
        id: i64,
        /// The component name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRL does not parse.
    #[error("CRL {index} is unusable: {reason}")]
    Crl {
        /// 0-based position in the `crls` list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The judge refused an anchor or CRL.
    #[error(transparent)]
    Judge(#[from] certgate_pki::JudgeError),
    /// An API's upstream is not an `http://` or `https://` URL.
    #[error("API {name} has an unusable upstream {upstream:?}: {reason}")]
    Upstream {
        /// The API name.
        name: String,
        /// The upstream as stored.
        upstream: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Header mode without a header name.
    #[error("header mode needs a header_name")]
    MissingHeaderName,
    /// A header name that is not a valid HTTP field name.
    #[error("header_name {0:?} is not a valid HTTP header name")]
    InvalidHeaderName(String),
}

/// What one snapshot build remembers for the next: generations and the inputs they
/// were computed from, so unchanged parts keep their generation (and caches).
#[derive(Debug, Clone)]
pub(crate) struct BuildState {
    clock: Arc<dyn Clock>,
    trust_key: Option<TrustKey>,
    trust: Arc<TrustState>,
    mode: CertAuthMode,
    mode_generation: u64,
    tls_key: Option<(CertAuthMode, bool, u64)>,
    tls_generation: u64,
    patterns: HashMap<Vec<String>, Arc<CompiledPatterns>>,
    header_cache: Arc<HeaderCache>,
    inventory: Arc<Inventory>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TrustKey {
    available: bool,
    anchors: Vec<String>,
    crls: Vec<String>,
    revocation_soft: bool,
    revocation: (RevocationSource, Vec<String>, u64),
}

/// Which identity formats go upstream (SPEC §16 `forward_formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardSet {
    /// The SPEC §7 `X-Client-Cert-*` headers.
    pub x_client_cert: bool,
    /// Envoy's `x-forwarded-client-cert`.
    pub xfcc: bool,
    /// RFC 9440 `Client-Cert` / `Client-Cert-Chain`.
    pub rfc9440: bool,
}

impl Default for ForwardSet {
    fn default() -> Self {
        ForwardSet::new(true, &certgate_store::model::default_forward_formats())
    }
}

impl ForwardSet {
    /// The set for `forward_identity` and `forward_formats`.
    pub fn new(forward_identity: bool, formats: &[ForwardFormat]) -> ForwardSet {
        let on = |f| forward_identity && formats.contains(&f);
        ForwardSet {
            x_client_cert: on(ForwardFormat::XClientCert),
            xfcc: on(ForwardFormat::Xfcc),
            rfc9440: on(ForwardFormat::Rfc9440),
        }
    }

    /// Whether any format is forwarded.
    pub fn any(self) -> bool {
        self.x_client_cert || self.xfcc || self.rfc9440
    }
}

static PATTERN_SET_IDS: AtomicU64 = AtomicU64::new(1);

impl BuildState {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> BuildState {
        BuildState {
            trust: Arc::new(TrustState::empty(clock.clone())),
            clock,
            trust_key: None,
            mode: CertAuthMode::None,
            mode_generation: 0,
            tls_key: None,
            tls_generation: 0,
            patterns: HashMap::new(),
            header_cache: Arc::new(HeaderCache::default()),
            inventory: Arc::new(Inventory::new()),
        }
    }

    /// Whether the last build was told the node's trust store is usable (true before any).
    pub(crate) fn trust_store_ok(&self) -> bool {
        self.trust_key.as_ref().is_none_or(|k| k.available)
    }

    /// The snapshot of a fresh runtime: mode `none`, no APIs.
    pub(crate) fn initial(&mut self) -> Snapshot {
        let patterns = self.patterns(&[]).unwrap_or_else(|_| {
            Arc::new(CompiledPatterns {
                id: 0,
                set: PatternSet::default(),
            })
        });
        Snapshot {
            config_generation: 0,
            mode: CertAuthMode::None,
            required: false,
            validation_failure: ValidationFailure::Handshake,
            forward_identity: true,
            forward: ForwardSet::default(),
            sni_host_check: false,
            send_ca_names: false,
            header: None,
            trusted_proxies: Vec::new(),
            gateway_patterns: patterns,
            routes: RouteTable::default(),
            trust: self.trust.clone(),
            mode_generation: self.mode_generation,
            tls_generation: self.tls_generation,
            header_cache: self.header_cache.clone(),
            inventory: self.inventory.clone(),
        }
    }

    /// Compiles a pattern list, reusing the previous build's set when unchanged.
    fn patterns(&mut self, list: &[String]) -> Result<Arc<CompiledPatterns>, SnapshotError> {
        if let Some(existing) = self.patterns.get(list) {
            return Ok(existing.clone());
        }
        let set = if list.is_empty() {
            PatternSet::default()
        } else {
            PatternSet::compile(list)?
        };
        let compiled = Arc::new(CompiledPatterns {
            id: PATTERN_SET_IDS.fetch_add(1, Ordering::Relaxed),
            set,
        });
        Ok(compiled)
    }

    /// Builds the snapshot for `config`. On a pattern, upstream or header error nothing
    /// changes and the error is returned. On a trust store error (an unusable anchor or
    /// CRL) the snapshot is still built, failing closed (`truststore_unavailable`), and
    /// the error is returned beside it.
    pub(crate) fn build(
        &mut self,
        config: &GatewayConfig,
        trust_store_ok: bool,
    ) -> Result<(Snapshot, Option<SnapshotError>), SnapshotError> {
        let auth = &config.client_cert_auth;

        // Everything that can refuse the whole config comes first.
        let header = match auth.mode {
            CertAuthMode::Header => {
                let raw = auth.header_name.as_deref().unwrap_or("");
                if raw.is_empty() {
                    return Err(SnapshotError::MissingHeaderName);
                }
                let name = certgate_store::validate::parse_header_name(raw)
                    .map_err(|_| SnapshotError::InvalidHeaderName(raw.to_owned()))?;
                Some(HeaderSettings {
                    name,
                    format: auth.header_format,
                })
            }
            _ => None,
        };
        let mut new_patterns: HashMap<Vec<String>, Arc<CompiledPatterns>> = HashMap::new();
        let gateway_patterns = self.patterns(&auth.trusted_dns)?;
        new_patterns.insert(auth.trusted_dns.clone(), gateway_patterns.clone());
        let mut routes = Vec::with_capacity(config.apis.len());
        for api in &config.apis {
            let upstream = Upstream::parse(&api.upstream).map_err(|e| SnapshotError::Upstream {
                name: api.name.clone(),
                upstream: api.upstream.clone(),
                reason: e.to_string(),
            })?;
            let effective = auth.effective(api.override_.as_ref());
            let required = effective.required;
            let patterns = match new_patterns.get(effective.trusted_dns) {
                Some(p) => p.clone(),
                None => {
                    let p = self.patterns(effective.trusted_dns)?;
                    new_patterns.insert(effective.trusted_dns.to_vec(), p.clone());
                    p
                }
            };
            routes.push(Route {
                api_id: api.id,
                counters: RequestCounters::new(&api.name),
                name: api.name.clone(),
                base_path: api.base_path.clone(),
                upstream,
                required,
                patterns,
            });
        }

        // Trust: rebuilt only when its inputs change.
        let key = TrustKey {
            available: trust_store_ok,
            anchors: config
                .trusted_certificates
                .iter()
                .map(|t| t.pem.clone())
                .collect(),
            crls: auth.crls.clone(),
            revocation_soft: auth.revocation_failure == RevocationFailure::Soft,
            revocation: (
                auth.revocation,
                auth.revocation_fetch_hosts.clone(),
                auth.revocation_fetch_timeout_ms,
            ),
        };
        let mut trust_error = None;
        let trust = if self.trust_key.as_ref() == Some(&key) {
            self.trust.clone()
        } else {
            let generation = self.trust.generation + 1;
            let state = match build_trust(config, trust_store_ok, generation, self.clock.clone()) {
                Ok(state) => state,
                Err(e) => {
                    trust_error = Some(e);
                    TrustState::new(
                        generation,
                        false,
                        None,
                        0,
                        Vec::new(),
                        RevokedSerials::default(),
                        self.clock.clone(),
                    )
                }
            };
            Arc::new(state)
        };

        let mode_generation = if auth.mode != self.mode {
            self.mode_generation + 1
        } else {
            self.mode_generation
        };
        let names_gen = if auth.send_ca_names {
            trust.generation
        } else {
            0
        };
        let tls_key = (auth.mode, auth.send_ca_names, names_gen);
        let tls_generation = if self.tls_key != Some(tls_key) {
            self.tls_generation + 1
        } else {
            self.tls_generation
        };

        // Commit the build state only now that nothing can fail.
        self.trust_key = Some(key);
        self.trust = trust.clone();
        self.mode = auth.mode;
        self.mode_generation = mode_generation;
        self.tls_key = Some(tls_key);
        self.tls_generation = tls_generation;
        self.patterns = new_patterns;

        let snapshot = Snapshot {
            config_generation: config.generation,
            mode: auth.mode,
            required: auth.required,
            validation_failure: auth.validation_failure,
            forward_identity: auth.forward_identity,
            forward: ForwardSet::new(auth.forward_identity, &auth.forward_formats),
            sni_host_check: auth.mode == CertAuthMode::Mtls && auth.sni_host_check,
            send_ca_names: auth.send_ca_names,
            header,
            trusted_proxies: auth.trusted_proxies.clone(),
            gateway_patterns,
            routes: RouteTable::new(routes),
            trust,
            mode_generation,
            tls_generation,
            header_cache: self.header_cache.clone(),
            inventory: self.inventory.clone(),
        };
        Ok((snapshot, trust_error))
    }
}

fn build_trust(
    config: &GatewayConfig,
    available: bool,
    generation: u64,
    clock: Arc<dyn Clock>,
) -> Result<TrustState, SnapshotError> {
    let mut anchors: Vec<CertificateDer<'static>> =
        Vec::with_capacity(config.trusted_certificates.len());
    for t in &config.trusted_certificates {
        let der = CertificateDer::pem_slice_iter(t.pem.as_bytes())
            .next()
            .ok_or_else(|| "no certificate in the PEM".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|reason| SnapshotError::TrustedCertificate {
                id: t.certificate_id,
                name: t.name.clone(),
                reason,
            })?;
        anchors.push(der);
    }
    let mut crls: Vec<CertificateRevocationListDer<'static>> = Vec::new();
    for (index, pem) in config.client_cert_auth.crls.iter().enumerate() {
        let mut found = false;
        for item in CertificateRevocationListDer::pem_slice_iter(pem.as_bytes()) {
            let der = item.map_err(|e| SnapshotError::Crl {
                index,
                reason: e.to_string(),
            })?;
            crls.push(der);
            found = true;
        }
        if !found {
            return Err(SnapshotError::Crl {
                index,
                reason: "no CRL in the PEM".to_owned(),
            });
        }
    }
    let ca_names = anchors
        .iter()
        .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
        .map(|ta| rustls::DistinguishedName::in_sequence(ta.subject.as_ref()))
        .collect();
    let (judge, unanchored_revocations) = if anchors.is_empty() {
        (None, RevokedSerials::from_crls(&crls)?)
    } else {
        (
            Some(Judge::new(&anchors, &crls)?),
            RevokedSerials::default(),
        )
    };
    let mut state = TrustState::new(
        generation,
        available,
        judge,
        anchors.len(),
        ca_names,
        unanchored_revocations,
        clock,
    );
    state.revocation_soft = config.client_cert_auth.revocation_failure == RevocationFailure::Soft;
    state.fetch = crate::revocation::FetchPolicy::new(
        config.client_cert_auth.revocation,
        &config.client_cert_auth.revocation_fetch_hosts,
        config.client_cert_auth.revocation_fetch_timeout_ms,
    );
    crate::telemetry::record_crl_next_updates(&config.client_cert_auth.crls);
    Ok(state)
}
