//! Declarative configuration (SPEC §15) on both backends: export and apply reproduce a
//! store, a second apply changes nothing (not the generation), a document changes by
//! name with one audit record per change, and refused documents change nothing and name
//! the document path of the bad value.

#[path = "support/backend.rs"]
mod backend;
#[path = "support/pg.rs"]
mod pg;

use certgate_store::config::{ApplyAnswer, ConfigDocument, DocApi, DocTrusted, DocVersion};
use certgate_store::model::{ApiOverride, CertAuthMode};
use certgate_store::views::{ApiBody, ApiOverrideBody, ClientCertAuthPatch};
use certgate_store::{ErrorKind, Store, StoreError};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use time::{Duration, OffsetDateTime};

fn ca_pem(cn: &str, from_days: i64, to_days: i64) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = OffsetDateTime::now_utc() + Duration::days(from_days);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(to_days);
    params.self_signed(&key).unwrap().pem()
}

async fn open(dir: &std::path::Path) -> Store {
    let store = Store::open(&backend::store_url(dir, "certgate.db"))
        .await
        .unwrap();
    store.set_ssl_enabled(true).await.unwrap();
    store.acting_as("token")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Components `a` (two versions, trusted at 1) and `b` (trusted), mtls + required with
/// a DN list, API `api0` inheriting and `api1` with an override.
async fn populate(store: &Store) {
    let a = store
        .create_component("a", &ca_pem("A", -1, 200), now())
        .await
        .unwrap();
    store
        .add_version(a.id, &ca_pem("A2", -1, 300), now())
        .await
        .unwrap();
    let b = store
        .create_component("b", &ca_pem("B", -1, 200), now())
        .await
        .unwrap();
    store.add_trusted(b.id, None, now()).await.unwrap();
    store.add_trusted(a.id, Some(1), now()).await.unwrap();
    store
        .update_client_cert_auth(&ClientCertAuthPatch {
            mode: Some(CertAuthMode::Mtls),
            required: Some(true),
            trusted_dns: Some(vec!["CN=z".into(), "CN=*,O=Acme".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..2 {
        let api = store
            .create_api(&ApiBody {
                name: format!("api{i}"),
                base_path: format!("/p{i}"),
                upstream: "http://127.0.0.1:1".into(),
            })
            .await
            .unwrap();
        if i == 1 {
            store
                .set_api_override(
                    api.id,
                    &ApiOverride {
                        required: Some(false),
                        trusted_dns: Some(vec![]),
                    },
                )
                .await
                .unwrap();
        }
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn audit_count(store: &Store) -> usize {
    store.audit_log(1000, None).await.unwrap().len()
}

async fn export_then_apply_reproduces_a_store_and_a_second_apply_changes_nothing() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path()).await;
    populate(&a).await;
    let doc = a.export_config().await.unwrap();
    assert_eq!(doc.certificates.len(), 2);
    assert_eq!(doc.certificates[0].versions.len(), 2);
    assert_eq!(
        doc.trusted_certificates,
        vec![
            DocTrusted {
                name: "b".into(),
                version: Some(1)
            },
            DocTrusted {
                name: "a".into(),
                version: Some(1)
            }
        ]
    );

    // The same document on its own store changes nothing, not the generation.
    let g = a.generation().await.unwrap();
    let records = audit_count(&a).await;
    assert_eq!(
        a.apply_config(&doc, now()).await.unwrap(),
        ApplyAnswer::default()
    );
    assert_eq!(a.generation().await.unwrap(), g);
    assert_eq!(audit_count(&a).await, records);

    // On an empty store it creates everything, in one generation.
    let b = open(db.path()).await;
    let g0 = b.generation().await.unwrap();
    let answer = b.apply_config(&doc, now()).await.unwrap();
    assert_eq!(
        answer.created,
        strings(&[
            "certificate:a",
            "certificate_version:a/2",
            "certificate:b",
            "trusted_certificate:b",
            "trusted_certificate:a",
            "api:api0",
            "api:api1",
            "client_cert_auth:api1",
        ])
    );
    assert_eq!(answer.updated, strings(&["client_cert_auth:gateway"]));
    assert!(answer.deleted.is_empty() && answer.deactivated.is_empty());
    assert_eq!(b.generation().await.unwrap(), g0 + 1);
    assert_eq!(b.export_config().await.unwrap(), doc);
    let log = b.audit_log(1000, None).await.unwrap();
    let applied: Vec<_> = log.iter().filter(|r| r.generation == g0 + 1).collect();
    assert_eq!(applied.len(), 9, "one record per change: {log:#?}");
    assert!(applied
        .iter()
        .all(|r| r.action == "config.apply" && r.actor == "token"));

    // A second apply changes nothing.
    assert_eq!(
        b.apply_config(&doc, now()).await.unwrap(),
        ApplyAnswer::default()
    );
    assert_eq!(b.generation().await.unwrap(), g0 + 1);
    assert_eq!(audit_count(&b).await, log.len());
    a.close().await;
    b.close().await;
}

async fn a_document_changes_the_store_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    populate(&store).await;
    let mut doc = store.export_config().await.unwrap();
    // b leaves the document (so the trust table), a gets version 3 and is pinned at 2,
    // c is new and inactive, api0 goes, api1 and a new api2 swap base paths, api1 loses
    // its override, the gateway becomes not required.
    doc.certificates.retain(|c| c.name != "b");
    doc.certificates[0].versions.push(DocVersion {
        pem: ca_pem("A3", -1, 400),
    });
    doc.certificates
        .push(certgate_store::config::DocCertificate {
            name: "c".into(),
            active: false,
            versions: vec![DocVersion {
                pem: ca_pem("C", -1, 100),
            }],
        });
    doc.trusted_certificates = vec![DocTrusted {
        name: "a".into(),
        version: Some(2),
    }];
    doc.client_cert_auth.required = Some(false);
    doc.apis = vec![
        DocApi {
            name: "api1".into(),
            base_path: "/p2".into(),
            upstream: "http://127.0.0.1:2".into(),
            client_cert_auth: None,
        },
        DocApi {
            name: "api2".into(),
            base_path: "/p1".into(),
            upstream: "http://127.0.0.1:3".into(),
            client_cert_auth: Some(ApiOverrideBody {
                required: Some(true),
                trusted_dns: None,
            }),
        },
    ];
    let g = store.generation().await.unwrap();
    let answer = store.apply_config(&doc, now()).await.unwrap();
    assert_eq!(
        answer,
        ApplyAnswer {
            created: strings(&[
                "certificate_version:a/3",
                "certificate:c",
                "api:api2",
                "client_cert_auth:api2",
            ]),
            updated: strings(&[
                "client_cert_auth:gateway",
                "trusted_certificate:a",
                "api:api1",
            ]),
            deleted: strings(&["trusted_certificate:b", "api:api0", "client_cert_auth:api1",]),
            deactivated: strings(&["certificate:b", "certificate:c"]),
        }
    );
    assert_eq!(store.generation().await.unwrap(), g + 1);
    let config = store.load_config().await.unwrap();
    assert!(!config.client_cert_auth.required);
    let pins: Vec<_> = config
        .trusted_certificates
        .iter()
        .map(|t| (t.name.as_str(), t.version, t.latest_version))
        .collect();
    assert_eq!(pins, vec![("a", 2, 3)]);
    let apis: Vec<_> = config
        .apis
        .iter()
        .map(|a| (a.name.as_str(), a.base_path.as_str(), a.override_.clone()))
        .collect();
    assert_eq!(
        apis,
        vec![
            ("api1", "/p2", None),
            (
                "api2",
                "/p1",
                Some(ApiOverride {
                    required: Some(true),
                    trusted_dns: None
                })
            ),
        ]
    );
    // Deactivated components keep their versions (history) and are exported inactive.
    let after = store.export_config().await.unwrap();
    let b = after.certificates.iter().find(|c| c.name == "b").unwrap();
    assert!(!b.active);
    assert_eq!(b.versions.len(), 1);
    // The record of the update shows the API as it was, not a parked base path.
    let log = store.audit_log(1000, None).await.unwrap();
    let update = log.iter().find(|r| r.target == "api:api1").unwrap();
    assert_eq!(update.before["base_path"], "/p1");
    assert_eq!(update.after["base_path"], "/p2");
    // Applying what is now exported changes nothing.
    assert_eq!(
        store.apply_config(&after, now()).await.unwrap(),
        ApplyAnswer::default()
    );
    store.close().await;
}

/// Applies `doc` and asserts the refusal: kind, code, the message's path prefix, and
/// that the store is exactly as before (document and generation).
async fn refused(store: &Store, doc: &ConfigDocument, kind: ErrorKind, code: &str, path: &str) {
    let before = store.export_config().await.unwrap();
    let g = store.generation().await.unwrap();
    let records = audit_count(store).await;
    let err = store.apply_config(doc, now()).await.unwrap_err();
    match &err {
        StoreError::Refused { .. } => {}
        other => panic!("{path}: not a refusal: {other:?}"),
    }
    assert_eq!((err.kind(), err.code()), (kind, code), "{err}");
    assert!(
        err.to_string().starts_with(&format!("{path}: ")),
        "the message names {path}: {err}"
    );
    assert_eq!(store.export_config().await.unwrap(), before, "{path}");
    assert_eq!(store.generation().await.unwrap(), g, "{path}");
    assert_eq!(audit_count(store).await, records, "{path}");
}

async fn refused_documents_change_nothing_and_name_the_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    populate(&store).await;
    let good = store.export_config().await.unwrap();
    let mut doc;
    use ErrorKind::{Conflict, Invalid};

    // Each document also creates an API first in document order, so a late refusal
    // shows that earlier steps were rolled back.
    let with_new_api = |mut d: ConfigDocument| {
        d.apis.insert(
            0,
            DocApi {
                name: "fresh".into(),
                base_path: "/fresh".into(),
                upstream: "http://127.0.0.1:9".into(),
                client_cert_auth: None,
            },
        );
        d
    };

    doc = with_new_api(good.clone());
    doc.apis[2].base_path = "no-slash".into();
    refused(
        &store,
        &doc,
        Invalid,
        "invalid_base_path",
        "apis[2].base_path",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.apis[1].upstream = "ftp://x".into();
    refused(
        &store,
        &doc,
        Invalid,
        "invalid_upstream",
        "apis[1].upstream",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.apis[2].base_path = "/p0".into();
    refused(
        &store,
        &doc,
        Invalid,
        "duplicate_base_path",
        "apis[2].base_path",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.apis[1].client_cert_auth = Some(ApiOverrideBody {
        required: None,
        trusted_dns: Some(vec!["CN=a,,".into()]),
    });
    refused(
        &store,
        &doc,
        Invalid,
        "invalid_dn_pattern",
        "apis[1].client_cert_auth.trusted_dns",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.certificates[0].versions.pop();
    refused(
        &store,
        &doc,
        Invalid,
        "version_missing",
        "certificates[0].versions",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.certificates[0].versions[1].pem = ca_pem("other", -1, 100);
    refused(
        &store,
        &doc,
        Invalid,
        "version_mismatch",
        "certificates[0].versions[1].pem",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.certificates[1].versions[0].pem = "not a pem".into();
    refused(
        &store,
        &doc,
        Invalid,
        "invalid_certificate",
        "certificates[1].versions[0].pem",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.trusted_certificates.push(DocTrusted {
        name: "nobody".into(),
        version: None,
    });
    refused(
        &store,
        &doc,
        Invalid,
        "unknown_certificate",
        "trusted_certificates[2].name",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.client_cert_auth.trusted_proxies = Some(vec!["10.0.0.0/99".into()]);
    refused(
        &store,
        &doc,
        Invalid,
        "invalid_cidr",
        "client_cert_auth.trusted_proxies",
    )
    .await;

    // Refused by the store's state, after earlier steps ran in the transaction: a
    // trusted component marked inactive, an expired version to pin.
    doc = with_new_api(good.clone());
    doc.certificates[1].active = false;
    refused(
        &store,
        &doc,
        Conflict,
        "certificate_in_use",
        "certificates[1].active",
    )
    .await;

    doc = with_new_api(good.clone());
    doc.certificates
        .push(certgate_store::config::DocCertificate {
            name: "old".into(),
            active: true,
            versions: vec![DocVersion {
                pem: ca_pem("Old", -30, -1),
            }],
        });
    doc.trusted_certificates.push(DocTrusted {
        name: "old".into(),
        version: None,
    });
    refused(
        &store,
        &doc,
        Invalid,
        "certificate_expired",
        "trusted_certificates[2]",
    )
    .await;

    // And the good document still applies (as a no-op).
    assert!(store.apply_config(&good, now()).await.unwrap().is_empty());
    store.close().await;
}

async fn a_rehearsed_apply_answers_the_lists_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    populate(&store).await;
    let mut doc = store.export_config().await.unwrap();
    doc.apis.clear();
    let g = store.generation().await.unwrap();
    let (answer, next) = store
        .rehearse(|s| {
            let doc = doc.clone();
            async move { s.apply_config(&doc, now()).await }
        })
        .await
        .unwrap();
    assert_eq!(answer.deleted, strings(&["api:api0", "api:api1"]));
    assert!(next.apis.is_empty());
    assert_eq!(store.generation().await.unwrap(), g);
    assert_eq!(store.load_config().await.unwrap().apis.len(), 2);
    store.close().await;
}

both_backends!(
    export_then_apply_reproduces_a_store_and_a_second_apply_changes_nothing,
    a_document_changes_the_store_by_name,
    refused_documents_change_nothing_and_name_the_bad_value,
    a_rehearsed_apply_answers_the_lists_and_changes_nothing,
);
