//! Cluster mode (SPEC §12) with real processes: `certgate serve` nodes on one real
//! PostgreSQL, each with its own data dir and ports, probed with curl and real client
//! certificates on their proxy listeners.

mod harness;
#[path = "../../certgate-store/tests/support/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::*;
use serde_json::{json, Value};

const BOUND: Duration = Duration::from_secs(1);

fn pg_node(root: &std::path::Path, name: &str, url: &str) -> NodeProc {
    let dir = root.join(name);
    let cfg = write_config(&dir, url, &format!("[node]\nname = \"{name}\"\n"));
    NodeProc::start(&dir, &cfg)
}

/// Makes a change on `writer`, then checks that every node's proxy answers `expect` for
/// the probe within the 1 s bound, measured from the admin API's answer.
fn change_everywhere(
    nodes: &[&NodeProc],
    writer: &NodeProc,
    what: &str,
    (method, path, body, status): (&str, &str, Value, u16),
    probe: (&str, Option<&str>, &Pki),
    expect: u16,
) -> Vec<Duration> {
    let (s, v) = writer.call(method, path, Some(&body));
    assert_eq!(s, status, "{what}: {v}");
    nodes
        .iter()
        .map(|n| {
            within(Duration::from_secs(5), || {
                n.probe(probe.0, probe.1.map(|c| probe.2.cert(c))) == expect
            })
            .unwrap_or_else(|| panic!("{what}: {} never answered {expect}", n.proxy))
        })
        .inspect(|took| assert!(*took < BOUND, "{what}: took {took:?}"))
        .collect()
}

#[test]
fn three_nodes_apply_every_kind_of_change_within_a_second() {
    let root = tempfile::tempdir().unwrap();
    let url = pg::database();
    let pki = Pki::new(&root.path().join("pki"));
    let echo = Echo::start();
    let a = pg_node(root.path(), "a", &url);
    let b = pg_node(root.path(), "b", &url);
    let c = pg_node(root.path(), "c", &url);
    let nodes = [&a, &b, &c];
    let mut took = Vec::new();

    // An API created on a: every proxy routes it (mode none).
    took.extend(change_everywhere(
        &nodes,
        &a,
        "api",
        (
            "POST",
            "/api/v1/apis",
            json!({"name": "svc", "base_path": "/svc", "upstream": echo.url}),
            201,
        ),
        ("/svc/x", None, &pki),
        200,
    ));
    // Mode mtls + required (empty trust table): no certificate is 401 everywhere.
    took.extend(change_everywhere(
        &nodes,
        &b,
        "mode",
        (
            "PUT",
            "/api/v1/gateway/client-cert-auth",
            json!({"mode": "mtls", "required": true, "validation_failure": "http"}),
            200,
        ),
        ("/svc/x", None, &pki),
        401,
    ));
    let (s, v) = c.call(
        "POST",
        "/api/v1/certificates",
        Some(&json!({"name": "ca", "pem": pki.ca_pem})),
    );
    assert_eq!(s, 201, "{v}");
    let ca = v["id"].as_i64().unwrap();
    assert_eq!(a.probe("/svc/x", Some(pki.cert("client1"))), 403);
    // Trust table: the CA trusted on c, client1 passes on every node.
    took.extend(change_everywhere(
        &nodes,
        &c,
        "trust table",
        (
            "POST",
            "/api/v1/gateway/trusted-certificates",
            json!({"certificate_id": ca}),
            201,
        ),
        ("/svc/x", Some("client1"), &pki),
        200,
    ));
    // DN list: only client2.
    took.extend(change_everywhere(
        &nodes,
        &a,
        "dn list",
        (
            "PUT",
            "/api/v1/gateway/client-cert-auth",
            json!({"trusted_dns": ["CN=client2,O=Acme"]}),
            200,
        ),
        ("/svc/x", Some("client1"), &pki),
        403,
    ));
    // API override: no DN restriction on /svc.
    let (_, apis) = b.call("GET", "/api/v1/apis", None);
    let api = apis[0]["id"].as_i64().unwrap();
    took.extend(change_everywhere(
        &nodes,
        &b,
        "api override",
        (
            "PUT",
            &format!("/api/v1/apis/{api}/client-cert-auth"),
            json!({"trusted_dns": []}),
            200,
        ),
        ("/svc/x", Some("client1"), &pki),
        200,
    ));
    took.sort();
    println!(
        "propagation over {} node-changes: p50 {:?}, max {:?}",
        took.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );

    // ?wait=cluster: answered once every up node applied it, so every proxy already
    // judges by it when the answer arrives.
    let (s, v) = a.call(
        "DELETE",
        &format!("/api/v1/apis/{api}/client-cert-auth?wait=cluster"),
        None,
    );
    assert_eq!(s, 204, "{v}");
    for n in nodes {
        assert_eq!(
            n.probe("/svc/x", Some(pki.cert("client1"))),
            403,
            "{}",
            n.proxy
        );
    }

    // The nodes as b sees them: b first, all up, on the store's generation.
    let metrics = certgate_testkit::command("curl")
        .args(["-s", &format!("{}/metrics", b.admin)])
        .output()
        .unwrap();
    let generation: u64 = String::from_utf8_lossy(&metrics.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("certgate_config_generation "))
        .and_then(|g| g.trim().parse().ok())
        .expect("certgate_config_generation in /metrics");
    let (s, list) = b.call("GET", "/api/v1/cluster/nodes", None);
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0]["name"], "b");
    for n in &list {
        assert_eq!(n["state"], "up", "{n}");
        assert_eq!(n["config_generation"].as_u64(), Some(generation), "{n}");
        assert_eq!(n["truststore"]["status"], "ok", "{n}");
        assert_eq!(
            n["truststore"]["sha256"].as_str().map(str::len),
            Some(64),
            "{n}"
        );
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"));
        for k in [
            "id",
            "admin_address",
            "proxy_address",
            "started_at",
            "last_seen",
        ] {
            assert!(n[k].is_string(), "{k}: {n}");
        }
    }
    let b_id = std::fs::read_to_string(root.path().join("b/data/node-id")).unwrap();
    assert_eq!(list[0]["id"], b_id.trim());
    assert_eq!(
        list[0]["proxy_address"],
        b.proxy.trim_start_matches("https://")
    );

    // `certgate cluster status` prints the table.
    let out = certgate_testkit::command(BIN)
        .args(["cluster", "status", "--admin", &a.admin, "--token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" up ")).count(),
        3,
        "{text}"
    );
    assert!(lines[1].contains(" a "), "{text}");

    // SIGTERM marks c down.
    assert!(c.terminate().success());
    let (_, list) = a.call("GET", "/api/v1/cluster/nodes", None);
    let c_row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "c")
        .unwrap()
        .clone();
    assert_eq!(c_row["state"], "down", "{c_row}");
    // A down node is not waited for.
    let (s, v) = a.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth?wait=cluster",
        Some(&json!({"trusted_dns": []})),
    );
    assert_eq!(s, 200, "{v}");
    assert!(v.get("lagging").is_none(), "{v}");
}

