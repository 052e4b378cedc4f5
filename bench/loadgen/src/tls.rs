//! The rustls client configuration: client certificate, trusted CA, ALPN, key exchange
//! group and session resumption. Kept in one module because rustls 0.24 renames parts of
//! this API.

use std::path::Path;
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::sign::CertifiedKey;
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

/// Where the client certificate comes from.
pub enum ClientAuth<'a> {
    /// No client certificate.
    None,
    /// One certificate chain (PEM, leaf first) and its key (PEM).
    Single {
        /// The chain file.
        cert: &'a Path,
        /// The key file.
        key: &'a Path,
    },
    /// A pool of distinct client certificates, handed out round-robin, one per handshake.
    Pool(Arc<ClientPool>),
}

/// What the client presents and trusts.
pub struct TlsOptions<'a> {
    /// The client certificate(s).
    pub auth: ClientAuth<'a>,
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
    let mut cfg = match &opts.auth {
        ClientAuth::Single { cert, key } => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read private key {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("client certificate and key do not fit together")?
        }
        ClientAuth::Pool(pool) => builder.with_client_cert_resolver(pool.clone()),
        ClientAuth::None => builder.with_no_client_auth(),
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

/// Distinct client certificates, all issued by one CA at start-up (rcgen) and sharing one
/// ECDSA P-256 key, handed out round-robin: each full handshake presents a certificate the
/// server has not seen yet (until the pool wraps), so a server-side verdict cache keyed by
/// certificate cannot serve it.
#[derive(Debug)]
pub struct ClientPool {
    keys: Vec<Arc<CertifiedKey>>,
    next: AtomicU64,
}

impl ClientPool {
    /// Issues `n` certificates `CN=bench-client-<i>,OU=Bench,O=certgate,C=US` with the CA
    /// of `ca_cert`/`ca_key` (PEM files; the CA key must be ECDSA P-256 or another key
    /// rcgen signs with).
    pub fn generate(n: usize, ca_cert: &Path, ca_key: &Path) -> anyhow::Result<Self> {
        use rcgen::{
            CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, SerialNumber,
        };
        let ca_pem = std::fs::read_to_string(ca_cert)
            .with_context(|| format!("cannot read {}", ca_cert.display()))?;
        let ca_key_pem = std::fs::read_to_string(ca_key)
            .with_context(|| format!("cannot read {}", ca_key.display()))?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("bad CA key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("bad CA certificate")?;
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let signing = aws_lc_rs::default_provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()))
            .context("cannot load the generated key")?;
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CountryName, "US");
            dn.push(DnType::OrganizationName, "certgate");
            dn.push(DnType::OrganizationalUnitName, "Bench");
            dn.push(DnType::CommonName, format!("bench-client-{i:06}"));
            params.distinguished_name = dn;
            params.is_ca = IsCa::NoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.serial_number = Some(SerialNumber::from((i as u64 + 1).to_be_bytes().to_vec()));
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2099, 12, 31);
            let cert = params.signed_by(&leaf_key, &issuer)?;
            keys.push(Arc::new(CertifiedKey::new(
                vec![cert.der().clone()],
                signing.clone(),
            )));
        }
        if keys.is_empty() {
            bail!("--client-pool must be at least 1");
        }
        Ok(Self {
            keys,
            next: AtomicU64::new(0),
        })
    }

    /// How many certificates were handed out.
    pub fn used(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// How many distinct certificates the pool holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

impl ResolvesClientCert for ClientPool {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.keys.len();
        self.keys.get(i).cloned()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hands_out_distinct_certificates_round_robin() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let (cert_path, key_path) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        std::fs::write(&cert_path, ca.pem()).unwrap();
        std::fs::write(&key_path, ca_key.serialize_pem()).unwrap();

        let pool = ClientPool::generate(3, &cert_path, &key_path).unwrap();
        assert_eq!(pool.len(), 3);
        let picks: Vec<_> = (0..4).map(|_| pool.resolve(&[], &[]).unwrap()).collect();
        assert_eq!(pool.used(), 4);
        assert_ne!(picks[0].cert[0], picks[1].cert[0]);
        assert_ne!(picks[1].cert[0], picks[2].cert[0]);
        assert_eq!(picks[0].cert[0], picks[3].cert[0]);
        let (_, x509) = x509_parser::parse_x509_certificate(&picks[1].cert[0]).unwrap();
        assert_eq!(
            x509.subject().to_string(),
            "C=US, O=certgate, OU=Bench, CN=bench-client-000001"
        );
        assert_eq!(x509.issuer().to_string(), "CN=test CA");
    }
}
