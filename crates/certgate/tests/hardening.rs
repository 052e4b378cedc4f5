//! Hardening of a real `certgate serve` process (issue 9): file modes in the data dir
//! whatever the umask, a trust store damaged on disk while the node runs (fails closed
//! within the watch period, or is rebuilt with `auto_recover`), and memory with many
//! slow or idle connections (RSS of the node process, read from /proc).
//!
//! The 10,000-idle-connection test takes longer than the default run allows; run it with
//! `cargo test -p certgate --test hardening -- --ignored --nocapture`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

/// A `certgate` child process (killed on drop) whose stdout and stderr lines are read
/// on threads.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    /// Runs `certgate serve --config <cfg>` under `umask <umask>` in `cwd`.
    fn serve(cfg: &Path, cwd: &Path, umask: &str) -> Proc {
        let mut cmd = certgate_testkit::command("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" serve --config \"$1\""))
            .arg(BIN)
            .arg(cfg)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "CERTGATE_ADMIN_TOKEN",
            "CERTGATE_TRUSTSTORE_FORCE_RECOVERY",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("CERTGATE_ADMIN_TOKEN", TOKEN);
        let mut child = cmd.spawn().expect("spawn certgate");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output lines until one satisfies `stop` (bounded: 60 s); true if found.
    fn wait_for(&mut self, within: Duration, stop: impl Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|l| stop(l)) {
            return true;
        }
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = stop(&line);
                    self.seen.push(line);
                    if done {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// The proxy and admin URLs from the start banner.
    fn addresses(&mut self) -> (String, String) {
        assert!(
            self.wait_for(Duration::from_secs(60), |l| l.contains("proxy on")),
            "no start banner: {:#?}",
            self.seen
        );
        let line = self.seen.iter().find(|l| l.contains("proxy on")).unwrap();
        let mut urls = line.split_whitespace().filter(|w| w.starts_with("http"));
        let proxy = urls.next().unwrap().trim_end_matches(',').to_owned();
        let admin = urls.next().unwrap().to_owned();
        (proxy, admin)
    }

    /// VmRSS of the node process in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "hardening-token-0123456789abcdef";

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("certgate.toml");
    std::fs::write(
        &path,
        format!("data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\n{extra}\n[admin]\naddress = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    path
}

/// `curl` with the admin token; the status and the body.
fn admin(admin: &str, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, String) {
    let mut cmd = certgate_testkit::command("curl");
    cmd.args([
        "-s",
        "--noproxy",
        "*",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
    }
    let out = cmd.arg(format!("{admin}{path}")).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap_or(0), body.to_owned())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn serve_keeps_the_data_dir_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A data dir and a token file left wide open by an earlier version or a lax hand.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let token = data.join("admin-token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Without admin.token in the config the token file is read (the env var wins, so
    // clear it for this node).
    let cfg = write_config(dir.path(), "");
    let mut p = {
        let mut cmd = certgate_testkit::command("sh");
        cmd.arg("-c")
            .arg("umask 000; exec \"$0\" serve --config \"$1\"")
            .arg(BIN)
            .arg(&cfg)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_remove("CERTGATE_ADMIN_TOKEN")
            .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY");
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    };
    let (_, admin_url) = p.addresses();
    // A write, so that the database has written through its WAL.
    let (status, body) = certgate_testkit::command("curl")
        .args(["-s", "--noproxy", "*", "-w", "\n%{http_code}", "-X", "POST"])
        .args([
            "-H",
            "Authorization: Bearer 0123456789abcdef0123456789abcdef",
        ])
        .args(["-H", "Content-Type: application/json"])
        .args([
            "-d",
            r#"{"name":"a","base_path":"/a","upstream":"http://127.0.0.1:9"}"#,
        ])
        .arg(format!("{admin_url}/api/v1/apis"))
        .output()
        .map(|o| {
            let t = String::from_utf8_lossy(&o.stdout).into_owned();
            let (b, s) = t.rsplit_once('\n').unwrap();
            (s.to_owned(), b.to_owned())
        })
        .unwrap();
    assert_eq!(status, "201", "{body}");

    assert_eq!(mode(&data), 0o700, "data dir");
    for file in [
        "admin-token",
        "certgate.db",
        "certgate.db-wal",
        "certgate.db-shm",
        "server-selfsigned.key",
        "server-selfsigned.pem",
        "truststore/truststore.pem",
        "truststore/manifest.json",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data.join("truststore")), 0o700, "truststore/");
}

/// A CA and a client certificate it issued, as PEM files in `dir`.
fn client_pki(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "hardening CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "alice");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca_cert.pem(), c, k)
}

/// One mtls request with the client certificate; the status (`000`: no answer).
fn mtls_status(proxy: &str, cert: &Path, key: &Path) -> String {
    let out = certgate_testkit::command("curl")
        .args([
            "-sk",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg(format!("{proxy}/api/x"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A node in mtls + required trusting one CA, `validation_failure = http` (a refused
/// certificate gets 403 rather than a failed handshake), with an API on a closed port: a
/// request that passes authentication gets 502, one refused gets 403.
fn mtls_node(dir: &Path, auto_recover: bool) -> (Proc, String, String, PathBuf, PathBuf) {
    let cfg = write_config(dir, &format!("[truststore]\nauto_recover = {auto_recover}"));
    // Section order: write_config puts [listener] first; the truststore table follows it.
    let _ = cfg;
    let cfg = dir.join("certgate.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[truststore]\nauto_recover = {auto_recover}\n"),
    )
    .unwrap();
    let mut p = Proc::serve(&cfg, dir, "022");
    let (proxy, admin_url) = p.addresses();
    let (ca_pem, cert, key) = client_pki(dir);
    let (s, b) = admin(
        &admin_url,
        "POST",
        "/api/v1/certificates",
        Some(&serde_json::json!({"name": "ca", "pem": ca_pem})),
    );
    assert_eq!(s, 201, "{b}");
    let id = serde_json::from_str::<serde_json::Value>(&b).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, b) = admin(
        &admin_url,
        "POST",
        "/api/v1/gateway/trusted-certificates",
        Some(&serde_json::json!({"certificate_id": id})),
    );
    assert_eq!(s, 201, "{b}");
    let (s, b) = admin(
        &admin_url,
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&serde_json::json!({"mode": "mtls", "required": true, "validation_failure": "http"})),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = admin(
        &admin_url,
        "POST",
        "/api/v1/apis",
        Some(
            &serde_json::json!({"name": "api", "base_path": "/api", "upstream": "http://127.0.0.1:9"}),
        ),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(mtls_status(&proxy, &cert, &key), "502");
    (p, proxy, admin_url, cert, key)
}

/// How long a damaged trust store may go unnoticed: the watch period is 2 s.
const WATCH_BOUND: Duration = Duration::from_secs(10);

fn damage_bundle(dir: &Path) {
    let bundle = dir.join("data/truststore/truststore.pem");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&bundle)
        .unwrap();
    f.write_all(b"not a certificate\n").unwrap();
}

#[test]
fn a_trust_store_damaged_while_the_node_runs_fails_closed_without_any_admin_call() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, proxy, admin_url, cert, key) = mtls_node(dir.path(), false);
    damage_bundle(dir.path());
    // No /readyz, no admin GET: only the node's own watcher can notice.
    let deadline = Instant::now() + WATCH_BOUND;
    let mut last = String::new();
    while Instant::now() < deadline {
        last = mtls_status(&proxy, &cert, &key);
        if last == "403" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last, "403", "the damaged trust store was not noticed");
    let (s, body) = admin(&admin_url, "GET", "/readyz", None);
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("corrupted"), "{body}");
    // It stays failed (auto_recover = false) until recovered.
    assert_eq!(mtls_status(&proxy, &cert, &key), "403");
    let (s, _) = admin(
        &admin_url,
        "POST",
        "/api/v1/truststore/recover",
        Some(&serde_json::json!({})),
    );
    assert_eq!(s, 200);
    assert_eq!(mtls_status(&proxy, &cert, &key), "502");
}

#[test]
fn a_trust_store_damaged_while_the_node_runs_is_rebuilt_and_logged_with_auto_recover() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, proxy, _admin, cert, key) = mtls_node(dir.path(), true);
    let bundle = dir.path().join("data/truststore/truststore.pem");
    let intact = std::fs::read(&bundle).unwrap();
    // Only what the node logs from now on counts.
    while p.wait_for(Duration::from_millis(300), |_| false) {}
    p.seen.clear();
    damage_bundle(dir.path());
    assert!(
        p.wait_for(WATCH_BOUND, |l| l
            .contains("auto_recover is on, rebuilding")),
        "no rebuild logged: {:#?}",
        p.seen
    );
    // The build that follows the warning (its log line comes after the files).
    p.seen.clear();
    assert!(p.wait_for(WATCH_BOUND, |l| l.contains("trust store built")));
    assert_eq!(std::fs::read(&bundle).unwrap(), intact);
    assert_eq!(mtls_status(&proxy, &cert, &key), "502");
}

/// Opens `n` connections to `addr`, each sending `prefix` (possibly nothing).
fn open_connections(addr: &str, n: usize, prefix: &[u8]) -> Vec<std::net::TcpStream> {
    let addr = addr
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    (0..n)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            if !prefix.is_empty() {
                s.write_all(prefix).unwrap();
            }
            s
        })
        .collect()
}

