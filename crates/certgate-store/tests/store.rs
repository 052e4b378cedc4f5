//! The store on both backends (one suite: `sqlite::…` and `postgres::…`): opening,
//! migrations, the generation and its change feed, transactional refusals, reopening,
//! concurrent writers and migration between backends; PostgreSQL-only: outages, other
//! writers' changes arriving through NOTIFY/polling, concurrent first starts.

#[path = "support/backend.rs"]
mod backend;
#[path = "support/pg.rs"]
mod pg;

use certgate_store::model::CertAuthMode;
use certgate_store::views::{ApiBody, ClientCertAuthPatch};
use certgate_store::{ErrorKind, Store};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use time::{Duration, OffsetDateTime};

fn ca_pem(cn: &str, days: i64) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    params.self_signed(&key).unwrap().pem()
}

fn url(dir: &std::path::Path) -> String {
    backend::store_url(dir, "nested/dir/certgate.db")
}

#[tokio::test]
async fn open_creates_file_and_directories_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    assert!(dir.path().join("nested/dir/certgate.db").is_file());
    store.ping().await.unwrap();
    assert_eq!(store.generation().await.unwrap(), 1);
    let cfg = store.load_config().await.unwrap();
    assert_eq!(cfg.generation, 1);
    assert!(!cfg.ssl_enabled);
    assert_eq!(cfg.client_cert_auth, Default::default());
    assert!(cfg.trusted_certificates.is_empty() && cfg.apis.is_empty());
    store.close().await;
    // WAL leaves its side files next to the database while open.
    let store = Store::open(&url(dir.path())).await.unwrap();
    store.set_ssl_enabled(true).await.unwrap();
    assert!(dir.path().join("nested/dir/certgate.db-wal").exists());
    store.close().await;
}

#[tokio::test]
async fn unknown_schemes_are_refused_and_an_unreachable_postgres_is_unavailable() {
    assert!(Store::open("mysql://x").await.is_err());
    // A port nothing listens on (the shared server's port, plus one, on a fresh server
    // that was stopped): connection refused is 503 store_unavailable, not a 500.
    let mut server = pg::PgServer::start();
    let url = server.url("postgres");
    server.stop();
    let e = Store::open(&url).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (503, "store_unavailable"), "{e}");
}

async fn every_write_bumps_the_generation_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let mut rx = store.subscribe();
    assert_eq!(*rx.borrow_and_update(), 1);

    store.set_ssl_enabled(true).await.unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    // Same value again: no write, no bump.
    store.set_ssl_enabled(true).await.unwrap();
    assert!(!rx.has_changed().unwrap());
    assert_eq!(store.generation().await.unwrap(), 2);

    let now = OffsetDateTime::now_utc();
    let c = store
        .create_component("root", &ca_pem("Root", 200), now)
        .await
        .unwrap();
    store.add_trusted(c.id, None, now).await.unwrap();
    store
        .create_api(&ApiBody {
            name: "a".into(),
            base_path: "/a".into(),
            upstream: "http://127.0.0.1:1".into(),
        })
        .await
        .unwrap();
    assert_eq!(*rx.borrow_and_update(), 5);
    assert_eq!(store.load_config().await.unwrap().generation, 5);

    // Refused writes change nothing, the generation included.
    let before = store.load_config().await.unwrap();
    let e = store.add_trusted(c.id, None, now).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::Invalid, "already_trusted")
    );
    let e = store
        .update_client_cert_auth(&ClientCertAuthPatch {
            mode: Some(CertAuthMode::Header),
            required: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "header_name_required"));
    let e = store
        .create_api(&ApiBody {
            name: "b".into(),
            base_path: "/a".into(),
            upstream: "http://h".into(),
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "duplicate_base_path"));
    assert_eq!(
        store.deactivate_component(c.id).await.unwrap_err().status(),
        409
    );
    assert_eq!(
        store.get_api(99).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(!rx.has_changed().unwrap());
    assert_eq!(store.load_config().await.unwrap(), before);
    store.close().await;
}

async fn ssl_off_refuses_trust_with_the_exact_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let c = store
        .create_component("root", &ca_pem("Root", 200), now)
        .await
        .unwrap();
    let e = store.add_trusted(c.id, None, now).await.unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(
        e.to_string(),
        "Certificates can be added only when SSL is enabled."
    );
    let e = store
        .update_client_cert_auth(&ClientCertAuthPatch {
            mode: Some(CertAuthMode::Mtls),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (409, "ssl_disabled"));
    store.close().await;
}

