//! The client inventory's shapes and its cluster union (SPEC §13).
//!
//! Each node's data plane keeps the client certificates it has seen (certgate-proxy
//! `inventory`); this module owns what the admin API answers ([`ClientView`]), what a node
//! writes to the store for the other nodes ([`SeenClient`], a view plus what a dry run
//! judges again) and the one rule that joins the parts of several nodes ([`union`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::args;
use crate::store::Store;

type Result<T> = std::result::Result<T, crate::StoreError>;

/// How many clients a node keeps and the admin API answers (the most recent by `last_seen`).
pub const CAPACITY: usize = 10_000;

/// One client certificate of the inventory, as `GET /api/v1/clients` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The leaf's subject DN (RFC 4514).
    pub subject: String,
    /// The leaf's issuer DN (RFC 4514).
    pub issuer: String,
    /// `sha256:` + lowercase hex of the leaf's DER, the inventory's key.
    pub fingerprint_sha256: String,
    /// The leaf's notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When a node first saw it.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// When a node last saw it.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Every request it made, denied ones and handshakes refused included.
    pub requests: u64,
    /// Denials by SPEC §3 reason.
    pub denied: BTreeMap<String, u64>,
    /// The names of the APIs it requested, denied or not, by name.
    pub apis: Vec<String>,
}

/// A client as a node keeps it and writes it to the store: the view, and what a dry run
/// needs to judge its last requests again under another configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenClient {
    /// What the admin API shows.
    #[serde(flatten)]
    pub view: ClientView,
    /// The chain as last presented, leaf first, each certificate's DER in standard base64.
    pub chain: Vec<String>,
    /// How it arrived: `mtls` or `header`.
    pub source: String,
    /// Per API name, the (normalised) path of its last request there.
    pub last_paths: BTreeMap<String, String>,
    /// `last_seen` in Unix milliseconds: orders clients seen within one second.
    #[serde(default)]
    pub last_seen_ms: i64,
}

/// One entry of a dry run's lists: the client as in the inventory, plus the API whose
/// last request would change status class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientAccess {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The API's name.
    pub api: String,
}

/// The SPEC §13 dry-run lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessChanges {
    /// Clients whose last request to an API passes now and would be denied (401/403).
    pub would_lose_access: Vec<ClientAccess>,
    /// Clients whose last request to an API is denied now and would pass.
    pub would_gain_access: Vec<ClientAccess>,
}

/// The clients of several nodes joined by fingerprint (SPEC §13 "the union over the
/// nodes"): counts add up, API names and denial reasons merge, the first sighting is the
/// earliest and the last the latest; the chain and the last paths come from the node that
/// saw the client last. Answers the newest `last_seen` first (fingerprint breaks ties),
/// at most [`CAPACITY`].
pub fn union(parts: impl IntoIterator<Item = Vec<SeenClient>>) -> Vec<SeenClient> {
    let mut joined: HashMap<String, SeenClient> = HashMap::new();
    for part in parts {
        for c in part {
            match joined.get_mut(&c.view.fingerprint_sha256) {
                None => {
                    joined.insert(c.view.fingerprint_sha256.clone(), c);
                }
                Some(have) => join(have, c),
            }
        }
    }
    let mut out: Vec<SeenClient> = joined.into_values().collect();
    sort_newest_first(&mut out);
    out.truncate(CAPACITY);
    out
}

/// Newest `last_seen` first (milliseconds decide within a second); the fingerprint
/// breaks remaining ties so the order is stable.
pub fn sort_newest_first(clients: &mut [SeenClient]) {
    clients.sort_by(|a, b| {
        b.view
            .last_seen
            .cmp(&a.view.last_seen)
            .then_with(|| b.last_seen_ms.cmp(&a.last_seen_ms))
            .then_with(|| a.view.fingerprint_sha256.cmp(&b.view.fingerprint_sha256))
    });
}

fn join(have: &mut SeenClient, other: SeenClient) {
    let v = &mut have.view;
    v.requests = v.requests.saturating_add(other.view.requests);
    for (reason, n) in &other.view.denied {
        let e = v.denied.entry(reason.clone()).or_insert(0);
        *e = e.saturating_add(*n);
    }
    let apis: BTreeSet<String> = v.apis.drain(..).chain(other.view.apis.clone()).collect();
    v.apis = apis.into_iter().collect();
    v.first_seen = v.first_seen.min(other.view.first_seen);
    if (other.view.last_seen, other.last_seen_ms) > (v.last_seen, have.last_seen_ms) {
        v.last_seen = other.view.last_seen;
        have.last_seen_ms = other.last_seen_ms;
        v.subject = other.view.subject;
        v.issuer = other.view.issuer;
        v.not_after = other.view.not_after;
        have.chain = other.chain;
        have.source = other.source;
        // Newer paths win; an API only the older node saw keeps its path.
        for (api, path) in other.last_paths {
            have.last_paths.insert(api, path);
        }
    } else {
        for (api, path) in other.last_paths {
            have.last_paths.entry(api).or_insert(path);
        }
    }
}

