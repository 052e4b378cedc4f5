//! The rustls client configuration: client certificate, trusted CA, ALPN, key exchange
//! group and session resumption. Kept in one module because rustls 0.24 renames parts of
//! this API.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Key exchange groups offered by the client.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kx {
    /// X25519 only: what OpenSSL 3.0 servers (nginx, haproxy) and rustls servers all
    /// pick, so every target does the same key exchange work.
    X25519,
    /// P-256 only.
    P256,
    /// rustls's default list (may negotiate the hybrid X25519MLKEM768 with rustls servers).
    Default,
}

/// What the client presents and trusts.
pub struct TlsOptions<'a> {
    /// PEM chain of the client certificate (leaf first).
    pub cert: Option<&'a Path>,
    /// PEM private key of the client certificate.
    pub key: Option<&'a Path>,
    /// PEM CA certificates that sign the server certificate.
    pub cacert: Option<&'a Path>,
    /// Offer `h2` (else `http/1.1`) in ALPN.
    pub http2: bool,
    /// Allow TLS session resumption (tickets / session ids).
    pub resumption: bool,
    /// Key exchange groups.
    pub kx: Kx,
    /// Skip the server certificate checks (chain and handshake signature).
    pub no_verify_server: bool,
}

/// Accepts any server certificate and handshake signature. A load generator that checks
/// the server's chain spends about as much CPU per full handshake as the server does,
/// which would make the client the bottleneck of a handshake benchmark; the harness
/// checks the server certificates separately (curl smoke checks).
#[derive(Debug)]
struct NoServerVerification(Vec<SignatureScheme>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// Builds the client configuration. With `resumption = false` every connection makes a
/// full handshake (no session cache, tickets ignored).
pub fn client_config(opts: &TlsOptions<'_>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut provider = aws_lc_rs::default_provider();
    match opts.kx {
        Kx::X25519 => provider.kx_groups = vec![aws_lc_rs::kx_group::X25519],
        Kx::P256 => provider.kx_groups = vec![aws_lc_rs::kx_group::SECP256R1],
        Kx::Default => {}
    }
    let mut roots = RootCertStore::empty();
    match opts.cacert {
        Some(path) => {
            for c in read_certs(path)? {
                roots
                    .add(c)
                    .with_context(|| format!("bad CA certificate in {}", path.display()))?;
            }
        }
        None if opts.no_verify_server => {}
        None => bail!("https needs --cacert (or --no-verify-server)"),
    }
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider as CryptoProvider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let mut cfg = match (opts.cert, opts.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read private key {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate and key do not fit together")?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(anyhow!("--cert and --key go together")),
    };
    cfg.alpn_protocols = if opts.http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    if !opts.resumption {
        cfg.resumption = Resumption::disabled();
    }
    if opts.no_verify_server {
        cfg.dangerous()
            .set_certificate_verifier(Arc::new(NoServerVerification(schemes)));
    }
    Ok(Arc::new(cfg))
}

/// True when the handshake was a resumption.
pub fn was_resumed(conn: &rustls::ClientConnection) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// True when ALPN chose `h2`.
pub fn negotiated_h2(conn: &rustls::ClientConnection) -> bool {
    conn.alpn_protocol() == Some(b"h2")
}
