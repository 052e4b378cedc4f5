//! `certgate quickstart` (SPEC §9): a demo PKI, an echo upstream and a node in mtls mode
//! with a DN pattern, configured through the node's own admin API, then three `curl`
//! commands that show 200, 401 and 403.
//!
//! The directory (`./certgate-quickstart`) is the quickstart's own: a marker file says so, a
//! pid file in it keeps a second quickstart out while one runs, and a later run reuses its
//! PKI, admin token and stored configuration unless `--reset` asks for a fresh start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};

use crate::config::Config;
use crate::node;
use crate::secrets::TokenSource;

/// The file that marks a directory as made by quickstart (and so safe to re-create).
const MARKER: &str = ".certgate-quickstart";
/// The pid file of the quickstart running in the directory.
const LOCK: &str = "quickstart.pid";
/// The files a reusable run needs (made by [`make_pki`]); `data/` holds the node's state.
const PKI_FILES: [&str; 7] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
    "intruder.pem",
    "intruder.key",
];
/// The DN pattern the demo trusts.
const DEMO_PATTERN: &str = "CN=demo-client,O=certgate-quickstart";

/// The long help of `quickstart`.
pub const LONG_ABOUT: &str = "Make a demo CA, server and client certificates and an echo \
    upstream in ./certgate-quickstart, start a node in mtls mode on https://localhost:8443 \
    (admin API on http://127.0.0.1:9090) and print curl commands that show 200, 401 and 403.\n\n\
    A later run reuses the directory's PKI, admin token and configuration (--reset starts \
    afresh); while one quickstart runs, a second one in the same directory or on the same \
    ports refuses to start. Ctrl-C stops it.";

/// Arguments of `quickstart`.
#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {
    /// Directory for the demo PKI and the node's data.
    #[arg(long, value_name = "DIR", default_value = "certgate-quickstart")]
    pub dir: PathBuf,
    /// Proxy port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Admin API port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9090)]
    pub admin_port: u16,
    /// Start afresh: a new PKI, admin token and configuration instead of the kept ones.
    #[arg(long)]
    pub reset: bool,
}

struct Pki {
    ca_pem: String,
}

fn name(cn: &str, o: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, o);
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
}

/// Writes the demo PKI into `dir`: CA, server (localhost, 127.0.0.1), a client whose DN
/// matches the pattern and one whose DN does not.
fn make_pki(dir: &Path) -> anyhow::Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name("certgate quickstart CA", "certgate-quickstart");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca, 365);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let write = |file: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(file);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    write("ca.pem", &ca_cert.pem())?;
    let write_key = |file: &str, text: &str| write_private(&dir.join(file), text);

    let leaf = |file: &str,
                cn: &str,
                o: &str,
                sans: Vec<String>,
                eku: ExtendedKeyUsagePurpose|
     -> anyhow::Result<()> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name = name(cn, o);
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut p, 90);
        let cert = p.signed_by(&key, &issuer)?;
        write(&format!("{file}.pem"), &cert.pem())?;
        write_key(&format!("{file}.key"), &key.serialize_pem())
    };
    leaf(
        "server",
        "localhost",
        "certgate-quickstart",
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    leaf(
        "client",
        "demo-client",
        "certgate-quickstart",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    leaf(
        "intruder",
        "intruder",
        "elsewhere",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
    })
}

/// Writes a private key readable by its owner only (mode 0600 from the moment it exists).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a process with this pid runs a certgate binary (Linux `/proc`; elsewhere a pid
/// file is taken as stale).
fn certgate_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| cmd.windows(8).any(|w| w == b"certgate"))
        .unwrap_or(false)
}

/// The pid of a quickstart running in `dir`, if any.
fn running_in(dir: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(dir.join(LOCK)).ok()?;
    let pid = pid.trim().parse::<u32>().ok()?;
    certgate_running(pid).then_some(pid)
}

/// The pid file of this process in the quickstart directory; removed when dropped.
struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Creates the pid file; a live quickstart's file refuses, a stale one is replaced.
    fn acquire(dir: &Path) -> anyhow::Result<Lock> {
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(pid) = running_in(dir) {
                        bail!(already_running(dir, pid));
                    }
                    // Left by a quickstart that did not exit cleanly.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        bail!(
            "cannot take {} (another quickstart starting?)",
            path.display()
        )
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn already_running(dir: &Path, pid: u32) -> String {
    format!(
        "a quickstart is already running in {} (pid {pid}); stop it (Ctrl-C) before starting another",
        dir.display()
    )
}