/// Whether `c` passes the `GET /api/v1/clients` filters: `api` (it requested that API)
/// and `denied` (`true`: it has a denial; `false`: it has none).
pub fn matches(c: &ClientView, api: Option<&str>, denied: Option<bool>) -> bool {
    api.is_none_or(|a| c.apis.iter().any(|n| n == a))
        && denied.is_none_or(|d| d == c.denied.values().any(|n| *n > 0))
}

#[derive(Debug, sqlx::FromRow)]
struct PartRow {
    node_id: String,
    clients: String,
}

impl Store {
    /// Replaces node `node_id`'s part of the cluster inventory (SPEC §13: each node writes
    /// its part at least every 10 s). Not configuration: no generation, no audit record.
    pub async fn write_inventory_part(&self, node_id: &str, clients: &[SeenClient]) -> Result<()> {
        self.check_migrated()?;
        let json = serde_json::to_string(clients)
            .map_err(|e| crate::StoreError::Corrupt(format!("cannot encode the inventory: {e}")))?;
        let sql = format!(
            "INSERT INTO client_inventory (node_id, written_at, clients) VALUES ($1, {}, $2) \
             ON CONFLICT (node_id) DO UPDATE SET written_at = excluded.written_at, \
             clients = excluded.clients",
            self.pool().dialect().now_secs()
        );
        self.pool()
            .exec(&sql, args![node_id, json])
            .await
            .inspect_err(|e| self.note_error(e))?;
        Ok(())
    }

    /// The inventory parts the nodes other than `except` wrote. A part that does not
    /// decode (written by another version) is skipped with a warning rather than failing
    /// the whole answer.
    pub async fn inventory_parts(&self, except: &str) -> Result<Vec<Vec<SeenClient>>> {
        self.check_migrated()?;
        let rows: Vec<PartRow> = self
            .pool()
            .all(
                "SELECT node_id, clients FROM client_inventory WHERE node_id <> $1",
                args![except],
            )
            .await
            .inspect_err(|e| self.note_error(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match serde_json::from_str(&r.clients) {
                Ok(part) => Some(part),
                Err(e) => {
                    tracing::warn!(node_id = %r.node_id, error = %e, "skipping an inventory part that does not decode");
                    None
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn client(fp: &str, last: OffsetDateTime, requests: u64, api: &str) -> SeenClient {
        SeenClient {
            view: ClientView {
                subject: format!("CN={fp}"),
                issuer: "CN=ca".into(),
                fingerprint_sha256: fp.into(),
                not_after: datetime!(2030-01-01 0:00 UTC),
                first_seen: last,
                last_seen: last,
                requests,
                denied: BTreeMap::from([("dn_mismatch".to_string(), 1)]),
                apis: vec![api.into()],
            },
            chain: vec![format!("chain-{requests}")],
            source: "mtls".into(),
            last_paths: BTreeMap::from([(api.to_string(), format!("/{api}/{requests}"))]),
            last_seen_ms: last.unix_timestamp() * 1000,
        }
    }

    #[test]
    fn the_union_adds_counts_and_keeps_the_newest_chain() {
        let t1 = datetime!(2026-12-01 10:00 UTC);
        let t2 = datetime!(2026-12-01 11:00 UTC);
        let a = client("sha256:aa", t2, 3, "orders");
        let b = client("sha256:aa", t1, 4, "files");
        let other = client("sha256:bb", t1, 1, "orders");
        let joined = union([vec![a], vec![b, other]]);
        assert_eq!(joined.len(), 2);
        let aa = &joined[0];
        assert_eq!(aa.view.fingerprint_sha256, "sha256:aa");
        assert_eq!(aa.view.requests, 7);
        assert_eq!(aa.view.denied["dn_mismatch"], 2);
        assert_eq!(aa.view.apis, vec!["files", "orders"]);
        assert_eq!(aa.view.first_seen, t1);
        assert_eq!(aa.view.last_seen, t2);
        assert_eq!(aa.chain, vec!["chain-3"]);
        assert_eq!(aa.last_paths["orders"], "/orders/3");
        assert_eq!(aa.last_paths["files"], "/files/4");
        assert_eq!(joined[1].view.fingerprint_sha256, "sha256:bb");
    }

    #[test]
    fn filters_by_api_and_denial() {
        let mut c = client("sha256:aa", datetime!(2026-12-01 10:00 UTC), 1, "orders").view;
        assert!(matches(&c, Some("orders"), None));
        assert!(!matches(&c, Some("files"), None));
        assert!(matches(&c, None, Some(true)));
        assert!(!matches(&c, None, Some(false)));
        c.denied.clear();
        assert!(matches(&c, None, Some(false)));
        assert!(!matches(&c, Some("orders"), Some(true)));
    }
}
