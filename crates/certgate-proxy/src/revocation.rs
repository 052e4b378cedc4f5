//! Revocation sources that fetch (SPEC §16 `revocation = crl_dp` / `ocsp`): the CRLs at
//! the distribution points, or the OCSP responders in the AIA, of the leaf and of every
//! intermediate, fetched over http/https
//! from the hosts of `revocation_fetch_hosts` only, cached until their nextUpdate (at
//! most 24 h), refreshed in the background, one fetch per URL however many handshakes
//! wait for it (single-flight).
//!
//! The module owns the process-wide CRL cache and the fetch thread. Fetches run on a
//! runtime of their own (one thread), so a handshake that waits for a first fetch cannot
//! starve the fetch it waits for. Judging is synchronous (the rustls verifier and the
//! post-handshake judgement are sync): a handshake whose CRL is not cached waits for the
//! fetch at most `revocation_fetch_timeout_ms` (inside `block_in_place` on a
//! multi-thread runtime), then judges with what it has. A cached CRL costs a map lookup.
//!
//! Policy lives with the caller ([`crate::identity`]): this module answers `Good` (with
//! the last second that answer holds), `Revoked`, or `Unknown`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use certgate_pki::ocsp::{OcspAnswer, OcspQuery, OcspStatus};
use certgate_pki::{FetchedCrl, Judge};
use certgate_store::model::RevocationSource;
use http_body_util::{BodyExt, Full, Limited};
use ipnet::IpNet;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest;

/// The largest CRL body accepted (SPEC §16).
pub const MAX_CRL_BYTES: usize = 10 * 1024 * 1024;
/// Redirects followed per fetch (SPEC §16).
pub const MAX_REDIRECTS: usize = 3;
/// The longest a fetched answer is kept, whatever its nextUpdate says (SPEC §16).
pub const MAX_CACHE_SECS: u64 = 24 * 3600;
/// After a failed fetch, handshakes during this long get "unknown" at once instead of
/// each waiting for a new fetch (a responder that is down is asked once per period).
pub const FAILURE_BACKOFF_SECS: u64 = 5;
/// How long an OCSP answer without nextUpdate is kept.
pub const OCSP_NO_NEXT_UPDATE_SECS: u64 = 300;
/// Clock skew tolerated on an OCSP thisUpdate in the future.
const OCSP_SKEW_SECS: u64 = 300;

/// The fetching part of the revocation settings of one configuration.
#[derive(Debug)]
pub(crate) struct FetchPolicy {
    source: RevocationSource,
    hosts: Arc<FetchHosts>,
    timeout: Duration,
}

/// `revocation_fetch_hosts`: names (lower case) and networks.
#[derive(Debug, Default)]
struct FetchHosts {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl FetchHosts {
    fn new(list: &[String]) -> FetchHosts {
        let mut hosts = FetchHosts::default();
        for entry in list {
            let t = entry.trim();
            if let Ok(net) = t.parse::<IpNet>() {
                hosts.nets.push(net);
            } else if let Ok(ip) = t.parse::<IpAddr>() {
                hosts.nets.push(IpNet::from(ip));
            } else {
                hosts.names.push(t.to_ascii_lowercase());
            }
        }
        hosts
    }

    /// Whether `uri` is http/https to a listed host (matched as written: a name, or an
    /// IP literal inside a listed network).
    fn allows(&self, uri: &http::Uri) -> bool {
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) {
            return false;
        }
        let Some(host) = uri.host() else {
            return false;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.nets.iter().any(|n| n.contains(&ip)),
            Err(_) => {
                let host = bare.trim_end_matches('.').to_ascii_lowercase();
                self.names.contains(&host)
            }
        }
    }
}

/// What the fetched sources say about a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchedStatus {
    /// Not revoked; the answer holds through this second (then the chain is judged
    /// again, which starts a background refresh of a CRL near its end).
    Good { until: u64 },
    /// A fetched CRL lists a certificate of the chain.
    Revoked { until: u64 },
    /// A certificate names a source whose answer cannot be had (refused, failed,
    /// timed out, lapsed, bad signature).
    Unknown,
}