async fn load_config_carries_pems_overrides_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    store.set_ssl_enabled(true).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let b_pem = ca_pem("B", 200);
    let b = store
        .create_component("b", &ca_pem("B-old", 100), now)
        .await
        .unwrap();
    store.add_version(b.id, &b_pem, now).await.unwrap();
    let a = store
        .create_component("a", &ca_pem("A", 200), now)
        .await
        .unwrap();
    // Trust-table order is insertion order.
    store.add_trusted(b.id, Some(1), now).await.unwrap();
    store.add_trusted(a.id, None, now).await.unwrap();
    let s = store
        .update_client_cert_auth(&ClientCertAuthPatch {
            trusted_dns: Some(vec!["CN=z".into(), "CN=a".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.trusted_dns, ["CN=z", "CN=a"]);
    let api = store
        .create_api(&ApiBody {
            name: "x".into(),
            base_path: "/x".into(),
            upstream: "https://h/base".into(),
        })
        .await
        .unwrap();
    store
        .set_api_override(
            api.id,
            &certgate_store::model::ApiOverride {
                required: Some(true),
                trusted_dns: Some(vec![]),
            },
        )
        .await
        .unwrap();

    let cfg = store.load_config().await.unwrap();
    let ids: Vec<i64> = cfg
        .trusted_certificates
        .iter()
        .map(|t| t.certificate_id)
        .collect();
    assert_eq!(ids, [b.id, a.id]);
    let tb = &cfg.trusted_certificates[0];
    assert_eq!((tb.version, tb.latest_version), (1, 2));
    assert_eq!(tb.subject, "CN=B-old");
    assert!(tb.pem.contains("BEGIN CERTIFICATE"));
    assert_eq!(cfg.client_cert_auth.trusted_dns, ["CN=z", "CN=a"]);
    let ov = cfg.apis[0].override_.as_ref().unwrap();
    assert_eq!(
        (ov.required, ov.trusted_dns.as_deref()),
        (Some(true), Some(&[][..]))
    );

    // Reopening the file gives the same configuration.
    store.close().await;
    let store = Store::open(&url(dir.path())).await.unwrap();
    assert_eq!(store.load_config().await.unwrap(), cfg);
    assert_eq!(*store.subscribe().borrow(), cfg.generation);
    store.close().await;
}

async fn concurrent_writers_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_api(&ApiBody {
                    name: format!("api{i}"),
                    base_path: format!("/p{i}"),
                    upstream: "http://127.0.0.1:1".into(),
                })
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.list_apis().await.unwrap().len(), 16);
    assert_eq!(store.generation().await.unwrap(), 17);
    store.close().await;
}

/// A dry run (`Store::rehearse`) answers the configuration the write would leave and
/// changes nothing; a refused write answers the real write's error.
async fn rehearsed_writes_answer_the_new_configuration_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let now = OffsetDateTime::now_utc();
    store.set_ssl_enabled(true).await.unwrap();
    let c = store
        .create_component("root", &ca_pem("Root", 200), now)
        .await
        .unwrap();
    store.add_trusted(c.id, None, now).await.unwrap();
    let before = store.load_config().await.unwrap();
    let mut rx = store.subscribe();
    rx.borrow_and_update();

    let (_, after) = store
        .rehearse(|s| async move { s.remove_trusted(c.id).await })
        .await
        .unwrap();
    assert!(after.trusted_certificates.is_empty());
    assert_eq!(after.generation, before.generation);
    let (_, after) = store
        .rehearse(|s| async move {
            s.update_client_cert_auth(&ClientCertAuthPatch {
                required: Some(true),
                trusted_dns: Some(vec!["CN=a".into()]),
                ..Default::default()
            })
            .await
        })
        .await
        .unwrap();
    assert!(after.client_cert_auth.required);
    assert_eq!(after.client_cert_auth.trusted_dns, vec!["CN=a".to_string()]);

    let e = store
        .rehearse(|s| async move {
            s.update_client_cert_auth(&ClientCertAuthPatch {
                mode: Some(CertAuthMode::Header),
                required: Some(true),
                ..Default::default()
            })
            .await
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "header_name_required"));
    // A write that changes nothing leaves the current configuration.
    let (_, same) = store
        .rehearse(|s| async move { s.set_ssl_enabled(true).await })
        .await
        .unwrap();
    assert_eq!(same, before);

    assert!(!rx.has_changed().unwrap());
    assert_eq!(store.load_config().await.unwrap(), before);
    store.close().await;
}

both_backends!(
    rehearsed_writes_answer_the_new_configuration_and_change_nothing,
    every_write_bumps_the_generation_and_notifies,
    ssl_off_refuses_trust_with_the_exact_message,
    load_config_carries_pems_overrides_and_order,
    concurrent_writers_all_commit,
);

