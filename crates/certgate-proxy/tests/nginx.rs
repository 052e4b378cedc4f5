//! Header mode behind a real nginx (SPEC §6 nginx `$ssl_client_escaped_cert`): nginx
//! terminates mTLS (`ssl_verify_client on` with the test CA) and forwards the client
//! certificate in `X-SSL-Client-Cert` to a certgate node in header mode (plain HTTP,
//! `trusted_proxies = ["127.0.0.1/32"]`), which forwards to the echo upstream.
//!
//! nginx is the Debian package's `/usr/sbin/nginx` (`scripts/test.sh` installs it). When the
//! binary is missing the tests print a loud message and skip; nothing else skips them.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use std::sync::Arc;

use certgate_proxy::{ProxySettings, Runtime};
use certgate_store::model::GatewayConfig;
use common::*;

const NGINX: &str = "/usr/sbin/nginx";

/// The nginx binary. A missing nginx fails the test with the install command: a test that
/// passes without running would hide exactly the regressions it exists for.
fn nginx_binary() -> PathBuf {
    if have_program(NGINX) {
        return PathBuf::from(NGINX);
    }
    if let Some(found) = which("nginx") {
        return found;
    }
    panic!(
        "nginx is not installed ({NGINX} missing): run scripts/test.sh, which installs it, \
         or `apt-get install nginx`"
    );
}

/// A running nginx; killed (and reaped) on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    prefix: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

