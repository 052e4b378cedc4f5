//! Header mode (SPEC §6): find the certificate header, honour it only from a trusted
//! proxy (else remove and ignore it), decode it with certgate-pki and judge it, caching
//! the judged identity by (hash of the value, trust generation, format).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use certgate_pki::{decode_header, HeaderFormat};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::identity::{CertSource, ClientIdentity};
use crate::snapshot::Snapshot;

/// Identities kept before the cache is emptied (bounded memory under many distinct
/// certificates).
const HEADER_CACHE_MAX: usize = 10_000;

type CacheKey = ([u8; 32], u64, HeaderFormat);

/// Judged header identities by (SHA-256 of the value, trust generation, format).
#[derive(Debug, Default)]
pub struct HeaderCache {
    entries: Mutex<HashMap<CacheKey, Arc<ClientIdentity>>>,
}

impl HeaderCache {
    fn get(&self, key: &CacheKey, snapshot: &Snapshot) -> Option<Arc<ClientIdentity>> {
        let entries = self.entries.lock().ok()?;
        let id = entries.get(key)?;
        (!id.is_stale(&snapshot.trust)).then(|| id.clone())
    }

    fn put(&self, key: CacheKey, id: Arc<ClientIdentity>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= HEADER_CACHE_MAX {
                entries.clear();
            }
            entries.insert(key, id);
        }
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
    let key = (hash, trust.generation, settings.format);
    if let Some(id) = snapshot.header_cache.get(&key, snapshot) {
        return HeaderCert::Present(id);
    }
    let id = match decode_header(value.as_bytes(), settings.format) {
        Ok(chain) => {
            let mut certs = Vec::with_capacity(1 + chain.intermediates.len());
            certs.push(chain.leaf);
            certs.extend(chain.intermediates);
            ClientIdentity::judge(certs, CertSource::Header, trust)
        }
        Err(e) => {
            tracing::debug!(error = %e, "certificate header does not decode");
            ClientIdentity::malformed_header(trust.generation)
        }
    };
    let id = Arc::new(id);
    snapshot.header_cache.put(key, id.clone());
    HeaderCert::Present(id)
}
