//! Header mode (SPEC §6): find the certificate header, honour it only from a trusted
//! proxy (else remove and ignore it), decode it with certgate-pki and judge it, caching
//! the verdict by (hash of the value, format) for the current trust generation: an
//! accepted identity whole, a refusal as its reason and end only (the value is not
//! kept). A cached verdict past its `valid_until` is judged again.

use std::net::IpAddr;
use std::sync::Arc;

use certgate_pki::{decode_header, HeaderFormat};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::evaluate::DenialReason;
use crate::identity::{
    hash_chain, CacheLimits, CacheUsage, Cached, CertSource, ClientIdentity, VerdictCache,
};
use crate::snapshot::Snapshot;

/// The bounds of the header-mode cache: accepted identities by count and bytes (a value
/// may be 64 KiB), refusals by count (a fixed ~70 bytes each, the value is not kept).
/// Documented in docs/BEHAVIOUR.md.
pub(crate) const HEADER_CACHE_LIMITS: CacheLimits = CacheLimits {
    trusted_entries: 10_000,
    trusted_bytes: 32 << 20,
    refused_entries: 10_000,
};

/// (SHA-256 of the header value, format).
type HeaderKey = ([u8; 32], HeaderFormat);

/// Judged header identities by (SHA-256 of the value, format), for the current trust
/// generation only.
#[derive(Debug)]
pub struct HeaderCache {
    cache: VerdictCache<HeaderKey>,
}

impl Default for HeaderCache {
    fn default() -> Self {
        HeaderCache {
            cache: VerdictCache::new(HEADER_CACHE_LIMITS),
        }
    }
}

impl HeaderCache {
    /// What the cache holds now.
    pub fn usage(&self) -> CacheUsage {
        self.cache.usage()
    }
}

/// What the certificate header of a request amounted to.
#[derive(Debug)]
pub enum HeaderCert {
    /// No certificate header.
    Absent,
    /// A header from a peer outside `trusted_proxies`: removed, ignored.
    FromUntrustedProxy,
    /// A header from a trusted proxy, judged (possibly as malformed).
    Present(Arc<ClientIdentity>),
}

/// Takes the certificate header out of `headers` (it never goes upstream) and resolves
/// it. Does nothing unless the snapshot is in header mode.
pub fn take_header_cert(snapshot: &Snapshot, headers: &mut HeaderMap, peer: IpAddr) -> HeaderCert {
    let Some(settings) = snapshot.header.as_ref() else {
        return HeaderCert::Absent;
    };
    // `HeaderName` is lower-case, so this lookup is case-insensitive (RFC 9110).
    let values: Vec<_> = headers.get_all(&settings.name).iter().cloned().collect();
    if values.is_empty() {
        return HeaderCert::Absent;
    }
    headers.remove(&settings.name);
    if !snapshot.is_trusted_proxy(peer) {
        return HeaderCert::FromUntrustedProxy;
    }
    let trust = &snapshot.trust;
    // Several fields of the certificate header are ambiguous: treat as malformed.
    let [value] = values.as_slice() else {
        return HeaderCert::Present(Arc::new(ClientIdentity::malformed_header(trust.generation)));
    };
    // An empty value is how load balancers say "no client certificate" (nginx's
    // `$ssl_client_escaped_cert` with `ssl_verify_client optional`, HAProxy's
    // `%[ssl_c_der,base64]`): treat it as absent, so `required` decides (401 or pass).
    if value.as_bytes().iter().all(u8::is_ascii_whitespace) {
        return HeaderCert::Absent;
    }
    let hash: [u8; 32] = Sha256::digest(value.as_bytes()).into();
    let key = (hash, settings.format);
    // The one clock read of this request.
    let now = trust.now();
    let cached = snapshot
        .header_cache
        .cache
        .get(&key, trust.generation, now.as_secs());
    if let Some(Cached::Trusted(id)) = cached {
        return HeaderCert::Present(id);
    }
    let decoded = match decode_header(value.as_bytes(), settings.format) {
        Ok(chain) => {
            let mut certs = Vec::with_capacity(1 + chain.intermediates.len());
            certs.push(chain.leaf);
            certs.extend(chain.intermediates);
            Some(certs)
        }
        Err(e) => {
            tracing::debug!(error = %e, "certificate header does not decode");
            None
        }
    };
    let id = match (cached, decoded) {
        // Refused before: decoded and parsed again for the log, not judged.
        (Some(Cached::Refused(refused)), Some(certs))
            if refused.reason != DenialReason::MalformedHeader =>
        {
            let chain_hash = hash_chain(&certs);
            return HeaderCert::Present(Arc::new(ClientIdentity::from_refused(
                certs,
                chain_hash,
                CertSource::Header,
                trust,
                refused,
            )));
        }
        (Some(Cached::Refused(_)), None) => {
            return HeaderCert::Present(Arc::new(ClientIdentity::malformed_header(
                trust.generation,
            )));
        }
        (_, Some(certs)) => ClientIdentity::judge_at(certs, CertSource::Header, trust, now),
        (_, None) => ClientIdentity::malformed_header(trust.generation),
    };
    let id = Arc::new(id);
    snapshot.header_cache.cache.put(key, &id);
    HeaderCert::Present(id)
}