/// A free loopback port: bound on port 0, then released for nginx to take.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts nginx in the foreground with its own prefix and config under `pki.dir`, terminating
/// mTLS on a free port and proxying to `certgate` with `X-SSL-Client-Cert:
/// $ssl_client_escaped_cert`.
fn start_nginx(binary: &Path, pki: &Pki, certgate: SocketAddr) -> Nginx {
    let prefix = pki.path("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let p = |name: &str| prefix.join(name).to_str().unwrap().to_string();
    let port = free_port();
    let conf = format!(
        r#"
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {access};
    client_body_temp_path {client_body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        ssl_client_certificate {root};
        ssl_verify_client on;
        ssl_verify_depth 2;
        location / {{
            proxy_pass http://{certgate};
            proxy_set_header Host $host;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
}}
"#,
        access = p("access.log"),
        client_body = p("client_body"),
        proxy = p("proxy"),
        fastcgi = p("fastcgi"),
        uwsgi = p("uwsgi"),
        scgi = p("scgi"),
        server_cert = pki.path("server.pem").display(),
        server_key = pki.path("server.key").display(),
        root = pki.path("root.pem").display(),
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    // Foreground, one process (no privilege drop: the worker reads nothing after start-up, and
    // the tempdir is private to this user).
    let globals = format!("daemon off; master_process off; pid {};", p("nginx.pid"));
    let child = certgate_testkit::command(binary)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-g")
        .arg(&globals)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut nginx = Nginx {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        prefix,
    };
    // Wait until it listens (bounded), failing with its error log if it exits.
    for _ in 0..400 {
        if let Some(status) = nginx.child.try_wait().unwrap() {
            panic!("nginx exited ({status}):\n{}", nginx.error_log());
        }
        if std::net::TcpStream::connect(nginx.addr).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nginx never listened:\n{}", nginx.error_log());
}

/// certgate in header mode behind nginx: `X-SSL-Client-Cert` from 127.0.0.1 only, required,
/// the test root in the trust table, only `CN=alice` allowed.
async fn certgate_behind_nginx(
    pki: &Pki,
) -> (SocketAddr, Arc<Runtime>, GatewayConfig, GatewayHandle) {
    let echo = spawn_echo().await;
    let mut config = header_config(echo, "X-SSL-Client-Cert", &["127.0.0.1/32"], true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![pki.root.trusted(1)];
    config.client_cert_auth.trusted_dns = vec!["CN=alice,**".into()];
    let (addr, runtime, handle) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    (addr, runtime, config, handle)
}

#[tokio::test]
async fn nginx_escaped_cert_reaches_certgate_and_identity_reaches_upstream() {
    let binary = nginx_binary();
    let pki = Pki::new();
    let (certgate, _runtime, _config, _gateway) = certgate_behind_nginx(&pki).await;
    let nginx = start_nginx(&binary, &pki, certgate);
    let alice = pki.client_cn("alice");
    let reply = TlsClient::new(&pki, Some(&alice))
        .get(
            nginx.addr,
            "/orders?id=1",
            &[("X-Client-Cert-Subject", "CN=admin")],
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", nginx.error_log()));
    reply.assert_identity(&alice);
    let json = reply.json();
    assert!(
        json["headers"].get("x-ssl-client-cert").is_none(),
        "the certificate header reached the upstream: {json}"
    );
    assert_eq!(json["path"], "/orders");
    assert_eq!(json["query"], "id=1");
    // nginx's X-Forwarded-For is absent, so certgate's is the peer: nginx on 127.0.0.1.
    assert_eq!(json["headers"]["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn nginx_dn_mismatch_is_403_from_certgate() {
    let binary = nginx_binary();
    let pki = Pki::new();
    let (certgate, _runtime, _config, _gateway) = certgate_behind_nginx(&pki).await;
    let nginx = start_nginx(&binary, &pki, certgate);
    let bob = pki.client_cn("bob");
    let reply = TlsClient::new(&pki, Some(&bob))
        .get(nginx.addr, "/", &[])
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", nginx.error_log()));
    // nginx passes certgate's answer through unchanged.
    assert_denied(&reply, 403);
}

#[tokio::test]
async fn nginx_with_curl_and_without_a_cert() {
    let binary = nginx_binary();
    let pki = Pki::new();
    let (certgate, _runtime, _config, _gateway) = certgate_behind_nginx(&pki).await;
    let nginx = start_nginx(&binary, &pki, certgate);
    let alice = pki.client_cn("alice");
    let (cert, key) = alice.write(pki.dir.path(), "alice");
    let curl = |with_cert: bool| {
        // tokio's Command: the certgate node runs on this test's runtime and must keep serving.
        let mut command = certgate_testkit::tokio_command("curl");
        command
            .args([
                "-sS",
                "--max-time",
                "60",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(pki.path("root.pem"))
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", nginx.addr.port()))
            .kill_on_drop(true);
        if with_cert {
            command.arg("--cert").arg(&cert).arg("--key").arg(&key);
        }
        command.arg(format!("https://localhost:{}/", nginx.addr.port()));
        async move {
            let output = command
                .output()
                .await
                .expect("curl (scripts/test.sh installs it)");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let (body, status) = stdout.rsplit_once('\n').unwrap();
            (status.to_string(), body.to_string())
        }
    };
    let (status, body) = curl(true).await;
    assert_eq!(status, "200", "{body}\n{}", nginx.error_log());
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["headers"]["x-client-cert-subject"], alice.dn.as_str());
    // Without a certificate nginx itself refuses (400, `ssl_verify_client on`); certgate never
    // sees the request.
    let (status, body) = curl(false).await;
    assert_eq!(status, "400", "{body}");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );
}

#[tokio::test]
async fn nginx_forwards_only_the_leaf_so_an_intermediate_must_be_trusted() {
    // `$ssl_client_escaped_cert` holds the leaf only, never the chain nginx verified. With
    // only the root in certgate's trust table, a certificate issued by an intermediate cannot
    // be chained from the header (403); trusting the intermediate too makes it pass.
    let binary = nginx_binary();
    let pki = Pki::new();
    let (certgate, runtime, config, _gateway) = certgate_behind_nginx(&pki).await;
    let nginx = start_nginx(&binary, &pki, certgate);
    let alice = pki.client(&ClientSpec::new("alice").issued_by(IssuedBy::Intermediate));
    let client = TlsClient::new(&pki, Some(&alice));
    let reply = client
        .get(nginx.addr, "/", &[])
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", nginx.error_log()));
    assert_denied(&reply, 403);

    let mut config = config.clone();
    config
        .trusted_certificates
        .push(pki.intermediate.trusted(2));
    apply(&runtime, &config);
    let reply = client.get(nginx.addr, "/", &[]).await.unwrap();
    reply.assert_identity(&alice);
}