/// A store with one of everything: components with two versions, the trust table, the
/// gateway DN list and settings, APIs with and without overrides.
async fn populate(store: &Store) {
    let now = OffsetDateTime::now_utc();
    store.set_ssl_enabled(true).await.unwrap();
    let a = store
        .create_component("a", &ca_pem("A", 200), now)
        .await
        .unwrap();
    store
        .add_version(a.id, &ca_pem("A2", 300), now)
        .await
        .unwrap();
    let b = store
        .create_component("b", &ca_pem("B", 200), now)
        .await
        .unwrap();
    store.add_trusted(b.id, None, now).await.unwrap();
    store.add_trusted(a.id, Some(1), now).await.unwrap();
    store
        .update_client_cert_auth(&ClientCertAuthPatch {
            mode: Some(CertAuthMode::Mtls),
            required: Some(true),
            trusted_dns: Some(vec!["CN=z".into(), "CN=*,O=Acme".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    for (i, ov) in [None, Some(vec![])].into_iter().enumerate() {
        let api = store
            .create_api(&ApiBody {
                name: format!("api{i}"),
                base_path: format!("/p{i}"),
                upstream: "http://127.0.0.1:1".into(),
            })
            .await
            .unwrap();
        if let Some(dns) = ov {
            store
                .set_api_override(
                    api.id,
                    &certgate_store::model::ApiOverride {
                        required: Some(false),
                        trusted_dns: Some(dns),
                    },
                )
                .await
                .unwrap();
        }
    }
    store.deactivate_component(99).await.unwrap_err();
}

#[tokio::test]
async fn migrate_sqlite_to_postgres_and_back_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    populate(&sqlite).await;
    let original = sqlite.load_config().await.unwrap();
    let pg = Store::open(&pg::database()).await.unwrap();
    let report = sqlite.migrate_into(&pg).await.unwrap();
    assert_eq!(
        (
            report.components,
            report.versions,
            report.trusted_certificates,
            report.trusted_dns,
            report.apis
        ),
        (2, 3, 2, 2, 2)
    );
    assert_eq!(pg.load_config().await.unwrap(), original);
    assert_eq!(
        pg.list_components(false, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        sqlite
            .list_components(false, OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    // New rows get fresh ids after the copied ones (the identity sequences moved).
    let c = pg
        .create_component("c", &ca_pem("C", 10), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(c.id, 3);
    let after_write = pg.load_config().await.unwrap();

    // Into a store that holds data: refused, nothing changes.
    let e = sqlite.migrate_into(&pg).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (409, "target_not_empty"));
    assert_eq!(pg.load_config().await.unwrap(), after_write);

    // And back into a new SQLite file.
    let back = Store::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    pg.migrate_into(&back).await.unwrap();
    assert_eq!(back.load_config().await.unwrap(), after_write);
    for s in [sqlite, pg, back] {
        s.close().await;
    }
}

#[tokio::test]
async fn postgres_nodes_starting_at_once_on_an_empty_database_all_open() {
    let url = pg::database();
    let opens = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Store::open(&url).await })
    });
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().unwrap());
    }
    for s in &stores {
        assert_eq!(s.generation().await.unwrap(), 1);
    }
    stores[0].set_ssl_enabled(true).await.unwrap();
    assert_eq!(stores[5].generation().await.unwrap(), 2);
}

#[tokio::test]
async fn postgres_writers_on_several_nodes_serialize() {
    let url = pg::database();
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            // Same base path from both nodes: exactly one of each pair wins.
            store
                .create_api(&ApiBody {
                    name: format!("api{i}"),
                    base_path: format!("/p{}", i / 2),
                    upstream: "http://127.0.0.1:1".into(),
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), "duplicate_base_path"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(a.list_apis().await.unwrap().len(), 10);
    assert_eq!(b.generation().await.unwrap(), 11);
}

/// Waits (bounded) until `rx` shows at least `g`; answers how long it took.
async fn until_generation(
    rx: &mut tokio::sync::watch::Receiver<u64>,
    g: u64,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|v| *v >= g))
        .await
        .expect("generation not seen within 5 s")
        .unwrap();
    start.elapsed()
}

#[tokio::test]
async fn postgres_changes_of_other_nodes_arrive_by_notify_and_by_polling() {
    let url = pg::database();
    let writer = Store::open(&url).await.unwrap();
    let reader = Store::open(&url).await.unwrap();
    let mut rx = reader.subscribe();
    writer.set_ssl_enabled(true).await.unwrap();
    let took = until_generation(&mut rx, 2).await;
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");

    // A commit without NOTIFY (as if the notification were lost): the poll finds it.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE config_generation SET value = value + 1 WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    let took = until_generation(&mut rx, 3).await;
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    pool.close().await;
}