/// Refuses ports that something else holds, before anything is written (0: no check).
fn check_ports_free(ports: &[(u16, &str)]) -> anyhow::Result<()> {
    for &(port, flag) in ports {
        if port == 0 {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            bail!(
                "127.0.0.1:{port} is not free ({e}): another quickstart or certgate serve may be \
                 running; stop it or choose another {flag}"
            );
        }
    }
    Ok(())
}

/// What a run found in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A new PKI, token and configuration.
    Fresh,
    /// The PKI, token and configuration of an earlier run.
    Reused,
}

/// Takes the directory: refuses one quickstart did not make and one where a quickstart is
/// running (both before touching anything), then keeps a complete earlier run's state or
/// empties it for a fresh start.
fn prepare_dir(args: &QuickstartArgs) -> anyhow::Result<(Lock, Start)> {
    let dir = &args.dir;
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by quickstart; choose another --dir",
                dir.display()
            );
        }
        if let Some(pid) = running_in(dir) {
            bail!(already_running(dir, pid));
        }
    }
    check_ports_free(&[(args.port, "--port"), (args.admin_port, "--admin-port")])?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = Lock::acquire(dir)?;
    let complete = dir.join(MARKER).exists()
        && PKI_FILES.iter().all(|f| dir.join(f).is_file())
        && dir.join("data").join("certgate.db").is_file();
    if complete && !args.reset {
        return Ok((lock, Start::Reused));
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name() == LOCK {
            continue;
        }
        let p = entry.path();
        let removed = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed.with_context(|| format!("cannot remove {}", p.display()))?;
    }
    std::fs::write(
        dir.join(MARKER),
        "made by certgate quickstart; safe to delete\n",
    )?;
    Ok((lock, Start::Fresh))
}

/// Quotes a path for a POSIX shell when it holds anything but plain path characters.
fn sh(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// One admin API call; a non-2xx answer is an error quoting the API's message.
async fn admin(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if !body.is_null() {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("admin API {path}"))?;
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("admin API {path} answered {status}: {value}");
    }
    Ok(value)
}

async fn configure(base: &str, token: &str, pki: &Pki, echo: SocketAddr) -> anyhow::Result<()> {
    use reqwest::Method;
    let c = reqwest::Client::new();
    let cert = admin(
        &c,
        base,
        token,
        Method::POST,
        "/api/v1/certificates",
        json!({"name": "quickstart-ca", "pem": pki.ca_pem}),
    )
    .await?;
    let id = cert
        .get("id")
        .and_then(Value::as_i64)
        .context("admin API: certificate without id")?;
    admin(
        &c,
        base,
        token,
        Method::POST,
        "/api/v1/gateway/trusted-certificates",
        json!({"certificate_id": id}),
    )
    .await?;
    admin(
        &c,
        base,
        token,
        Method::PUT,
        "/api/v1/gateway/client-cert-auth",
        json!({"mode": "mtls", "required": true, "trusted_dns": [DEMO_PATTERN]}),
    )
    .await?;
    admin(
        &c,
        base,
        token,
        Method::POST,
        "/api/v1/apis",
        json!({"name": "echo", "base_path": "/", "upstream": format!("http://{echo}")}),
    )
    .await?;
    Ok(())
}

/// Points the kept `echo` API at this run's echo upstream (its port changes every run);
/// the rest of the kept configuration stays as it is.
async fn reconnect_echo(base: &str, token: &str, echo: SocketAddr) -> anyhow::Result<()> {
    use reqwest::Method;
    let c = reqwest::Client::new();
    let apis = admin(&c, base, token, Method::GET, "/api/v1/apis", Value::Null).await?;
    let Some(api) = apis
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a.get("name").and_then(Value::as_str) == Some("echo"))
    else {
        return Ok(());
    };
    let id = api
        .get("id")
        .and_then(Value::as_i64)
        .context("admin API: API without id")?;
    admin(
        &c,
        base,
        token,
        Method::PUT,
        &format!("/api/v1/apis/{id}"),
        json!({"name": "echo", "base_path": api.get("base_path").cloned().unwrap_or(json!("/")),
               "upstream": format!("http://{echo}")}),
    )
    .await?;
    Ok(())
}