impl FetchPolicy {
    /// The policy of a configuration; `None` for `revocation = crl` (nothing fetched).
    pub(crate) fn new(
        source: RevocationSource,
        hosts: &[String],
        timeout_ms: u64,
    ) -> Option<FetchPolicy> {
        (source != RevocationSource::Crl).then(|| FetchPolicy {
            source,
            hosts: Arc::new(FetchHosts::new(hosts)),
            timeout: Duration::from_millis(timeout_ms.max(1)),
        })
    }

    /// Checks a chain the judge accepted against the sources its certificates name.
    pub(crate) fn check(
        &self,
        judge: &Judge,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> FetchedStatus {
        if self.source == RevocationSource::Ocsp {
            return self.check_ocsp(judge, leaf, intermediates, now);
        }
        let now_secs = now.as_secs();
        let deadline = Instant::now() + self.timeout;
        let mut until = u64::MAX;
        let mut crls: Vec<Arc<Cached>> = Vec::new();
        for cert in std::iter::once(leaf).chain(intermediates) {
            let urls = certgate_pki::revocation_urls(cert).crl;
            if urls.is_empty() {
                continue;
            }
            let Some(issuer) = certgate_pki::fetched::issuer_of(cert) else {
                return FetchedStatus::Unknown;
            };
            let mut found = None;
            for url in &urls {
                if let Some(c) = fetcher().lookup(url, url, Job::Crl, self, now_secs, deadline) {
                    // Only a CRL of the certificate's own issuer speaks for it.
                    if c.crl().is_some_and(|crl| crl.issuer() == issuer.as_slice()) {
                        found = Some(c);
                        break;
                    }
                    tracing::warn!(url = %url, "fetched CRL is not from the certificate's issuer");
                }
            }
            let Some(c) = found else {
                return FetchedStatus::Unknown;
            };
            until = until.min(c.refresh_at.saturating_sub(1));
            crls.push(c);
        }
        let refs: Vec<&FetchedCrl> = crls.iter().filter_map(|c| c.crl()).collect();
        match judge.check_fetched(leaf, intermediates, now, &refs) {
            Ok(()) => FetchedStatus::Good { until },
            Err(certgate_pki::DenyReason::Revoked) => FetchedStatus::Revoked { until },
            Err(_) => FetchedStatus::Unknown,
        }
    }

    /// `revocation = ocsp`: each certificate of the chain that names an OCSP responder
    /// is asked about (one POST per responder and certificate, cached); the first
    /// responder that gives a signed answer decides. `unknown` = cannot be learned.
    fn check_ocsp(
        &self,
        judge: &Judge,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> FetchedStatus {
        let now_secs = now.as_secs();
        let deadline = Instant::now() + self.timeout;
        let mut until = u64::MAX;
        let mut revoked = false;
        for cert in std::iter::once(leaf).chain(intermediates) {
            let urls = certgate_pki::revocation_urls(cert).ocsp;
            if urls.is_empty() {
                continue;
            }
            let Some(query) = judge
                .issuer_spki(cert, intermediates, now)
                .and_then(|spki| certgate_pki::ocsp::query(cert, &spki))
            else {
                return FetchedStatus::Unknown;
            };
            let id = hex::encode(sha2::Sha256::digest(&query.cert_id));
            let mut answer = None;
            for url in &urls {
                let key = format!("{url}#{id}");
                let job = Job::Ocsp(query.clone());
                if let Some(c) = fetcher().lookup(&key, url, job, self, now_secs, deadline) {
                    answer = c.ocsp().map(|a| (a, c.refresh_at));
                    break;
                }
            }
            match answer {
                Some((OcspStatus::Good, refresh_at)) => {
                    until = until.min(refresh_at.saturating_sub(1))
                }
                Some((OcspStatus::Revoked, refresh_at)) => {
                    revoked = true;
                    until = until.min(refresh_at.saturating_sub(1));
                }
                Some((OcspStatus::Unknown, _)) | None => return FetchedStatus::Unknown,
            }
        }
        if revoked {
            FetchedStatus::Revoked { until }
        } else {
            FetchedStatus::Good { until }
        }
    }
}

/// What a fetch is for.
#[derive(Debug, Clone)]
enum Job {
    /// GET a CRL.
    Crl,
    /// POST an OCSP request.
    Ocsp(OcspQuery),
}

impl Job {
    fn source(&self) -> &'static str {
        match self {
            Job::Crl => "crl_dp",
            Job::Ocsp(_) => "ocsp",
        }
    }
}

/// A checked answer.
#[derive(Debug)]
enum Answer {
    Crl(FetchedCrl),
    Ocsp(OcspAnswer),
}

/// An answer in the cache.
#[derive(Debug)]
struct Cached {
    answer: Answer,
    /// Unix seconds from which it is no longer used: min(nextUpdate, fetched + 24 h).
    expires: u64,
    /// Unix seconds from which a lookup starts a background refresh (3/4 of its life).
    refresh_at: u64,
}

impl Cached {
    fn crl(&self) -> Option<&FetchedCrl> {
        match &self.answer {
            Answer::Crl(c) => Some(c),
            Answer::Ocsp(_) => None,
        }
    }

