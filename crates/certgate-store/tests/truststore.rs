//! The on-disk trust store (SPEC §5): build, load, stale rebuild, every kind of damage
//! (delete, truncate, flipped byte, bad manifest, unreadable path) with and without
//! auto-recovery, manual recovery and force_recovery.

use std::fs;
use std::path::Path;

use certgate_pki::CertificateInfo;
use certgate_store::model::{GatewayConfig, TrustedCertificate};
use certgate_store::truststore::Manifest;
use certgate_store::{TrustStore, TrustStoreStatus};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

fn ca_pem(cn: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
    params.self_signed(&key).unwrap().pem()
}

fn trusted(id: i64, pem: &str) -> TrustedCertificate {
    let info = CertificateInfo::parse_pem_chain(pem).unwrap().remove(0);
    TrustedCertificate {
        certificate_id: id,
        name: format!("ca{id}"),
        version: 1,
        latest_version: 1,
        pem: pem.to_string(),
        subject: info.subject.to_string(),
        fingerprint_sha256: info.fingerprint_sha256.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
    }
}

fn config(certs: &[(i64, &str)]) -> GatewayConfig {
    GatewayConfig {
        trusted_certificates: certs.iter().map(|(id, pem)| trusted(*id, pem)).collect(),
        ..GatewayConfig::default()
    }
}

fn manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&fs::read(dir.join("truststore/manifest.json")).unwrap()).unwrap()
}

fn bundle(dir: &Path) -> std::path::PathBuf {
    dir.join("truststore/truststore.pem")
}

struct Fixture {
    dir: tempfile::TempDir,
    a: String,
    b: String,
}

fn fixture() -> Fixture {
    Fixture {
        dir: tempfile::tempdir().unwrap(),
        a: ca_pem("CA A"),
        b: ca_pem("CA B"),
    }
}

impl Fixture {
    fn cfg(&self) -> GatewayConfig {
        config(&[(1, &self.a), (2, &self.b)])
    }

    /// A data dir whose trust store was built once, then a fresh TrustStore on it.
    fn built(&self, auto_recover: bool) -> TrustStore {
        let first = TrustStore::open(self.dir.path(), true);
        assert_eq!(first.start(&self.cfg(), false).status, TrustStoreStatus::Ok);
        TrustStore::open(self.dir.path(), auto_recover)
    }
}

#[test]
fn new_data_dir_builds_bundle_and_manifest() {
    let f = fixture();
    let ts = TrustStore::open(f.dir.path(), false);
    assert_eq!(
        ts.status().status,
        TrustStoreStatus::Missing,
        "before start"
    );
    let info = ts.start(&f.cfg(), false);
    assert_eq!(info.status, TrustStoreStatus::Ok);
    assert_eq!(info.entries, 2);
    let bytes = fs::read(bundle(f.dir.path())).unwrap();
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(info.sha256.as_deref(), Some(sha.as_str()));
    let m = manifest(f.dir.path());
    assert_eq!(m.sha256, sha);
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.entries[0].certificate_id, 1);
    assert_eq!(
        m.entries[1].fingerprint,
        f.cfg().trusted_certificates[1].fingerprint_sha256
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(f.a.trim_end()) && text.contains(f.b.trim_end()));
    assert_eq!(ts.status(), info);
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(f.dir.path().join("truststore"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn empty_trust_table_is_an_ok_trust_store() {
    let f = fixture();
    let ts = TrustStore::open(f.dir.path(), false);
    let info = ts.start(&GatewayConfig::default(), false);
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 0));
    assert_eq!(fs::read(bundle(f.dir.path())).unwrap().len(), 0);
}

#[test]
fn restart_loads_intact_store_without_rebuilding() {
    let f = fixture();
    let ts = f.built(false);
    let before = manifest(f.dir.path());
    let info = ts.start(&f.cfg(), false);
    assert_eq!(info.status, TrustStoreStatus::Ok);
    assert_eq!(info.built_at, Some(before.built_at));
    assert_eq!(manifest(f.dir.path()), before);
}

#[test]
fn intact_but_stale_store_is_rebuilt_at_start() {
    let f = fixture();
    let ts = f.built(false);
    let only_b = config(&[(2, &f.b)]);
    let info = ts.start(&only_b, false);
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 1));
    assert_eq!(manifest(f.dir.path()).entries[0].certificate_id, 2);
    let text = fs::read_to_string(bundle(f.dir.path())).unwrap();
    assert!(!text.contains(f.a.trim_end()));
}

#[test]
fn sync_rebuilds_when_trust_table_changes() {
    let f = fixture();
    let ts = f.built(false);
    ts.start(&f.cfg(), false);
    let c = ca_pem("CA C");
    let info = ts.sync(&config(&[(1, &f.a), (2, &f.b), (3, &c)]));
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 3));
    assert_eq!(manifest(f.dir.path()).entries.len(), 3);
    // Unchanged table: nothing rewritten.
    let m = manifest(f.dir.path());
    ts.sync(&config(&[(1, &f.a), (2, &f.b), (3, &c)]));
    assert_eq!(manifest(f.dir.path()), m);
}

