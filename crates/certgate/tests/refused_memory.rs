//! Refused handshakes do not fill memory (issue 9 defect 6): a real node (`certgate serve`,
//! a child process, so its resident memory is its own) in mtls mode with
//! `validation_failure = handshake` refuses 10,000 handshakes, each presenting a distinct
//! self-signed 60 KB client certificate, and its RSS grows by less than
//! [`RSS_GROWTH_BOUND`]. Before the fix every refused chain was cached whole (10,000 per
//! trust generation): 3,000 such handshakes took a node from 24 MiB to 400 MiB.
//!
//! The certificates are cheap: one rcgen template with a 60 KB padding extension, made
//! distinct by a counter written into the padding (the signature then no longer matches,
//! which the node never gets to: the issuer is unknown). One client key serves them all.
//! `REFUSED_HANDSHAKES` overrides the count (e.g. 1500 to show the old code failing without
//! exhausting the machine).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{DigitallySignedStruct, SignatureScheme};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const TOKEN: &str = "refused-memory-test-token-0123456789";
/// How much the node's RSS may grow over the measured handshakes.
const RSS_GROWTH_BOUND: u64 = 32 << 20;
/// Padding per certificate.
const PADDING: usize = 60_000;

/// The node, killed on drop.
struct Node {
    child: Child,
    proxy: String,
    admin: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(dir: &Path) -> Node {
        let config = dir.join("certgate.toml");
        std::fs::write(
            &config,
            "data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let mut child = certgate_testkit::command(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .current_dir(dir)
            .env("CERTGATE_ADMIN_TOKEN", TOKEN)
            .env("CERTGATE_WORKER_THREADS", "1")
            .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn certgate");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // Drains the log (one line per refusal) for the node's whole life.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("the node printed its addresses within 60 s");
            if line.contains("proxy on") {
                break line;
            }
        };
        // certgate: proxy on https://127.0.0.1:P, admin API on http://127.0.0.1:Q
        let mut urls = line.split_whitespace().filter(|w| w.starts_with("http"));
        let proxy = urls.next().unwrap().trim_end_matches(',').to_owned();
        let admin = urls.next().unwrap().to_owned();
        Node {
            child,
            proxy,
            admin,
        }
    }

    fn proxy_addr(&self) -> String {
        self.proxy.trim_start_matches("https://").to_owned()
    }

    /// One admin call with curl: (status, body).
    fn admin(&self, args: &[&str]) -> (String, String) {
        let out = certgate_testkit::command("curl")
            .args([
                "-s",
                "--noproxy",
                "*",
                "--max-time",
                "20",
                "-w",
                "\n%{http_code}",
            ])
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(args.iter().map(|a| a.replace("{admin}", &self.admin)))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
        (status.to_owned(), body.to_owned())
    }

    /// The node's resident set size in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }

    /// `certgate_auth_denied_total{reason="untrusted",api=""}` from `/metrics`.
    fn refused_in_handshake(&self) -> u64 {
        let (status, body) = self.admin(&["{admin}/metrics"]);
        assert_eq!(status, "200");
        body.lines()
            .filter(|l| l.starts_with("certgate_auth_denied_total{"))
            .filter(|l| l.contains("reason=\"untrusted\"") && l.contains("api=\"\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }
}

/// Hands out a new certificate (template + counter) for every handshake, same key.
#[derive(Debug)]
struct DistinctCerts {
    template: Vec<u8>,
    offset: usize,
    next: AtomicU64,
    key: Arc<dyn SigningKey>,
}

impl ResolvesClientCert for DistinctCerts {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let mut der = self.template.clone();
        der[self.offset..self.offset + 8].copy_from_slice(&i.to_be_bytes());
        Some(Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(der)],
            self.key.clone(),
        )))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The node's server certificate is self-signed; this client only needs a handshake.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "refused-client");
    params.distinguished_name = dn;
    // An OCTET STRING of zeros under a private OID.
    let mut content = vec![0x04, 0x83];
    content.extend_from_slice(&(PADDING as u32).to_be_bytes()[1..]);
    content.resize(content.len() + PADDING, 0);
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 55555, 2],
        content,
    )];
    let template = params.self_signed(&key).unwrap().der().to_vec();
    let offset = template
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 0))
        .expect("padding in the template")
        + 8;
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    let resolver = Arc::new(DistinctCerts {
        template,
        offset,
        next: AtomicU64::new(0),
        key: signing_key,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_cert_resolver(resolver);
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One handshake with a new certificate and a request; true when the node refused it
/// (an alert or a close, no HTTP answer).
fn refused_handshake(addr: &str, config: &Arc<rustls::ClientConfig>) -> bool {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut conn =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    // With TLS 1.3 the client's Finished goes out before the server judges the
    // certificate: the refusal shows on the read.
    if tls
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return true;
    }
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Err(_) => true,
        Ok(_) => answer.is_empty(),
    }
}

/// `n` refused handshakes over `threads` client threads.
fn refuse(addr: &str, config: &Arc<rustls::ClientConfig>, n: u64, threads: u64) {
    let accepted = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let accepted = &accepted;
            s.spawn(move || {
                for _ in (t..n).step_by(threads as usize) {
                    if !refused_handshake(addr, config) {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        0,
        "a handshake got an answer"
    );
}

#[test]
fn ten_thousand_refused_handshakes_leave_rss_bounded() {
    let count: u64 = std::env::var("REFUSED_HANDSHAKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let (status, body) = node.admin(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"mode":"mtls","required":true,"validation_failure":"handshake"}"#,
        "{admin}/api/v1/gateway/client-cert-auth",
    ]);
    assert_eq!(status, "200", "{body}");
    let addr = node.proxy_addr();
    let config = client_config();

    // Warm up (TLS configuration, allocator arenas, metric handles), then measure.
    refuse(&addr, &config, 200, 2);
    let denied_before = node.refused_in_handshake();
    let before = node.rss();
    let started = Instant::now();
    refuse(&addr, &config, count, 2);
    let took = started.elapsed();
    let after = node.rss();
    let denied = node.refused_in_handshake() - denied_before;
    eprintln!(
        "{count} refused handshakes with {PADDING}-byte certificates in {took:?}: \
         RSS {} KiB -> {} KiB (growth {} KiB, bound {} KiB)",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024,
        RSS_GROWTH_BOUND / 1024
    );
    // Every one was judged and refused as untrusted in the handshake.
    assert_eq!(denied, count);
    assert!(
        after.saturating_sub(before) < RSS_GROWTH_BOUND,
        "RSS grew from {before} to {after} bytes over {count} refused handshakes"
    );
}
