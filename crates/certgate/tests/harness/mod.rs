//! Harness for tests that run `certgate serve` as processes: nodes with their own data
//! dirs and ports (bound on 127.0.0.1:0, read back from the node's output), admin calls
//! and client-certificate probes with curl, a test PKI from rcgen, and an echo upstream.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use serde_json::Value;
use time::OffsetDateTime;

pub const BIN: &str = env!("CARGO_BIN_EXE_certgate");
pub const TOKEN: &str = "cluster-test-token-0123456789";

/// A CA and three client certificates (`CN=client1,O=Acme`, `CN=client2,O=Acme`, and
/// `CN=big,O=Acme` with an 11 KiB extension) as files.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "Cluster Test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        ca.not_after = OffsetDateTime::now_utc() + time::Duration::days(30);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca, &ca_key);
        for cn in ["client1", "client2", "big"] {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            if cn == "big" {
                // 11 KiB of zeros under a private OID: as URL-encoded PEM (XFCC) its
                // forwarded header passes 16 KiB, as base64 DER (RFC 9440) it stays below.
                let mut content = vec![0x04, 0x82, 0x2c, 0x00];
                content.resize(content.len() + 0x2c00, 0);
                p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 55555, 1],
                    content,
                )];
            }
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.distinguished_name.push(DnType::OrganizationName, "Acme");
            p.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
            p.not_after = OffsetDateTime::now_utc() + time::Duration::days(10);
            let cert = p.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.join(format!("{cn}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{cn}.key")), key.serialize_pem()).unwrap();
        }
        std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca_pem,
        }
    }

    pub fn cert(&self, cn: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{cn}.pem")),
            self.dir.join(format!("{cn}.key")),
        )
    }
}

/// The echo upstream on its own thread and runtime; answers 200 with a JSON echo.
pub struct Echo {
    pub url: String,
    _rt: tokio::runtime::Runtime,
}

impl Echo {
    pub fn start() -> Echo {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(certgate_proxy::echo::serve_echo(
            listener,
            std::future::pending(),
        ));
        Echo {
            url: format!("http://{addr}"),
            _rt: rt,
        }
    }
}

/// A `certgate serve` process; killed on drop.
pub struct NodeProc {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub proxy: String,
    pub admin: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

/// Writes a node config: its own data dir under `dir`, the store `store`, ports 0.
pub fn write_config(dir: &Path, store: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("certgate.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\nstore = \"{store}\"\n{extra}\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    path
}

impl NodeProc {
    /// Spawns a node; `Err(stderr)` when it exits before it listens.
    pub fn try_start(dir: &Path, config: &Path) -> Result<NodeProc, String> {
        let mut cmd = certgate_testkit::command(BIN);
        cmd.args(["serve", "--config"])
            .arg(config)
            .current_dir(dir)
            .env("CERTGATE_ADMIN_TOKEN", TOKEN)
            .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn certgate");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {l}"));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix("certgate: proxy on ") {
                        // certgate: proxy on https://127.0.0.1:P, admin API on http://127.0.0.1:Q
                        let mut urls = rest.split_whitespace().filter(|w| w.starts_with("http"));
                        let proxy = urls.next().unwrap().trim_end_matches(',').to_string();
                        let mut admin = String::new();
                        for w in rest.split_whitespace() {
                            if w.starts_with("http://") {
                                admin = w.to_string();
                            }
                        }
                        let _ = urls;
                        return Ok(NodeProc {
                            dir: dir.to_path_buf(),
                            config: config.to_path_buf(),
                            proxy,
                            admin,
                            child,
                            lines,
                        });
                    }
                    seen.push(l);
                }
                Err(_) => {
                    if let Ok(Some(_)) = child.try_wait() {
                        // Drain what is left.
                        while let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
                            seen.push(l);
                        }
                        return Err(seen.join("\n"));
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        return Err(format!("no start within 60 s:\n{}", seen.join("\n")));
                    }
                }
            }
        }
    }

    pub fn start(dir: &Path, config: &Path) -> NodeProc {
        Self::try_start(dir, config).unwrap_or_else(|e| panic!("node did not start:\n{e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        certgate_testkit::command("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "no exit within 40 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Log lines seen so far (after the start line).
    pub fn drain_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// An admin API call with the token: (status, JSON body or Null).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        curl_json(&self.admin, method, path, body)
    }

    /// `certgate ARGS --admin <this node> --token TOKEN` as a process (the admin
    /// environment variables removed, so only these flags count).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        certgate_testkit::command(BIN)
            .args(args)
            .args(["--admin", &self.admin, "--token", TOKEN])
            .env_remove("CERTGATE_ADMIN_URL")
            .env_remove("CERTGATE_ADMIN_TOKEN")
            .output()
            .unwrap()
    }

    /// The store's configuration generation, from `GET /api/v1/gateway`.
    pub fn generation(&self) -> i64 {
        let (s, v) = self.call("GET", "/api/v1/gateway", None);
        assert_eq!(s, 200, "{v}");
        v["generation"].as_i64().unwrap()
    }

    /// A proxy request, optionally with a client certificate: the status (0: no answer).
    pub fn probe(&self, path: &str, cert: Option<(PathBuf, PathBuf)>) -> u16 {
        probe(&self.proxy, path, cert)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn curl_json(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut cmd = certgate_testkit::command("curl");
    cmd.args([
        "-s",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .arg("-H")
    .arg(format!("Authorization: Bearer {TOKEN}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d"])
            .arg(b.to_string());
    }
    let out = cmd.arg(format!("{base}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let v = serde_json::from_str(body).unwrap_or(Value::Null);
    (status.trim().parse().unwrap_or(0), v)
}

pub fn probe(base: &str, path: &str, cert: Option<(PathBuf, PathBuf)>) -> u16 {
    let mut cmd = certgate_testkit::command("curl");
    cmd.args([
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ]);
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    let out = cmd.arg(format!("{base}{path}")).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Polls `f` until it answers true (bounded by `limit`); answers the time it took.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sets up mtls on a node: the PKI's CA trusted, mode mtls + required with
/// `validation_failure = http` (refusals are 403 answers, not failed handshakes), and the
/// API `/svc` to `upstream`. Answers the CA component id.
pub fn setup_mtls(node: &NodeProc, pki: &Pki, upstream: &str) -> i64 {
    let (s, v) = node.call(
        "POST",
        "/api/v1/certificates",
        Some(&serde_json::json!({"name": "ca", "pem": pki.ca_pem})),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    let (s, v) = node.call(
        "POST",
        "/api/v1/gateway/trusted-certificates",
        Some(&serde_json::json!({"certificate_id": id})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = node.call(
        "PUT",
        "/api/v1/gateway/client-cert-auth",
        Some(&serde_json::json!({"mode": "mtls", "required": true, "validation_failure": "http"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = node.call(
        "POST",
        "/api/v1/apis",
        Some(&serde_json::json!({"name": "svc", "base_path": "/svc", "upstream": upstream})),
    );
    assert_eq!(s, 201, "{v}");
    id
}
