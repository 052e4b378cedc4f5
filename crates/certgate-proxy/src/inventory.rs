//! The client inventory of this node (SPEC §13) and the dry run's judgement of it.
//!
//! [`Inventory::record`] runs once per request that presented a certificate (and once per
//! handshake refused for its certificate): one shard lock, one hash lookup, counter
//! increments and no allocation for a client and API seen before. The inventory keeps the
//! [`CAPACITY`] most recent clients (by `last_seen`); it grows to [`CAPACITY`] + [`SLACK`]
//! and is then trimmed in one pass, so the cost of eviction is paid once per [`SLACK`] new
//! clients, not per handshake. [`access_changes`] judges the clients' last requests under
//! two snapshots with the data plane's own [`evaluate`].
//!
//! A new client costs one reference count: its entry keeps the judged identity the data
//! plane already made (`Arc<ClientIdentity>`: chain and parsed certificate), and subject
//! and issuer are rendered only when the inventory is read.
//!
//! Memory is bounded whatever the clients send: an identity is kept (for listing and the
//! dry run) only when its chain is at most [`MAX_CHAIN_BYTES`] and the identities kept stay
//! within [`KEPT_BUDGET`] (estimated by [`kept_cost`]); a client beyond either is listed
//! from names rendered once (cut to [`MAX_NAME_CHARS`] characters) and left out of dry-run
//! judgements. Last paths are kept to [`MAX_PATH_BYTES`] bytes (a route is chosen by a
//! base-path prefix, far shorter).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use certgate_store::inventory::{AccessChanges, ClientAccess, ClientView, SeenClient};
use certgate_store::model::CertAuthMode;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::evaluate::{evaluate, Decision, DenialReason, Presented};
use crate::identity::{CertSource, ClientIdentity};
use crate::snapshot::Snapshot;

pub use certgate_store::inventory::CAPACITY;

/// How far past [`CAPACITY`] the inventory grows before it is trimmed back.
pub const SLACK: usize = 1_000;

const SHARDS: usize = 16;

/// The largest chain (DER bytes, all certificates) whose identity is kept for one client.
pub const MAX_CHAIN_BYTES: usize = 16 * 1024;
/// The most the identities kept may cost together ([`kept_cost`]): 10,000 clients with
/// typical 1.2 KiB chains.
pub const KEPT_BUDGET: usize = 48 * 1024 * 1024;
/// Subjects and issuers are cut to this many characters (with `…`).
pub const MAX_NAME_CHARS: usize = 1024;
/// A last path is cut to this many bytes (at a character boundary).
pub const MAX_PATH_BYTES: usize = 512;