    fn ocsp(&self) -> Option<OcspStatus> {
        match &self.answer {
            Answer::Ocsp(a) => Some(a.status),
            Answer::Crl(_) => None,
        }
    }
}

/// One fetch in progress; waiters block on `cv` until `done`.
#[derive(Debug, Default)]
struct Flight {
    done: Mutex<bool>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    answer: Option<Arc<Cached>>,
    /// Unix seconds until which a failed fetch is not retried.
    failed_until: u64,
    flight: Option<Arc<Flight>>,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The process-wide cache and the fetch runtime.
struct Fetcher {
    runtime: Option<tokio::runtime::Handle>,
    slots: Mutex<HashMap<String, Slot>>,
    client: OnceLock<Option<HttpClient>>,
}

fn fetcher() -> &'static Fetcher {
    static FETCHER: OnceLock<Fetcher> = OnceLock::new();
    FETCHER.get_or_init(|| Fetcher {
        runtime: spawn_runtime(),
        slots: Mutex::new(HashMap::new()),
        client: OnceLock::new(),
    })
}

/// A current-thread runtime on a thread of its own, kept for the process.
fn spawn_runtime() -> Option<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("certgate-revocation".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "revocation fetch runtime failed to start");
                    let _ = tx.send(None);
                    return;
                }
            };
            let _ = tx.send(Some(rt.handle().clone()));
            rt.block_on(std::future::pending::<()>());
        });
    match spawned {
        Ok(_) => rx.recv().ok().flatten(),
        Err(e) => {
            tracing::error!(error = %e, "revocation fetch thread failed to start");
            None
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Fetcher {
    /// The cached CRL of `url` usable at `now`, fetching it (waiting until `deadline`)
    /// when there is none. Starts a background refresh of an answer near its end.
    fn lookup(
        &'static self,
        key: &str,
        url: &str,
        job: Job,
        policy: &FetchPolicy,
        now: u64,
        deadline: Instant,
    ) -> Option<Arc<Cached>> {
        let source = job.source();
        let Ok(uri) = url.parse::<http::Uri>() else {
            record_fetch(source, "invalid_url");
            return None;
        };
        if !policy.hosts.allows(&uri) {
            record_fetch(source, "refused");
            tracing::warn!(url = %url, "revocation fetch refused: not http/https to a host of revocation_fetch_hosts");
            return None;
        }
        let flight = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.entry(key.to_owned()).or_default();
            if let Some(answer) = slot.answer.as_ref().filter(|a| now < a.expires).cloned() {
                if now >= answer.refresh_at && slot.flight.is_none() {
                    slot.flight = Some(self.start(key, url, job, policy));
                }
                return Some(answer);
            }
            if now < slot.failed_until && slot.flight.is_none() {
                return None;
            }
            slot.flight
                .get_or_insert_with(|| self.start(key, url, job, policy))
                .clone()
        };
        wait(&flight, deadline);
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .get(key)
            .and_then(|s| s.answer.as_ref())
            .filter(|a| now < a.expires)
            .cloned()
    }

    /// Starts the one fetch for `key` on the fetch runtime (the caller holds the lock).
    fn start(&'static self, key: &str, url: &str, job: Job, policy: &FetchPolicy) -> Arc<Flight> {
        let flight = Arc::new(Flight::default());
        let Some(runtime) = &self.runtime else {
            *flight.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
            return flight;
        };
        let key = key.to_owned();
        let url = url.to_owned();
        let hosts = policy.hosts.clone();
        let timeout = policy.timeout;
        let f = flight.clone();
        runtime.spawn(async move {
            let source = job.source();
            let result = self.fetch_answer(&url, &job, &hosts, timeout).await;
            let now = unix_now();
            {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                let slot = slots.entry(key.clone()).or_default();
                match result {
                    Ok((answer, next_update)) => {
                        record_fetch(source, "ok");
                        let expires = next_update.min(now + MAX_CACHE_SECS);
                        let refresh_at = now + expires.saturating_sub(now) * 3 / 4;
                        record_cached(source, &url, &answer, now);
                        slot.answer = Some(Arc::new(Cached {
                            answer,
                            expires,
                            refresh_at,
                        }));
                        slot.failed_until = 0;
                    }
                    Err(result) => {
                        record_fetch(source, result);
                        tracing::warn!(url = %url, source, result, "revocation fetch failed");
                        slot.failed_until = now + FAILURE_BACKOFF_SECS;
                    }
                }
                slot.flight = None;
            }
            *f.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
            f.cv.notify_all();
        });
        flight
    }

    /// One fetch within `timeout`, checked: the answer and until when it may be used
    /// (its nextUpdate), or the `result` label of the failure.
    async fn fetch_answer(
        &self,
        url: &str,
        job: &Job,
        hosts: &FetchHosts,
        timeout: Duration,
    ) -> Result<(Answer, u64), &'static str> {
        let body = match job {
            Job::Crl => None,
            Job::Ocsp(q) => Some(Bytes::from(q.request.clone())),
        };
        let body = match tokio::time::timeout(timeout, self.fetch(url, hosts, body)).await {
            Ok(r) => r?,
            Err(_) => return Err("timeout"),
        };
        match job {
            Job::Crl => {
                let crl = FetchedCrl::parse(&body).map_err(|_| "invalid")?;
                let next = crl.next_update().unwrap_or(u64::MAX);
                Ok((Answer::Crl(crl), next))
            }
            Job::Ocsp(q) => {
                let now = unix_now();
                let answer = certgate_pki::ocsp::check(q, &body, now).map_err(|e| {
                    tracing::warn!(url = %url, error = %e, "OCSP response refused");
                    "invalid"
                })?;
                if answer.this_update > now + OCSP_SKEW_SECS {
                    return Err("invalid");
                }
                let next = answer.next_update.unwrap_or(now + OCSP_NO_NEXT_UPDATE_SECS);
                if next <= now {
                    return Err("stale");
                }
                Ok((Answer::Ocsp(answer), next))
            }
        }
    }

    fn client(&self) -> Option<&HttpClient> {
        self.client
            .get_or_init(|| {
                let provider = crate::tls::provider();
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .ok()?;
                let connector = builder.https_or_http().enable_http1().build();
                Some(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(connector),
                )
            })
            .as_ref()
    }

    /// GET (or, with `post`, an OCSP POST) with redirects (at most [`MAX_REDIRECTS`],
    /// each to an allowed host) and the body limit.
    async fn fetch(
        &self,
        url: &str,
        hosts: &FetchHosts,
        post: Option<Bytes>,
    ) -> Result<Bytes, &'static str> {
        let client = self.client().ok_or("no_client")?;
        let mut uri: http::Uri = url.parse().map_err(|_| "invalid_url")?;
        for hop in 0..=MAX_REDIRECTS {
            if !hosts.allows(&uri) {
                tracing::warn!(url = %uri, "revocation fetch refused: not http/https to a host of revocation_fetch_hosts");
                return Err("refused");
            }
            let req = match &post {
                None => http::Request::get(uri.clone()).body(Full::new(Bytes::new())),
                Some(body) => http::Request::post(uri.clone())
                    .header(http::header::CONTENT_TYPE, "application/ocsp-request")
                    .body(Full::new(body.clone())),
            }
            .map_err(|_| "invalid_url")?;
            let resp = client.request(req).await.map_err(|_| "unreachable")?;
            let status = resp.status();
            if status.is_redirection() {
                if hop == MAX_REDIRECTS {
                    return Err("too_many_redirects");
                }
                let location = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("http_error")?;
                uri = resolve(&uri, location).ok_or("http_error")?;
                continue;
            }
            if !status.is_success() {
                return Err("http_error");
            }
            let declared = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_CRL_BYTES as u64) {
                return Err("too_large");
            }
            let body = Limited::new(resp.into_body(), MAX_CRL_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        "too_large"
                    } else {
                        "unreachable"
                    }
                })?;
            return Ok(body.to_bytes());
        }
        Err("too_many_redirects")
    }
}

