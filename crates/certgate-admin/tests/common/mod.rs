//! Test harness: a real admin router on 127.0.0.1:0 over a SQLite file in a tempdir or
//! a PostgreSQL database (per test variant), driven with reqwest; test PKI from rcgen.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use certgate_admin::{AdminState, ReloadHook};
use certgate_store::{Store, TrustStore};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Node {
    pub url: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub truststore: Arc<TrustStore>,
    pub reloads: Arc<AtomicUsize>,
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The store of a test data dir, on the backend of the running test variant
/// (`both_backends!`): a SQLite file in it, or its own PostgreSQL database.
pub fn db_url(data_dir: &Path) -> String {
    crate::backend::store_url(data_dir, "db/certgate.db")
}

impl Node {
    /// Starts a node the way `certgate serve` wires one: open the store, mirror the
    /// listener's SSL flag, start the trust store, serve the admin API.
    pub async fn start(data_dir: &Path, ssl: bool, auto_recover: bool) -> Node {
        Self::start_with_metrics(data_dir, ssl, auto_recover, None).await
    }

    /// Like [`Node::start`], with a Prometheus handle whose output `/metrics` appends.
    pub async fn start_with_metrics(
        data_dir: &Path,
        ssl: bool,
        auto_recover: bool,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Node {
        Self::start_with(data_dir, ssl, auto_recover, metrics, None).await
    }

    /// Like [`Node::start_with_metrics`], with an injected clock (sessions, activity).
    pub async fn start_with(
        data_dir: &Path,
        ssl: bool,
        auto_recover: bool,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        clock: Option<certgate_admin::Clock>,
    ) -> Node {
        let store = Store::open(&db_url(data_dir)).await.unwrap();
        store.set_ssl_enabled(ssl).await.unwrap();
        let truststore = Arc::new(TrustStore::open(data_dir, auto_recover));
        truststore.start(&store.load_config().await.unwrap(), false);
        let reloads = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&reloads);
        let reload: ReloadHook = Arc::new(move || {
            let counter = Arc::clone(&counter);
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        });
        let state = AdminState::new(
            store.clone(),
            Arc::clone(&truststore),
            TOKEN.to_string(),
            reload,
            metrics,
        );
        let state = match clock {
            Some(c) => state.with_clock(c),
            None => state,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(certgate_admin::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Node {
            url,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            store,
            truststore,
            reloads,
            data_dir: data_dir.to_path_buf(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.store.close().await;
    }

    pub fn reload_count(&self) -> usize {
        self.reloads.load(Ordering::SeqCst)
    }

    /// Sends a request with the token; answers the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let req = self
            .client
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string());
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Uploads a certificate component; answers its id.
    pub async fn upload(&self, name: &str, pem: &str) -> i64 {
        let (s, v) = self
            .post("/api/v1/certificates", json!({"name": name, "pem": pem}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn trust(&self, id: i64) -> Value {
        let (s, v) = self
            .post(
                "/api/v1/gateway/trusted-certificates",
                json!({"certificate_id": id}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Asserts an error answer: status, code and (when given) the exact message.
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, message: Option<&str>) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(got.1["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    if let Some(m) = message {
        assert_eq!(got.1["error"]["message"], m, "{}", got.1);
    }
}

/// A self-signed CA certificate named `CN=<cn>,O=certgate-test` valid from
/// `now + from_days` to `now + to_days`.
pub fn ca(cn: &str, from_days: i64, to_days: i64) -> String {
    ca_with_org(cn, "certgate-test", from_days, to_days)
}

pub fn ca_with_org(cn: &str, org: &str, from_days: i64, to_days: i64) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(from_days);
    params.not_after = now + Duration::days(to_days);
    params.self_signed(&key).unwrap().pem()
}

/// A PEM CRL signed by a fresh CA.
pub fn crl_pem() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "CRL CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(params, key);
    let now = OffsetDateTime::now_utc();
    rcgen::CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(7),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(42u64),
            revocation_time: now,
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap()
    .pem()
    .unwrap()
}