#[test]
fn wait_cluster_names_a_lagging_up_node() {
    let root = tempfile::tempdir().unwrap();
    let url = pg::database();
    let a = pg_node(root.path(), "a", &url);
    let b = pg_node(root.path(), "b", &url);
    // b freezes (SIGSTOP): still `up` by its last renewal, but it applies nothing.
    let pid = b.pid().to_string();
    assert!(certgate_testkit::command("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let b_id = std::fs::read_to_string(root.path().join("b/data/node-id")).unwrap();
    let started = std::time::Instant::now();
    let (s, v) = a.call(
        "POST",
        "/api/v1/apis?wait=cluster",
        Some(&json!({"name": "x", "base_path": "/x", "upstream": "http://127.0.0.1:9"})),
    );
    let waited = started.elapsed();
    certgate_testkit::command("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lagging"], json!([b_id.trim()]), "{v}");
    assert_eq!(v["name"], "x", "{v}");
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    drop(b);
}

#[test]
fn a_store_outage_fails_no_request_refuses_writes_and_catches_up() {
    let root = tempfile::tempdir().unwrap();
    let mut server = pg::PgServer::start();
    let url = server.fresh_database();
    let pki = Pki::new(&root.path().join("pki"));
    let echo = Echo::start();
    let a = pg_node(root.path(), "a", &url);
    let b = pg_node(root.path(), "b", &url);
    setup_mtls(&a, &pki, &echo.url);
    for n in [&a, &b] {
        assert!(within(Duration::from_secs(5), || n
            .probe("/svc/x", Some(pki.cert("client1")))
            == 200)
        .is_some());
    }

    // Requests flow to a through the whole outage (b is restarted meanwhile, so its
    // proxy is checked on its own).
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let loader = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let proxies = [a.proxy.clone()];
        let cert = pki.cert("client1");
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let status = probe(&proxies[i % proxies.len()], "/svc/x", Some(cert.clone()));
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        })
    };

    server.stop();
    // Noticed within the backoff; readiness stays 200 and says where the config is from.
    let readyz = |n: &NodeProc| n.call("GET", "/readyz", None);
    assert!(within(Duration::from_secs(5), || readyz(&a).1["store"]
        == "unreachable")
    .is_some());
    let (s, v) = readyz(&a);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["store"].as_str(), v["config_source"].as_str()),
        (Some("unreachable"), Some("store")),
        "{v}"
    );
    // Writes are refused and change nothing.
    let (s, v) = a.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=nobody"]})),
    );
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");

    // b restarts during the outage: it serves its last-config.json.
    assert!(b.terminate().success());
    let b = NodeProc::start(&root.path().join("b"), &root.path().join("b/certgate.toml"));
    let (s, v) = readyz(&b);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["store"].as_str(), v["config_source"].as_str()),
        (Some("unreachable"), Some("last-config")),
        "{v}"
    );
    assert_eq!(b.probe("/svc/x", Some(pki.cert("client1"))), 200);
    assert_eq!(b.probe("/svc/x", None), 401);
    let mode = std::fs::metadata(root.path().join("b/data/last-config.json")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    let during = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    server.restart();
    let back = std::time::Instant::now();
    for n in [&a, &b] {
        let took = within(Duration::from_secs(5), || {
            let v = readyz(n).1;
            v["store"] == "ok" && v["config_source"] == "store"
        })
        .expect("store ok again");
        assert!(back.elapsed() < Duration::from_secs(2), "{took:?}");
    }
    // A write after the return reaches both nodes within the bound.
    let (s, v) = a.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=client2,O=Acme"]})),
    );
    assert_eq!(s, 200, "{v}");
    for n in [&a, &b] {
        let took = within(Duration::from_secs(5), || {
            n.probe("/svc/x", Some(pki.cert("client1"))) == 403
        })
        .expect("change applied");
        assert!(took < BOUND, "{took:?}");
    }
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    // Only requests sent before the last change (all 200 then) are counted; the
    // client1 probes after it are 403 by design, so count up to the restart.
    println!(
        "outage: {} requests during the outage, {} failed",
        during.0, during.1
    );
    assert!(
        during.0 > 20,
        "too few requests during the outage: {}",
        during.0
    );
    assert_eq!(during.1, 0, "failed data-plane requests during the outage");
}