/// A plain-HTTP node whose timeouts leave slow and idle connections open for the
/// measurement.
fn plain_node(dir: &Path) -> (Proc, String, String) {
    let cfg = write_config(
        dir,
        "ssl = false\nheader_read_timeout_secs = 300\nidle_timeout_secs = 300\nmax_connections = 12000",
    );
    let mut p = Proc::serve(&cfg, dir, "022");
    let (proxy, admin) = p.addresses();
    (p, proxy, admin)
}

/// Open file descriptors of the node process.
fn open_fds(p: &Proc) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", p.child.id()))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (bounded) until the node holds `n` descriptors more than `base`: it has
/// accepted the connections just opened.
fn wait_accepted(p: &Proc, base: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_fds(p) < base + n {
        assert!(
            Instant::now() < deadline,
            "the node accepted {} of {n} connections",
            open_fds(p).saturating_sub(base)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the node's RSS stops growing (bounded), then returns it in KiB.
fn settled_rss(p: &Proc) -> u64 {
    let mut last = p.rss_kib();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = p.rss_kib();
        if now <= last {
            return now;
        }
        last = now;
    }
    last
}

fn plain_status(proxy: &str, path: &str) -> String {
    let out = certgate_testkit::command("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{proxy}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_thousand_slowloris_connections_keep_memory_bounded_and_the_node_serving() {
    const N: usize = 1_000;
    /// Per-connection budget: hyper's 8 KiB read buffer, the connection's task and
    /// the kernel's share of RSS, with room to spare.
    const BUDGET_KIB_PER_CONN: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let (p, proxy, _admin) = plain_node(dir.path());
    assert_eq!(plain_status(&proxy, "/none"), "404");
    let before = settled_rss(&p);
    let fds = open_fds(&p);
    // Each one a request head that never ends.
    let conns = open_connections(&proxy, N, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    wait_accepted(&p, fds, N);
    let after = settled_rss(&p);
    let growth = after.saturating_sub(before);
    println!(
        "{N} slowloris connections: RSS {before} KiB -> {after} KiB (+{growth} KiB, {:.1} KiB per connection)",
        growth as f64 / N as f64
    );
    assert!(
        growth <= BUDGET_KIB_PER_CONN * N as u64,
        "+{growth} KiB for {N} connections"
    );
    // The node still serves while they hang.
    assert_eq!(plain_status(&proxy, "/none"), "404");
    drop(conns);
}

#[test]
#[ignore = "opens 10,000 connections (about a minute); run with --ignored"]
fn ten_thousand_idle_connections_keep_memory_bounded_and_the_node_serving() {
    const N: usize = 10_000;
    const BUDGET_KIB_PER_CONN: u64 = 32;
    let dir = tempfile::tempdir().unwrap();
    let (p, proxy, _admin) = plain_node(dir.path());
    assert_eq!(plain_status(&proxy, "/none"), "404");
    let before = settled_rss(&p);
    let fds = open_fds(&p);
    let conns = open_connections(&proxy, N, b"");
    wait_accepted(&p, fds, N);
    let after = settled_rss(&p);
    let growth = after.saturating_sub(before);
    println!(
        "{N} idle connections: RSS {before} KiB -> {after} KiB (+{growth} KiB, {:.1} KiB per connection)",
        growth as f64 / N as f64
    );
    assert!(
        growth <= BUDGET_KIB_PER_CONN * N as u64,
        "+{growth} KiB for {N} connections"
    );
    assert_eq!(plain_status(&proxy, "/none"), "404");
    drop(conns);
}