#[tokio::test]
async fn postgres_outage_refuses_writes_and_recovers() {
    let mut server = pg::PgServer::start();
    let url = server.fresh_database();
    let store = Store::open(&url).await.unwrap();
    populate(&store).await;
    let before = store.load_config().await.unwrap();
    let mut reach = store.subscribe_reachable();
    assert!(store.reachable());

    server.stop();
    let e = store
        .create_api(&ApiBody {
            name: "late".into(),
            base_path: "/late".into(),
            upstream: "http://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (503, "store_unavailable"), "{e}");
    assert_eq!(
        e.to_string(),
        "The configuration store is unreachable; nothing was changed. Try again when it is back."
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), reach.wait_for(|r| !*r))
        .await
        .expect("unreachable noticed")
        .unwrap();

    server.restart();
    let back = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(5), reach.wait_for(|r| *r))
        .await
        .expect("reconnected")
        .unwrap();
    assert!(
        back.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
    // The refused write left nothing behind.
    assert_eq!(store.load_config().await.unwrap(), before);
    store.set_ssl_enabled(false).await.unwrap();
    assert_eq!(store.generation().await.unwrap(), before.generation + 1);
}

#[tokio::test]
async fn postgres_store_opened_during_an_outage_migrates_when_it_returns() {
    let mut server = pg::PgServer::start();
    let url = server.fresh_database();
    server.stop();
    let store = Store::open_lazy(&url).await.unwrap();
    assert!(!store.reachable());
    assert_eq!(
        store.load_config().await.unwrap_err().code(),
        "store_unavailable"
    );
    server.restart();
    let mut reach = store.subscribe_reachable();
    tokio::time::timeout(std::time::Duration::from_secs(5), reach.wait_for(|r| *r))
        .await
        .expect("reconnected")
        .unwrap();
    assert_eq!(store.load_config().await.unwrap().generation, 1);
    assert_eq!(*store.subscribe().borrow(), 1);
}

#[tokio::test]
async fn revocation_fetch_settings_are_kept_and_bad_values_refused() {
    use certgate_store::model::RevocationSource;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let defaults = store.load_config().await.unwrap().client_cert_auth;
    assert_eq!(defaults.revocation, RevocationSource::Crl);
    assert!(defaults.revocation_fetch_hosts.is_empty());
    assert_eq!(defaults.revocation_fetch_timeout_ms, 3000);

    store
        .update_client_cert_auth(&ClientCertAuthPatch {
            revocation: Some(RevocationSource::CrlDp),
            revocation_fetch_hosts: Some(vec![" CRL.Example.com ".into(), "10.0.0.0/8".into()]),
            revocation_fetch_timeout_ms: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    let kept = store.load_config().await.unwrap();
    assert_eq!(kept.client_cert_auth.revocation, RevocationSource::CrlDp);
    assert_eq!(
        kept.client_cert_auth.revocation_fetch_hosts,
        vec!["crl.example.com".to_string(), "10.0.0.0/8".to_string()]
    );
    assert_eq!(kept.client_cert_auth.revocation_fetch_timeout_ms, 500);

    for (patch, code) in [
        (
            ClientCertAuthPatch {
                revocation_fetch_hosts: Some(vec!["http://crl.example.com/".into()]),
                ..Default::default()
            },
            "invalid_fetch_host",
        ),
        (
            ClientCertAuthPatch {
                revocation_fetch_hosts: Some(vec!["10.0.0.0/33".into()]),
                ..Default::default()
            },
            "invalid_fetch_host",
        ),
        (
            ClientCertAuthPatch {
                revocation_fetch_timeout_ms: Some(0),
                ..Default::default()
            },
            "invalid_fetch_timeout",
        ),
        (
            ClientCertAuthPatch {
                revocation_fetch_timeout_ms: Some(60_001),
                ..Default::default()
            },
            "invalid_fetch_timeout",
        ),
    ] {
        let e = store.update_client_cert_auth(&patch).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (422, code));
    }
    assert_eq!(
        store.load_config().await.unwrap(),
        kept,
        "refused writes change nothing"
    );

    // The JSON names of the admin API.
    let body: ClientCertAuthPatch =
        serde_json::from_str(r#"{"revocation": "ocsp", "revocation_fetch_hosts": [], "revocation_fetch_timeout_ms": 3000}"#)
            .unwrap();
    assert_eq!(body.revocation, Some(RevocationSource::Ocsp));
    assert!(serde_json::from_str::<ClientCertAuthPatch>(r#"{"revocation": "ldap"}"#).is_err());
}