#[test]
fn migrate_sqlite_to_postgres_and_back_answers_the_same() {
    let root = tempfile::tempdir().unwrap();
    let pki = Pki::new(&root.path().join("pki"));
    let echo = Echo::start();
    let sqlite_a = format!("sqlite://{}", root.path().join("a.db").display());
    let sqlite_b = format!("sqlite://{}", root.path().join("b.db").display());
    let pg_url = pg::database();

    let probes = |n: &NodeProc| -> Vec<u16> {
        [
            ("/svc/x", None),
            ("/svc/x", Some("client1")),
            ("/svc/x", Some("client2")),
            ("/other", Some("client1")),
            ("/open/y", None),
        ]
        .iter()
        .map(|(p, c)| n.probe(p, c.map(|c| pki.cert(c))))
        .collect()
    };
    let n = pg_node(root.path(), "n1", &sqlite_a);
    setup_mtls(&n, &pki, &echo.url);
    let (s, _) = n.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&json!({"trusted_dns": ["CN=client1,O=Acme"]})),
    );
    assert_eq!(s, 200);
    let (s, v) = n.call(
        "POST",
        "/api/v1/apis",
        Some(&json!({"name": "open", "base_path": "/open", "upstream": echo.url})),
    );
    assert_eq!(s, 201);
    let open = v["id"].as_i64().unwrap();
    let (s, _) = n.call(
        "PUT",
        &format!("/api/v1/apis/{open}/client-cert-auth"),
        Some(&json!({"required": false})),
    );
    assert_eq!(s, 200);
    let before = probes(&n);
    assert_eq!(before, [401, 200, 403, 404, 200]);
    let (_, gw_before) = n.call("GET", "/api/v1/gateway", None);
    assert!(n.terminate().success());

    let migrate = |from: &str, to: &str| {
        certgate_testkit::command(BIN)
            .args(["store", "migrate", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    let out = migrate(&sqlite_a, &pg_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Migrated 1 certificates"));
    // A target that holds data is refused.
    let out = migrate(&sqlite_a, &pg_url);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("target_not_empty"));

    let n = pg_node(root.path(), "n2", &pg_url);
    assert_eq!(probes(&n), before);
    let (_, gw) = n.call("GET", "/api/v1/gateway", None);
    assert_eq!(gw["client_cert_auth"], gw_before["client_cert_auth"]);
    assert_eq!(
        gw["trusted_certificates"],
        gw_before["trusted_certificates"]
    );
    assert!(n.terminate().success());

    let out = migrate(&pg_url, &sqlite_b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = pg_node(root.path(), "n3", &sqlite_b);
    assert_eq!(probes(&n), before);
}

#[test]
fn two_nodes_starting_at_once_on_an_empty_database_both_serve() {
    let root = tempfile::tempdir().unwrap();
    let url = pg::database();
    let starts: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let dir = root.path().join(name);
            let cfg = write_config(&dir, &url, &format!("[node]\nname = \"{name}\"\n"));
            std::thread::spawn(move || NodeProc::start(&dir, &cfg))
        })
        .collect();
    let nodes: Vec<NodeProc> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    for n in &nodes {
        let (s, v) = n.call("GET", "/readyz", None);
        assert_eq!((s, v["store"].as_str()), (200, Some("ok")), "{v}");
    }
    let (s, list) = nodes[0].call("GET", "/api/v1/cluster/nodes", None);
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    // One schema, one generation: a write on one is seen by the other.
    let (s, _) = nodes[1].call(
        "POST",
        "/api/v1/apis?wait=cluster",
        Some(&json!({"name": "x", "base_path": "/x", "upstream": "http://127.0.0.1:9"})),
    );
    assert_eq!(s, 201);
    let (_, apis) = nodes[0].call("GET", "/api/v1/apis", None);
    assert_eq!(apis[0]["name"], "x");
}

#[test]
fn a_sqlite_node_lists_itself_as_the_only_node() {
    let root = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", root.path().join("one.db").display());
    let n = pg_node(root.path(), "solo", &url);
    let (s, list) = n.call("GET", "/api/v1/cluster/nodes", None);
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["state"].as_str()),
        (Some("solo"), Some("up"))
    );
    let (s, v) = n.call("GET", "/readyz", None);
    assert_eq!(
        (s, v["store"].as_str(), v["config_source"].as_str()),
        (200, Some("ok"), Some("store")),
        "{v}"
    );
}