/// Damages the files of a built store in one way, then checks start and sync report
/// `expected` with auto_recover off, and that recover() repairs it.
fn damage_then_recover(damage: impl Fn(&Path), expected: TrustStoreStatus) {
    let f = fixture();
    let ts = f.built(false);
    damage(f.dir.path());
    let info = ts.start(&f.cfg(), false);
    assert_eq!(info.status, expected, "start");
    assert_eq!((info.entries, info.sha256.as_deref()), (0, None));
    assert_eq!(ts.status().status, expected);
    assert_eq!(ts.sync(&f.cfg()).status, expected, "sync stays failed");

    // A running node whose files get damaged after a good start sees it on sync.
    let f2 = fixture();
    let ts2 = f2.built(false);
    assert_eq!(ts2.start(&f2.cfg(), false).status, TrustStoreStatus::Ok);
    damage(f2.dir.path());
    assert_eq!(ts2.sync(&f2.cfg()).status, expected, "sync after damage");

    // Manual recovery (the damage that blocks writing is undone first).
    if bundle(f.dir.path()).is_dir() {
        fs::remove_dir_all(bundle(f.dir.path())).unwrap();
    }
    let info = ts.recover(&f.cfg());
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 2));
    assert_eq!(ts.sync(&f.cfg()).status, TrustStoreStatus::Ok);
    assert_eq!(
        TrustStore::open(f.dir.path(), false)
            .start(&f.cfg(), false)
            .status,
        TrustStoreStatus::Ok
    );
}

#[test]
fn deleted_bundle_is_missing() {
    damage_then_recover(
        |d| fs::remove_file(bundle(d)).unwrap(),
        TrustStoreStatus::Missing,
    );
}

#[test]
fn deleted_manifest_is_missing() {
    damage_then_recover(
        |d| fs::remove_file(d.join("truststore/manifest.json")).unwrap(),
        TrustStoreStatus::Missing,
    );
}

#[test]
fn truncated_bundle_is_corrupted() {
    damage_then_recover(
        |d| {
            let bytes = fs::read(bundle(d)).unwrap();
            fs::write(bundle(d), &bytes[..bytes.len() / 2]).unwrap();
        },
        TrustStoreStatus::Corrupted,
    );
}

#[test]
fn flipped_byte_is_corrupted() {
    damage_then_recover(
        |d| {
            let mut bytes = fs::read(bundle(d)).unwrap();
            let i = bytes.len() / 3;
            bytes[i] ^= 0x01;
            fs::write(bundle(d), bytes).unwrap();
        },
        TrustStoreStatus::Corrupted,
    );
}

#[test]
fn garbage_manifest_is_corrupted() {
    damage_then_recover(
        |d| fs::write(d.join("truststore/manifest.json"), b"{not json").unwrap(),
        TrustStoreStatus::Corrupted,
    );
}

#[test]
fn bundle_that_matches_its_checksum_but_not_the_manifest_entries_is_corrupted() {
    damage_then_recover(
        |d| {
            // A consistent checksum over a bundle that no longer holds the listed certificates.
            let other = ca_pem("Intruder");
            fs::write(bundle(d), &other).unwrap();
            let mut m = manifest(d);
            m.sha256 = hex::encode(Sha256::digest(other.as_bytes()));
            fs::write(
                d.join("truststore/manifest.json"),
                serde_json::to_vec(&m).unwrap(),
            )
            .unwrap();
        },
        TrustStoreStatus::Corrupted,
    );
}

#[test]
fn unreadable_bundle_is_io_error() {
    // Tests run as root, for whom chmod 000 does not stop reading: a directory in the
    // bundle's place gives a real I/O error instead.
    damage_then_recover(
        |d| {
            fs::remove_file(bundle(d)).unwrap();
            fs::create_dir(bundle(d)).unwrap();
        },
        TrustStoreStatus::IoError,
    );
}

#[test]
fn auto_recover_rebuilds_damaged_store_at_start_and_on_sync() {
    let f = fixture();
    let ts = f.built(true);
    fs::write(bundle(f.dir.path()), b"garbage").unwrap();
    let info = ts.start(&f.cfg(), false);
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 2));
    assert_eq!(
        hex::encode(Sha256::digest(fs::read(bundle(f.dir.path())).unwrap())),
        manifest(f.dir.path()).sha256
    );
    fs::remove_file(bundle(f.dir.path())).unwrap();
    assert_eq!(ts.sync(&f.cfg()).status, TrustStoreStatus::Ok);
    assert!(bundle(f.dir.path()).is_file());
}

#[test]
fn auto_recover_that_cannot_write_reports_io_error() {
    let f = fixture();
    let ts = f.built(true);
    fs::remove_file(bundle(f.dir.path())).unwrap();
    fs::create_dir(bundle(f.dir.path())).unwrap();
    assert_eq!(ts.start(&f.cfg(), false).status, TrustStoreStatus::IoError);
}

#[test]
fn force_recovery_rebuilds_whatever_the_state() {
    let f = fixture();
    let ts = f.built(false);
    fs::write(bundle(f.dir.path()), b"garbage").unwrap();
    let info = ts.start(&f.cfg(), true);
    assert_eq!((info.status, info.entries), (TrustStoreStatus::Ok, 2));
    // Also on an intact store.
    let ts = TrustStore::open(f.dir.path(), false);
    assert_eq!(ts.start(&f.cfg(), true).status, TrustStoreStatus::Ok);
}

#[test]
fn deleting_the_directory_of_a_running_node_is_missing() {
    let f = fixture();
    let ts = f.built(false);
    ts.start(&f.cfg(), false);
    fs::remove_dir_all(f.dir.path().join("truststore")).unwrap();
    assert_eq!(ts.sync(&f.cfg()).status, TrustStoreStatus::Missing);
    assert_eq!(ts.recover(&f.cfg()).status, TrustStoreStatus::Ok);
}