fn chain_bytes(chain: &[CertificateDer<'_>]) -> usize {
    chain.iter().map(|c| c.len()).sum()
}

/// What keeping an identity is taken to cost: its chain, the parsed certificate and the
/// identity headers it may have rendered (about twice the chain), and a fixed part.
pub fn kept_cost(id: &ClientIdentity) -> usize {
    3 * chain_bytes(&id.chain) + 1024
}

fn cut_name(s: String) -> String {
    match s.char_indices().nth(MAX_NAME_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn cut_path(p: &str) -> &str {
    if p.len() <= MAX_PATH_BYTES {
        return p;
    }
    let mut end = MAX_PATH_BYTES;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

/// Every denial reason, in the order of the per-client counters.
const REASONS: [DenialReason; 11] = [
    DenialReason::NoCertificate,
    DenialReason::Untrusted,
    DenialReason::Expired,
    DenialReason::NotYetValid,
    DenialReason::Revoked,
    DenialReason::MalformedHeader,
    DenialReason::DnMismatch,
    DenialReason::UntrustedProxy,
    DenialReason::TruststoreUnavailable,
    DenialReason::RevocationUnknown,
    DenialReason::MisdirectedRequest,
];

fn reason_index(r: DenialReason) -> usize {
    REASONS.iter().position(|x| *x == r).unwrap_or(0)
}

/// What one request did, as the inventory records it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The routed API's name and the request's normalised path; `None` for a request no
    /// API matched and for a handshake refused for its certificate.
    pub api: Option<(&'a str, &'a str)>,
    /// The denial, if any.
    pub denied: Option<DenialReason>,
}

/// The client certificates this node has seen, bounded (see the module docs).
#[derive(Debug)]
pub struct Inventory {
    shards: Vec<Mutex<Shard>>,
    len: AtomicUsize,
    /// What the identities kept cost ([`kept_cost`]), at most [`KEPT_BUDGET`].
    kept: AtomicUsize,
    trimming: Mutex<()>,
}

#[derive(Debug, Default)]
struct Shard {
    clients: HashMap<Arc<str>, Entry>,
    /// Counts this shard's records; orders its entries that share a `last_seen` second.
    tick: u64,
}

#[derive(Debug)]
struct Entry {
    /// The latest identity, when within the bounds (the module docs).
    identity: Option<Arc<ClientIdentity>>,
    /// Subject and issuer, rendered once, for a client whose identity is not kept.
    names: Option<(String, String)>,
    chain_hash: [u8; 32],
    source: CertSource,
    not_after: i64,
    /// Unix milliseconds.
    first_seen: i64,
    /// Unix milliseconds.
    last_seen: i64,
    tick: u64,
    requests: u64,
    denied: [u64; REASONS.len()],
    /// API name and the path of its last request, in first-seen order.
    apis: Vec<(String, String)>,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            len: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            trimming: Mutex::new(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while recording leaves counters, never a broken map: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Now in Unix milliseconds: clients seen within one second are still ordered.
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The shard of a fingerprint: its last hex digit (uniform, no second hash).
fn shard_of(fingerprint: &str) -> usize {
    fingerprint
        .as_bytes()
        .last()
        .map(|b| (*b as char).to_digit(16).unwrap_or(0) as usize % SHARDS)
        .unwrap_or(0)
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Records one request (or refused handshake) of `id`. An identity whose leaf does
    /// not parse has no fingerprint and is not recorded.
    pub fn record(&self, id: &Arc<ClientIdentity>, seen: Seen<'_>) {
        self.record_at(id, seen, unix_now_ms());
    }

    /// [`Inventory::record`] at `now` (Unix milliseconds).
    fn record_at(&self, id: &Arc<ClientIdentity>, seen: Seen<'_>, now: i64) {
        let Some(info) = id.info.as_ref() else {
            return;
        };
        let fp = info.fingerprint_sha256.as_str();
        let mut shard = lock(&self.shards[shard_of(fp)]);
        shard.tick += 1;
        let tick = shard.tick;
        let added = match shard.clients.get_mut(fp) {
            Some(e) => {
                e.touch(id, seen, now, tick, &self.kept);
                false
            }
            None => {
                let mut e = Entry {
                    identity: None,
                    names: None,
                    chain_hash: [0; 32],
                    source: id.source,
                    not_after: info.not_after.unix_timestamp(),
                    first_seen: now,
                    last_seen: now,
                    tick,
                    requests: 0,
                    denied: [0; REASONS.len()],
                    apis: Vec::new(),
                };
                e.touch(id, seen, now, tick, &self.kept);
                shard.clients.insert(Arc::from(fp), e);
                true
            }
        };
        drop(shard);
        if added && self.len.fetch_add(1, Ordering::Relaxed) + 1 > CAPACITY + SLACK {
            self.trim();
        }
    }

    /// Drops all but the [`CAPACITY`] most recent clients.
    fn trim(&self) {
        // One trimmer at a time; the others go on recording.
        let Ok(_one) = self.trimming.try_lock() else {
            return;
        };
        let mut keys: Vec<(i64, u64)> = Vec::with_capacity(CAPACITY + SLACK + SHARDS);
        for s in &self.shards {
            let s = lock(s);
            keys.extend(s.clients.values().map(|e| (e.last_seen, e.tick)));
        }
        if keys.len() <= CAPACITY {
            return;
        }
        // The CAPACITY-th newest key: everything older goes. Ticks are per shard, so
        // within one second the order across shards is arbitrary (any of them is recent).
        let cut = keys.len() - CAPACITY;
        let (_, threshold, _) = keys.select_nth_unstable(cut);
        let threshold = *threshold;
        let (mut removed, mut freed) = (0, 0);
        for s in &self.shards {
            let mut s = lock(s);
            let before = s.clients.len();
            s.clients.retain(|_, e| {
                let keep = (e.last_seen, e.tick) >= threshold;
                if !keep {
                    freed += e.identity.as_deref().map_or(0, kept_cost);
                }
                keep
            });
            removed += before - s.clients.len();
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        self.kept.fetch_sub(freed, Ordering::Relaxed);
    }

    /// How many clients it holds now (up to [`CAPACITY`] + [`SLACK`]).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no client was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A counter that moves whenever something is recorded (the shards' ticks, so the
    /// hot path shares no counter across cores): the cluster writer skips an unchanged
    /// inventory.
    pub fn changes(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).tick).sum()
    }

    /// The [`CAPACITY`] most recent clients, newest `last_seen` first.
    pub fn clients(&self) -> Vec<SeenClient> {
        let mut out = Vec::with_capacity(self.len().min(CAPACITY + SLACK));
        for s in &self.shards {
            let s = lock(s);
            out.extend(s.clients.iter().map(|(fp, e)| e.to_seen(fp)));
        }
        certgate_store::inventory::sort_newest_first(&mut out);
        out.truncate(CAPACITY);
        out
    }
}

impl Entry {
    fn touch(
        &mut self,
        id: &Arc<ClientIdentity>,
        seen: Seen<'_>,
        now: i64,
        tick: u64,
        budget: &AtomicUsize,
    ) {
        self.last_seen = self.last_seen.max(now);
        self.tick = tick;
        self.requests += 1;
        if let Some(r) = seen.denied {
            self.denied[reason_index(r)] += 1;
        }
        if self.chain_hash != id.chain_hash && !id.chain.is_empty() {
            // A new client, or the same leaf with other intermediates: a dry run judges
            // the latest, when it fits the bounds (else the client keeps names only).
            self.chain_hash = id.chain_hash;
            self.source = id.source;
            let old = self.identity.as_deref().map_or(0, kept_cost);
            let new = kept_cost(id);
            let fits = chain_bytes(&id.chain) <= MAX_CHAIN_BYTES
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                        let after = used - old.min(used) + new;
                        (after <= KEPT_BUDGET).then_some(after)
                    })
                    .is_ok();
            if fits {
                self.identity = Some(Arc::clone(id));
                self.names = None;
            } else {
                if self.identity.take().is_some() {
                    budget.fetch_sub(old, Ordering::Relaxed);
                }
                if let Some(info) = id.info.as_ref() {
                    self.names = Some((
                        cut_name(info.subject.to_string()),
                        cut_name(info.issuer.to_string()),
                    ));
                }
            }
        }
        if let Some((api, path)) = seen.api {
            let path = cut_path(path);
            match self.apis.iter_mut().find(|(name, _)| name == api) {
                Some((_, last)) => {
                    if last != path {
                        last.clear();
                        last.push_str(path);
                    }
                }
                None => self.apis.push((api.to_owned(), path.to_owned())),
            }
        }
    }

    fn to_seen(&self, fingerprint: &str) -> SeenClient {
        let mut apis: Vec<String> = self.apis.iter().map(|(n, _)| n.clone()).collect();
        apis.sort();
        let info = self.identity.as_deref().and_then(|i| i.info.as_ref());
        let (subject, issuer) = match (&self.names, info) {
            (Some((s, i)), _) => (s.clone(), i.clone()),
            (None, Some(info)) => (
                cut_name(info.subject.to_string()),
                cut_name(info.issuer.to_string()),
            ),
            (None, None) => (String::new(), String::new()),
        };
        let chain = self
            .identity
            .as_deref()
            .map(|i| i.chain.iter().map(|c| STANDARD.encode(c)).collect())
            .unwrap_or_default();
        SeenClient {
            view: ClientView {
                subject,
                issuer,
                fingerprint_sha256: fingerprint.to_owned(),
                not_after: timestamp(self.not_after),
                first_seen: timestamp(self.first_seen.div_euclid(1000)),
                last_seen: timestamp(self.last_seen.div_euclid(1000)),
                requests: self.requests,
                denied: REASONS
                    .iter()
                    .zip(self.denied)
                    .filter(|(_, n)| *n > 0)
                    .map(|(r, n)| (r.as_str().to_owned(), n))
                    .collect(),
                apis,
            },
            chain,
            source: source_name(self.source).to_owned(),
            last_paths: self.apis.iter().cloned().collect::<BTreeMap<_, _>>(),
            last_seen_ms: self.last_seen,
        }
    }
}

fn timestamp(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn source_name(s: CertSource) -> &'static str {
    match s {
        CertSource::Mtls => "mtls",
        CertSource::Header => "header",
    }
}

/// Judges each client's last request to each API it requested under `current` and
/// under `next` (the data plane's [`evaluate`] on chains judged afresh against each
/// snapshot's trust store) and lists those whose status class changes between a pass
/// (2xx, proxied) and a denial (401/403). A 404 either side (the path no longer routes)
/// is neither. A certificate that arrived in the handshake is not presented under a
/// `next` in header mode, and the other way round.
pub fn access_changes(
    current: &Snapshot,
    next: &Snapshot,
    clients: &[SeenClient],
) -> AccessChanges {
    let mut out = AccessChanges::default();
    for c in clients {
        let Some((chain, source)) = decode(c) else {
            continue;
        };
        let now_id = ClientIdentity::judge(chain.clone(), source, &current.trust);
        let next_id = ClientIdentity::judge(chain, source, &next.trust);
        for (api, path) in &c.last_paths {
            let before = pass_or_deny(current, path, &now_id);
            let after = pass_or_deny(next, path, &next_id);
            let entry = || ClientAccess {
                client: c.view.clone(),
                api: api.clone(),
            };
            match (before, after) {
                (Some(true), Some(false)) => out.would_lose_access.push(entry()),
                (Some(false), Some(true)) => out.would_gain_access.push(entry()),
                _ => {}
            }
        }
    }
    out
}

/// `Some(true)` when `path` with `id` would be proxied, `Some(false)` when denied,
/// `None` when it would be 404.
fn pass_or_deny(snapshot: &Snapshot, path: &str, id: &ClientIdentity) -> Option<bool> {
    let route = snapshot.routes.lookup(path);
    let presented = match (snapshot.mode, id.source) {
        (CertAuthMode::Mtls, CertSource::Mtls) | (CertAuthMode::Header, CertSource::Header) => {
            Presented::Certificate(id)
        }
        _ => Presented::None,
    };
    match evaluate(snapshot, route.map(|r| r.as_ref()), presented) {
        Decision::Proxy => Some(true),
        Decision::Deny { .. } => Some(false),
        Decision::NotFound => None,
    }
}

fn decode(c: &SeenClient) -> Option<(Vec<CertificateDer<'static>>, CertSource)> {
    let chain = c
        .chain
        .iter()
        .map(|b| STANDARD.decode(b).ok().map(CertificateDer::from))
        .collect::<Option<Vec<_>>>()?;
    if chain.is_empty() {
        return None;
    }
    let source = match c.source.as_str() {
        "header" => CertSource::Header,
        _ => CertSource::Mtls,
    };
    Some((chain, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::snapshot::TrustState;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    /// Self-signed leaves `CN=c<i>` sharing one key (distinct fingerprints), judged
    /// against an empty trust store (denied, which the inventory records all the same).
    fn identities(n: usize) -> Vec<Arc<ClientIdentity>> {
        let key = KeyPair::generate().unwrap();
        let trust = TrustState::empty(Arc::new(SystemClock));
        (0..n)
            .map(|i| {
                let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
                p.distinguished_name = DistinguishedName::new();
                p.distinguished_name
                    .push(DnType::CommonName, format!("c{i}"));
                let der = p.self_signed(&key).unwrap().der().clone();
                Arc::new(ClientIdentity::judge(vec![der], CertSource::Mtls, &trust))
            })
            .collect()
    }

    #[test]
    fn counts_requests_denials_and_apis_per_client() {
        let ids = identities(2);
        let inv = Inventory::new();
        let ok = Seen {
            api: Some(("svc", "/svc/a")),
            denied: None,
        };
        inv.record_at(&ids[0], ok, 100_000);
        inv.record_at(
            &ids[0],
            Seen {
                api: Some(("files", "/files/x")),
                denied: Some(DenialReason::DnMismatch),
            },
            105_000,
        );
        inv.record_at(
            &ids[0],
            Seen {
                api: Some(("svc", "/svc/b")),
                denied: None,
            },
            103_000,
        );
        inv.record_at(
            &ids[1],
            Seen {
                api: None,
                denied: Some(DenialReason::Untrusted),
            },
            101_000,
        );
        let all = inv.clients();
        assert_eq!(all.len(), 2);
        let c = &all[0];
        assert_eq!(c.view.subject, "CN=c0");
        assert_eq!(c.view.requests, 3);
        assert_eq!(
            c.view.denied,
            BTreeMap::from([("dn_mismatch".to_string(), 1)])
        );
        assert_eq!(c.view.apis, vec!["files", "svc"]);
        assert_eq!(c.view.first_seen.unix_timestamp(), 100);
        // An out-of-order clock never moves last_seen back.
        assert_eq!(c.view.last_seen.unix_timestamp(), 105);
        assert_eq!(c.last_paths["svc"], "/svc/b");
        assert_eq!(c.source, "mtls");
        assert_eq!(
            STANDARD.decode(&c.chain[0]).unwrap(),
            ids[0].chain[0].as_ref()
        );
        let refused = &all[1];
        assert_eq!(refused.view.requests, 1);
        assert_eq!(refused.view.denied["untrusted"], 1);
        assert!(refused.view.apis.is_empty());
        assert_eq!(inv.changes(), 4);
    }

    /// A self-signed leaf with a long CN and `pad` bytes in a private extension.
    fn padded(cn: &str, pad: usize) -> Arc<ClientIdentity> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 55555, 2],
            vec![0; pad],
        )];
        let der = p.self_signed(&key).unwrap().der().clone();
        let trust = TrustState::empty(Arc::new(SystemClock));
        Arc::new(ClientIdentity::judge(vec![der], CertSource::Mtls, &trust))
    }

    #[test]
    fn hostile_sizes_are_bounded_big_chains_kept_out() {
        let inv = Inventory::new();
        let seen = |path: &'static str| Seen {
            api: Some(("svc", path)),
            denied: None,
        };
        // A chain over MAX_CHAIN_BYTES is listed, without its chain.
        let big = padded("big", MAX_CHAIN_BYTES + 1);
        inv.record_at(&big, seen("/svc"), 1_000);
        // A long subject is cut; a long path too (at a character boundary).
        let long = padded(&"é".repeat(60), 10);
        let path: &'static str = Box::leak(format!("/svc/{}", "ü".repeat(400)).into_boxed_str());
        inv.record_at(&long, seen(path), 2_000);
        let all = inv.clients();
        let big_seen = all.iter().find(|c| c.view.subject == "CN=big").unwrap();
        assert!(big_seen.chain.is_empty());
        assert_eq!(inv.kept.load(Ordering::Relaxed), kept_cost(&long));
        let long_seen = all.iter().find(|c| c.view.subject != "CN=big").unwrap();
        assert!(long_seen.view.subject.chars().count() <= MAX_NAME_CHARS + 1);
        let kept = &long_seen.last_paths["svc"];
        assert!(
            kept.len() <= MAX_PATH_BYTES && kept.len() > MAX_PATH_BYTES - 2,
            "{}",
            kept.len()
        );
        assert!(path.starts_with(kept.as_str()));
        assert_eq!(
            cut_name("x".repeat(MAX_NAME_CHARS + 5)).chars().count(),
            MAX_NAME_CHARS + 1
        );
    }

    #[test]
    fn the_kept_budget_is_never_exceeded() {
        let inv = Inventory::new();
        let one = padded("c", 8 * 1024);
        let per = kept_cost(&one);
        let fit = KEPT_BUDGET / per;
        let ids: Vec<Arc<ClientIdentity>> = (0..fit + 3)
            .map(|i| padded(&format!("c{i}"), 8 * 1024))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            inv.record_at(
                id,
                Seen {
                    api: None,
                    denied: None,
                },
                i as i64,
            );
        }
        let used = inv.kept.load(Ordering::Relaxed);
        assert!(used <= KEPT_BUDGET && used + per > KEPT_BUDGET, "{used}");
        let all = inv.clients();
        let kept_cost_sum: usize = all
            .iter()
            .filter(|c| !c.chain.is_empty())
            .map(|c| 3 * STANDARD.decode(&c.chain[0]).unwrap().len() + 1024)
            .sum();
        assert_eq!(
            kept_cost_sum, used,
            "the counter is what the kept identities cost"
        );
        let kept = all.iter().filter(|c| !c.chain.is_empty()).count();
        assert_eq!(all.len(), ids.len(), "every client is listed");
        assert!(kept < ids.len(), "the last ones are listed without a chain");
    }

    #[test]
    fn keeps_the_most_recent_ten_thousand() {
        let n = CAPACITY + SLACK + 1;
        let ids = identities(n);
        let inv = Inventory::new();
        for (i, id) in ids.iter().enumerate() {
            let seen = Seen {
                api: None,
                denied: None,
            };
            inv.record_at(id, seen, 1_000 + i as i64);
        }
        // The trim ran at the (CAPACITY + SLACK + 1)-th client: back to CAPACITY.
        assert_eq!(inv.len(), CAPACITY);
        let all = inv.clients();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].view.subject, format!("CN=c{}", n - 1));
        assert_eq!(
            all[CAPACITY - 1].view.subject,
            format!("CN=c{}", n - CAPACITY)
        );
        // The trim freed what the clients it dropped cost.
        assert_eq!(
            inv.kept.load(Ordering::Relaxed),
            ids[n - CAPACITY..]
                .iter()
                .map(|i| kept_cost(i))
                .sum::<usize>()
        );
        // A client seen again after being trimmed starts afresh.
        inv.record_at(
            &ids[0],
            Seen {
                api: None,
                denied: None,
            },
            99_999_000,
        );
        let again = inv.clients();
        assert_eq!(again[0].view.subject, "CN=c0");
        assert_eq!(again[0].view.requests, 1);
    }

    #[test]
    fn shards_spread_over_the_last_hex_digit() {
        assert_eq!(shard_of("sha256:ab0"), 0);
        assert_eq!(shard_of("sha256:abf"), 15);
        assert_eq!(shard_of(""), 0);
    }

    #[test]
    fn every_reason_has_its_own_counter() {
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(reason_index(*r), i);
        }
    }
}