#[test]
fn the_client_inventory_is_the_union_over_the_nodes() {
    let root = tempfile::tempdir().unwrap();
    let url = pg::database();
    let pki = Pki::new(&root.path().join("pki"));
    let echo = Echo::start();
    let a = pg_node(root.path(), "a", &url);
    let b = pg_node(root.path(), "b", &url);
    setup_mtls(&a, &pki, &echo.url);
    for n in [&a, &b] {
        assert!(
            within(Duration::from_secs(5), || n
                .probe("/svc/x", Some(pki.cert("client1")))
                == 200)
            .is_some(),
            "{} never served client1",
            n.proxy
        );
    }
    // client1 asked a once (above) and b once (above) plus once more; client2 only b.
    assert_eq!(b.probe("/svc/y", Some(pki.cert("client1"))), 200);
    assert_eq!(b.probe("/svc/y", Some(pki.cert("client2"))), 200);

    // SPEC §13: each node writes its part at least every 10 s; a answers the union.
    let union = |n: &NodeProc| -> Option<Vec<Value>> {
        let (s, v) = n.call("GET", "/api/v1/clients", None);
        assert_eq!(s, 200, "{v}");
        let list = v.as_array().unwrap().clone();
        let one = list.iter().find(|c| c["subject"] == "O=Acme,CN=client1")?;
        let two = list.iter().find(|c| c["subject"] == "O=Acme,CN=client2")?;
        (one["requests"].as_u64()? >= 3 && two["requests"] == 1).then_some(list)
    };
    let mut seen = None;
    let took = within(Duration::from_secs(12), || {
        seen = union(&a);
        seen.is_some()
    })
    .expect("a never answered b's clients");
    let list = seen.unwrap();
    assert_eq!(list.len(), 2, "{list:#?}");
    let one = list
        .iter()
        .find(|c| c["subject"] == "O=Acme,CN=client1")
        .unwrap();
    // Retries of the polling above may add requests on a, never on b: at least 1 + 2.
    assert!(one["requests"].as_u64().unwrap() >= 3, "{one}");
    assert_eq!(one["apis"], json!(["svc"]));
    assert!(took < Duration::from_secs(11), "{took:?}");
    // A dry run on a judges b's client too.
    let (s, v) = a.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth?dry_run=true",
        Some(&json!({"trusted_dns": ["CN=client1,O=Acme"]})),
    );
    assert_eq!(s, 200, "{v}");
    let lost: Vec<&str> = v["would_lose_access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(lost, ["O=Acme,CN=client2"], "{v}");
}
