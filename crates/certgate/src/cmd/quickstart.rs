//! `certgate quickstart` (SPEC §9): a demo PKI, an echo upstream and a node in mtls mode
//! with a DN pattern, configured through the node's own admin API, then three `curl`
//! commands that show 200, 401 and 403.

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

/// The file that marks a directory as made by quickstart (and so safe to re-create).
const MARKER: &str = ".certgate-quickstart";
/// The DN pattern the demo trusts.
const DEMO_PATTERN: &str = "CN=demo-client,O=certgate-quickstart";

/// Arguments of `quickstart`.
#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {
    /// Directory for the demo PKI and the node's data (re-created on every run).
    #[arg(long, default_value = "certgate-quickstart")]
    pub dir: PathBuf,
    /// Proxy port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Admin API port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9090)]
    pub admin_port: u16,
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
        write(&format!("{file}.key"), &key.serialize_pem())
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

/// Empties `dir` if quickstart made it, refuses a directory it did not make.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by quickstart; choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by certgate quickstart; safe to delete\n",
    )?;
    Ok(())
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
    let resp = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
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
    let dir = args.dir.clone();
    prepare_dir(&dir)?;
    let pki = make_pki(&dir)?;

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
    configure(&admin_base, &n.token, &pki, echo_addr).await?;

    let d = dir.display();
    let url = format!("https://localhost:{}/hello", n.proxy_addr.port());
    println!(
        "\ncertgate quickstart is running: an mTLS gateway on https://localhost:{port} in front of an echo upstream ({echo_addr}).\n\
         It trusts the demo CA in {d}/ca.pem and admits only the DN pattern \"{DEMO_PATTERN}\".\n\n\
         # 200: the client certificate is trusted and its DN matches (the echo shows the forwarded X-Client-Cert-* headers)\n\
         curl --cacert {d}/ca.pem --cert {d}/client.pem --key {d}/client.key {url}\n\n\
         # 401: no client certificate\n\
         curl --cacert {d}/ca.pem {url}\n\n\
         # 403: a trusted certificate whose DN does not match the pattern\n\
         curl --cacert {d}/ca.pem --cert {d}/intruder.pem --key {d}/intruder.key {url}\n\n\
         Admin API: {admin_base} (token in {d}/data/admin-token), e.g.\n\
         CERTGATE_ADMIN_URL={admin_base} CERTGATE_ADMIN_TOKEN=$(cat {d}/data/admin-token) certgate gateway show\n\n\
         Web console: {admin_base}/console/ (sign in with the admin token: cat {d}/data/admin-token)\n\n\
         Press Ctrl-C to stop.",
        port = n.proxy_addr.port(),
    );
    node::termination_signal().await;
    n.begin_shutdown();
    let _ = echo_stop.send(());
    let _ = echo.await;
    n.finished().await
}
