//! The SQLite store: opening, migrations, the generation and its change feed,
//! transactional refusals and reopening.

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
    format!("sqlite://{}", dir.join("nested/dir/certgate.db").display())
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
async fn postgres_is_refused_until_implemented() {
    let e = Store::open("postgres://user@127.0.0.1/db")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
    assert!(Store::open("mysql://x").await.is_err());
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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
