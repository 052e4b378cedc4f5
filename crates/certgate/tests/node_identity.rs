//! The node id as the new-node marker (SPEC §5, §12; issue 9 defect 3) and SQLite's
//! single-node lock, with real `certgate serve` processes, curl and client certificates.

mod harness;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use harness::*;

fn sqlite_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    // No `store` key: the default SQLite file in the data dir.
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("certgate.toml");
    std::fs::write(
        &path,
        format!("data_dir = \"data\"\n{extra}\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    path
}

#[test]
fn a_deleted_truststore_of_a_started_node_is_missing_and_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = sqlite_config(dir.path(), "[truststore]\nauto_recover = false\n");
    let node = NodeProc::start(dir.path(), &cfg);
    setup_mtls(&node, &pki, &echo.url);
    assert_eq!(node.probe("/svc/x", Some(pki.cert("client1"))), 200);
    assert!(node.terminate().success());

    let id_file = dir.path().join("data/node-id");
    let id = std::fs::read_to_string(&id_file).unwrap();
    assert_eq!(id.trim().len(), 36, "{id}");
    assert_eq!(
        std::fs::metadata(&id_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    std::fs::remove_dir_all(dir.path().join("data/truststore")).unwrap();
    let node = NodeProc::start(dir.path(), &cfg);
    let (s, v) = node.call("GET", "/readyz", None);
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["truststore"], "missing", "{v}");
    let (s, v) = node.call("GET", "/api/v1/truststore", None);
    assert_eq!((s, v["status"].as_str()), (200, Some("missing")), "{v}");
    // Fail closed: a client the trust table trusts is refused.
    assert_eq!(node.probe("/svc/x", Some(pki.cert("client1"))), 403);
    assert!(!dir.path().join("data/truststore").exists());
    // The node id is kept.
    assert_eq!(std::fs::read_to_string(&id_file).unwrap(), id);
    let (s, v) = node.call("POST", "/api/v1/truststore/recover", None);
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")), "{v}");
    assert_eq!(node.probe("/svc/x", Some(pki.cert("client1"))), 200);
}

#[test]
fn an_older_data_dir_with_a_trust_store_but_no_node_id_gets_one_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let echo = Echo::start();
    let cfg = sqlite_config(dir.path(), "[truststore]\nauto_recover = false\n");
    let node = NodeProc::start(dir.path(), &cfg);
    setup_mtls(&node, &pki, &echo.url);
    assert!(node.terminate().success());
    // What a data dir of a version before node-id looks like.
    std::fs::remove_file(dir.path().join("data/node-id")).unwrap();
    let manifest = dir.path().join("data/truststore/manifest.json");
    let bundle = dir.path().join("data/truststore/truststore.pem");
    let before = (
        std::fs::metadata(&manifest).unwrap().ino(),
        std::fs::metadata(&bundle).unwrap().ino(),
        std::fs::read(&manifest).unwrap(),
    );

    let node = NodeProc::start(dir.path(), &cfg);
    let (s, v) = node.call("GET", "/readyz", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(node.probe("/svc/x", Some(pki.cert("client1"))), 200);
    assert!(dir.path().join("data/node-id").is_file());
    // Not rebuilt: the same files (an atomic rewrite would make new inodes).
    let after = (
        std::fs::metadata(&manifest).unwrap().ino(),
        std::fs::metadata(&bundle).unwrap().ino(),
        std::fs::read(&manifest).unwrap(),
    );
    assert_eq!(after, before);
}

#[test]
fn a_second_node_on_the_same_sqlite_file_is_refused_naming_the_first_pid() {
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().join("a");
    let cfg_a = sqlite_config(&a_dir, "");
    let a = NodeProc::start(&a_dir, &cfg_a);
    let db = a_dir.join("data/certgate.db");
    let b_dir = dir.path().join("b");
    let cfg_b = write_config(&b_dir, &format!("sqlite://{}", db.display()), "");
    let err = match NodeProc::try_start(&b_dir, &cfg_b) {
        Ok(_) => panic!("a second node started on the same SQLite file"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!(
            "in use by another certgate node (pid {})",
            a.pid()
        )),
        "{err}"
    );
    // The first node is unaffected; once it stops, the file is free.
    assert_eq!(a.call("GET", "/readyz", None).0, 200);
    assert!(a.terminate().success());
    let b = NodeProc::start(&b_dir, &cfg_b);
    assert_eq!(b.call("GET", "/readyz", None).0, 200);
}