/// Runs the quickstart until Ctrl-C / SIGTERM.
pub fn run(args: QuickstartArgs) -> ExitCode {
    node::init_logging();
    let rt = match node::tokio_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(quickstart(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certgate quickstart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn quickstart(args: QuickstartArgs) -> anyhow::Result<()> {
    let (_lock, start) = prepare_dir(&args)?;
    // Absolute, so that every printed command works from any directory.
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let pki = match start {
        Start::Fresh => Some(make_pki(&dir)?),
        Start::Reused => None,
    };

    let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let echo_addr = echo_listener.local_addr()?;
    let (echo_stop, echo_rx) = tokio::sync::oneshot::channel::<()>();
    let echo = tokio::spawn(certgate_proxy::echo::serve_echo(echo_listener, async {
        let _ = echo_rx.await;
    }));

    let mut cfg = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    cfg.listener.address = SocketAddr::from(([127, 0, 0, 1], args.port));
    cfg.listener.certificate = Some(dir.join("server.pem"));
    cfg.listener.private_key = Some(dir.join("server.key"));
    cfg.admin.address = SocketAddr::from(([127, 0, 0, 1], args.admin_port));
    cfg.admin.token = std::env::var("CERTGATE_ADMIN_TOKEN")
        .ok()
        .filter(|t| t.len() >= 16);
    let n = node::start(&cfg)
        .await
        .context("cannot start the node (is the port free? try --port/--admin-port)")?;
    let admin_base = format!("http://{}", n.admin_addr);
    match &pki {
        Some(pki) => configure(&admin_base, &n.token, pki, echo_addr).await?,
        None => reconnect_echo(&admin_base, &n.token, echo_addr).await?,
    }

    let stop = super::shutdown_signals().context("cannot install the Ctrl-C handler")?;
    let d = sh(&dir);
    let token_file = dir.join("data").join("admin-token");
    let exe = std::env::current_exe()
        .map(|p| sh(&p))
        .unwrap_or_else(|_| "certgate".to_owned());
    let (token_note, token_env) = if n.token_source == TokenSource::Configured {
        (
            "the token of CERTGATE_ADMIN_TOKEN".to_owned(),
            String::new(),
        )
    } else {
        (
            format!("token in {}", sh(&token_file)),
            format!("CERTGATE_ADMIN_TOKEN=$(cat {}) ", sh(&token_file)),
        )
    };
    let url = format!("https://localhost:{}/hello", n.proxy_addr.port());
    let what = match start {
        Start::Fresh => format!("made a new demo PKI, admin token and configuration in {d}"),
        Start::Reused => format!(
            "reusing the demo PKI, admin token and configuration kept in {d} (--reset starts afresh)"
        ),
    };
    println!(
        "certgate quickstart: {what}\n\n\
         certgate quickstart is running: an mTLS gateway on https://localhost:{port} in front of an echo upstream ({echo_addr}).\n\
         It trusts the demo CA in {d}/ca.pem and admits only the DN pattern \"{DEMO_PATTERN}\"{kept}.\n\n\
         # 200: the client certificate is trusted and its DN matches (the echo shows the forwarded X-Client-Cert-* headers)\n\
         curl --cacert {d}/ca.pem --cert {d}/client.pem --key {d}/client.key {url}\n\n\
         # 401: no client certificate\n\
         curl --cacert {d}/ca.pem {url}\n\n\
         # 403: a trusted certificate whose DN does not match the pattern\n\
         curl --cacert {d}/ca.pem --cert {d}/intruder.pem --key {d}/intruder.key {url}\n\n\
         Admin API: {admin_base} ({token_note}), e.g.\n\
         CERTGATE_ADMIN_URL={admin_base} {token_env}{exe} gateway show\n\n\
         Web console: {admin_base}/console/ (sign in with the admin token: cat {d}/data/admin-token)\n\n\
         Press Ctrl-C to stop.",
        port = n.proxy_addr.port(),
        kept = match start {
            Start::Fresh => "",
            Start::Reused => " (unless you changed that since)",
        },
    );
    stop.await;
    tracing::info!("shutting down: draining in-flight requests");
    n.begin_shutdown();
    let _ = echo_stop.send(());
    let _ = echo.await;
    n.finished().await
}