/// A `Location` value against the URI it answered: absolute, or an absolute path.
fn resolve(base: &http::Uri, location: &str) -> Option<http::Uri> {
    let uri: http::Uri = location.parse().ok()?;
    if uri.scheme().is_some() {
        return Some(uri);
    }
    if !location.starts_with('/') {
        return None;
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = uri.path_and_query().cloned();
    http::Uri::from_parts(parts).ok()
}

/// Waits for a flight until `deadline`, letting a multi-thread runtime move its other
/// tasks off this worker meanwhile.
fn wait(flight: &Flight, deadline: Instant) {
    let block = || {
        let mut done = flight.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            done = match flight.cv.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(e) => e.into_inner().0,
            };
        }
    };
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(block),
        _ => block(),
    }
}

/// `certgate_revocation_fetch_total{source,result}`.
fn record_fetch(source: &'static str, result: &'static str) {
    metrics::counter!("certgate_revocation_fetch_total", "source" => source, "result" => result)
        .increment(1);
}

/// The gauges of a freshly cached answer: when it was fetched (cache age = now − value)
/// and, for a CRL, its nextUpdate (`certgate_crl_next_update_seconds{issuer,url}`).
fn record_cached(source: &'static str, url: &str, answer: &Answer, fetched_at: u64) {
    metrics::gauge!("certgate_revocation_cache_fetched_at_seconds", "source" => source, "url" => url.to_owned())
        .set(fetched_at as f64);
    if let Answer::Crl(crl) = answer {
        if let Some(next) = crl.next_update() {
            metrics::gauge!("certgate_crl_next_update_seconds", "issuer" => crl.issuer_dn(), "url" => url.to_owned())
                .set(next as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_names_and_networks_as_written() {
        let hosts = FetchHosts::new(&["crl.example.com".into(), "127.0.0.0/8".into()]);
        let ok = |u: &str| hosts.allows(&u.parse().unwrap());
        assert!(ok("http://crl.example.com/a.crl"));
        assert!(ok("https://CRL.example.com:8443/a.crl"));
        assert!(ok("http://127.0.0.1:1234/a.crl"));
        assert!(!ok("http://evil.example.com/a.crl"));
        assert!(!ok("http://10.0.0.1/a.crl"));
        assert!(!ok("ftp://crl.example.com/a.crl"));
        assert!(!ok("ldap://crl.example.com/a.crl"));
        assert!(!FetchHosts::new(&[]).allows(&"http://127.0.0.1/".parse().unwrap()));
    }

    #[test]
    fn relative_redirects_keep_the_authority() {
        let base: http::Uri = "http://127.0.0.1:80/a".parse().unwrap();
        assert_eq!(
            resolve(&base, "/b.crl").unwrap().to_string(),
            "http://127.0.0.1:80/b.crl"
        );
        assert_eq!(
            resolve(&base, "http://x.test/c").unwrap().to_string(),
            "http://x.test/c"
        );
        assert!(resolve(&base, "c").is_none());
    }
}
