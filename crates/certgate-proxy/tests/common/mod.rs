//! Shared helpers of the certgate-proxy integration tests.
//!
//! - [`Pki`]: a test PKI made with rcgen inside the test (root CA, intermediate CA, a server
//!   certificate for `localhost`/`127.0.0.1`, client certificates by DN, validity, issuer and
//!   EKU, CRLs), and the PEM/key files that curl, openssl and nginx read, in a tempdir.
//! - Config builders: [`trusted`], [`api`], [`header_config`], [`mtls_config`], [`apply`].
//! - Servers: [`spawn_echo`] (the echo upstream of `certgate_proxy::echo`) and
//!   [`spawn_gateway`] (a certgate proxy listener on `127.0.0.1:0`).
//! - Clients: [`TlsClient`] (rustls + hyper, a chosen client identity or none, trusting the test
//!   root), [`plain_request`] (plain HTTP/1.1 via hyper) and [`raw_http`] (bytes on a socket,
//!   for what hyper's client will not send).
//! - Assertions on the data plane's answers: [`Reply`], [`assert_denied`].
//!
//! Every integration test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use certgate_proxy::{ProxySettings, Runtime};
use certgate_store::model::{
    Api, ApiOverride, CertAuthMode, ClientCertAuthSettings, GatewayConfig, HeaderFormat,
    TrustedCertificate, ValidationFailure,
};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The exact 401 message of SPEC §3.
pub const MSG_401: &str = "Certificate authorization required to access the resource.";
/// The exact 403 message of SPEC §3.
pub const MSG_403: &str =
    "Certificate validation failed. You are not allowed to access the resource.";
/// The exact 404 message of SPEC §3.
pub const MSG_404: &str = "No API matches the requested path.";

// ---------------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------------

/// Serial numbers unique within the test process (8 bytes, first byte 0x10 so the DER
/// integer is positive and its lowercase hex has no leading zero).
fn next_serial() -> (SerialNumber, String) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = n.to_be_bytes();
    bytes[0] = 0x10;
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

/// Now, to the second (certificates keep whole seconds).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid")
}

/// Builds an rcgen DN from `(keyword, value)` pairs given in canonical (RFC 4514) order.
///
/// The certificate encodes RDNs in the reverse order, so that the canonical rendering of the
/// subject is exactly the pairs joined as `K=v,K=v`.
fn rcgen_dn(canonical: &[(&str, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (keyword, value) in canonical.iter().rev() {
        let ty = match *keyword {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            other => panic!("test DN keyword {other} not supported by the helper"),
        };
        dn.push(ty, *value);
    }
    dn
}

/// The canonical DN string of `(keyword, value)` pairs in canonical order (plain values only).
fn canonical_dn(canonical: &[(&str, &str)]) -> String {
    canonical
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The authorityInfoAccess extension naming one OCSP responder (short URIs only).
pub fn aia_ocsp(uri: &str) -> rcgen::CustomExtension {
    // AccessDescription ::= SEQUENCE { id-ad-ocsp, [6] IA5String }
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut desc = oid.to_vec();
    desc.push(0x86);
    desc.push(uri.len() as u8);
    desc.extend_from_slice(uri.as_bytes());
    let mut seq = vec![0x30, desc.len() as u8];
    seq.extend(desc);
    let mut outer = vec![0x30, seq.len() as u8];
    outer.extend(seq);
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], outer)
}

/// A certificate authority of the test PKI.
pub struct Ca {
    /// The CA's own certificate (DER and PEM).
    pub der: CertificateDer<'static>,
    pub pem: String,
    /// Canonical subject DN.
    pub dn: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root CA with subject `CN=<cn>,O=certgate tests`.
    pub fn root(cn: &str) -> Ca {
        Self::make(cn, None)
    }

    /// A self-signed root CA valid between the two instants.
    pub fn root_valid(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Ca {
        Self::make_valid(cn, None, not_before, not_after)
    }

    /// An intermediate CA issued by this CA, valid between the two instants.
    pub fn intermediate_valid(
        &self,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Ca {
        Self::make_valid(cn, Some(self), not_before, not_after)
    }

    /// A CRL issued by this CA revoking nothing, with the given nextUpdate, as PEM.
    pub fn crl_next_update(&self, next_update: OffsetDateTime) -> String {
        CertificateRevocationListParams {
            this_update: next_update - Duration::days(7),
            next_update,
            crl_number: SerialNumber::from_slice(&[2]),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap()
        .pem()
        .unwrap()
    }

    fn make(cn: &str, parent: Option<&Ca>) -> Ca {
        Self::make_valid(
            cn,
            parent,
            now() - Duration::days(30),
            now() + Duration::days(3650),
        )
    }

    fn make_valid(
        cn: &str,
        parent: Option<&Ca>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Ca {
        let canonical = [("CN", cn), ("O", "certgate tests")];
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_dn(&canonical);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(next_serial().0);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let issuer = match parent {
            None => CertifiedIssuer::self_signed(params, key).unwrap(),
            Some(parent) => CertifiedIssuer::signed_by(params, key, &parent.issuer).unwrap(),
        };
        Ca {
            der: issuer.der().clone(),
            pem: issuer.pem(),
            dn: canonical_dn(&canonical),
            not_before,
            not_after,
            issuer,
        }
    }

    /// The CA's private key as PKCS#8 PEM (for an `openssl ocsp` responder).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate for an OCSP responder this CA delegates to (with the
    /// `id-kp-OCSPSigning` extended key usage when `ocsp_signing`): (PEM, key PEM).
    pub fn ocsp_responder(&self, cn: &str, ocsp_signing: bool) -> (String, String) {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_dn(&[("CN", cn), ("O", "certgate tests")]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if ocsp_signing {
            vec![ExtendedKeyUsagePurpose::OcspSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.serial_number = Some(next_serial().0);
        params.not_before = now() - Duration::days(1);
        params.not_after = now() + Duration::days(30);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// An intermediate CA issued by this CA.
    pub fn intermediate(&self, cn: &str) -> Ca {
        Self::make(cn, Some(self))
    }

    /// A CRL issued by this CA that revokes the given serials (lowercase hex, as
    /// [`Identity::serial_hex`]), as PEM.
    pub fn crl(&self, revoked_serials: &[&str]) -> String {
        let revoked_certs = revoked_serials
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&hex::decode(serial).unwrap()),
                revocation_time: now() - Duration::hours(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect();
        CertificateRevocationListParams {
            this_update: now() - Duration::hours(2),
            next_update: now() + Duration::days(30),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap()
        .pem()
        .unwrap()
    }

    /// This CA as an entry of the gateway's trust table (component `id`, version 1).
    pub fn trusted(&self, id: i64) -> TrustedCertificate {
        TrustedCertificate {
            certificate_id: id,
            name: format!("test-ca-{id}"),
            version: 1,
            latest_version: 1,
            pem: self.pem.clone(),
            subject: self.dn.clone(),
            fingerprint_sha256: fingerprint(&self.der),
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }
}

/// `sha256:` + lowercase hex of the DER (SPEC §7 `X-Client-Cert-Fingerprint`).
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Which CA of a [`Pki`] issues a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuedBy {
    /// The root CA directly.
    Root,
    /// The intermediate CA (the client then presents leaf + intermediate).
    Intermediate,
    /// A CA that no trust table in the tests contains.
    Untrusted,
}

/// What a client certificate should look like.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// `(keyword, value)` in canonical order, e.g. `[("CN", "alice"), ("O", "Example")]`.
    pub dn: Vec<(String, String)>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub issued_by: IssuedBy,
    /// Adds the extended key usage id-kp-clientAuth.
    pub client_auth_eku: bool,
    /// When non-zero, a private non-critical extension of about this many bytes (to make
    /// certificates of a chosen size).
    pub padding: usize,
    /// CRL distribution point URIs (SPEC §16 `crl_dp`).
    pub crl_urls: Vec<String>,
    /// An AIA OCSP responder URI (SPEC §16 `ocsp`).
    pub ocsp_url: Option<String>,
}

impl ClientSpec {
    /// `CN=<cn>,O=Example Corp,C=US`, issued by the root, valid from a day ago for a year,
    /// with EKU clientAuth.
    pub fn new(cn: &str) -> ClientSpec {
        ClientSpec {
            dn: vec![
                ("CN".into(), cn.into()),
                ("O".into(), "Example Corp".into()),
                ("C".into(), "US".into()),
            ],
            not_before: now() - Duration::days(1),
            not_after: now() + Duration::days(365),
            issued_by: IssuedBy::Root,
            client_auth_eku: true,
            padding: 0,
            crl_urls: Vec::new(),
            ocsp_url: None,
        }
    }

    /// Issued by another CA of the PKI.
    pub fn issued_by(mut self, issued_by: IssuedBy) -> ClientSpec {
        self.issued_by = issued_by;
        self
    }

    /// Valid between the two instants.
    pub fn validity(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Expired yesterday.
    pub fn expired(self) -> ClientSpec {
        self.validity(now() - Duration::days(30), now() - Duration::days(1))
    }

    /// Valid only from tomorrow.
    pub fn not_yet_valid(self) -> ClientSpec {
        self.validity(now() + Duration::days(1), now() + Duration::days(30))
    }
}

/// A certificate with its private key: a client identity, or the server's.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The leaf.
    pub der: CertificateDer<'static>,
    pub pem: String,
    /// The certificates after the leaf that the holder presents (the intermediate, if any).
    pub intermediates: Vec<CertificateDer<'static>>,
    /// Leaf PEM followed by the intermediates' PEM.
    pub chain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: String,
    key_der: Vec<u8>,
    /// Canonical subject DN.
    pub dn: String,
    /// Canonical issuer DN.
    pub issuer_dn: String,
    /// Lowercase hex, no separators.
    pub serial_hex: String,
    /// `sha256:` + lowercase hex of the DER.
    pub fingerprint: String,
    pub not_after: OffsetDateTime,
}

impl Identity {
    /// The private key for rustls.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Leaf + intermediates, as presented in a handshake.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![self.der.clone()];
        chain.extend(self.intermediates.iter().cloned());
        chain
    }

    /// `X-Client-Cert-Not-After` as SPEC §7 writes it (RFC 3339 UTC).
    pub fn not_after_rfc3339(&self) -> String {
        self.not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    /// The base64 of the leaf's DER (standard alphabet, padded): the PEM body on one line.
    pub fn b64(&self) -> String {
        pem_body(&self.pem)
    }

    /// Writes `<name>.pem` (leaf + intermediates) and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.chain_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// The base64 text of the first PEM block, on one line.
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect::<String>()
}

/// The test PKI: a root CA, an intermediate under it, an unrelated ("untrusted") root, a
/// server certificate for `localhost` and `127.0.0.1` issued by the root, and a tempdir for
/// the files external programs read.
pub struct Pki {
    pub root: Ca,
    pub intermediate: Ca,
    /// A root that the tests never put in a trust table.
    pub untrusted_root: Ca,
    pub server: Identity,
    /// Holds the PEM files; removed on drop.
    pub dir: TempDir,
}

impl Pki {
    /// Makes a fresh PKI and writes `root.pem`, `server.pem` and `server.key` into [`Pki::dir`].
    pub fn new() -> Pki {
        let root = Ca::root("certgate Test Root CA");
        let intermediate = root.intermediate("certgate Test Intermediate CA");
        let untrusted_root = Ca::root("Untrusted Root CA");

        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = rcgen_dn(&[("CN", "localhost"), ("O", "certgate tests")]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now() - Duration::days(1);
        params.not_after = now() + Duration::days(365);
        let server = issue(&params, &root, Vec::new(), "CN=localhost,O=certgate tests");

        let pki = Pki {
            root,
            intermediate,
            untrusted_root,
            server,
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("root.pem"), &pki.root.pem).unwrap();
        pki.server.write(pki.dir.path(), "server");
        pki
    }

    /// A path inside the PKI's tempdir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues a client certificate as `spec` says.
    pub fn client(&self, spec: &ClientSpec) -> Identity {
        let pairs: Vec<(&str, &str)> = spec
            .dn
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_dn(&pairs);
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.client_auth_eku {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        if spec.padding > 0 {
            // An OCTET STRING of zeros under a private OID (1.3.6.1.4.1.55555.1).
            let mut content = vec![0x04, 0x83];
            content.extend_from_slice(&(spec.padding as u32).to_be_bytes()[1..]);
            content.resize(content.len() + spec.padding, 0);
            params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55555, 1],
                content,
            )];
        }
        if !spec.crl_urls.is_empty() {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: spec.crl_urls.clone(),
            }];
        }
        if let Some(uri) = &spec.ocsp_url {
            params.custom_extensions.push(aia_ocsp(uri));
        }
        let (ca, intermediates) = match spec.issued_by {
            IssuedBy::Root => (&self.root, Vec::new()),
            IssuedBy::Intermediate => (&self.intermediate, vec![self.intermediate.der.clone()]),
            IssuedBy::Untrusted => (&self.untrusted_root, Vec::new()),
        };
        issue(&params, ca, intermediates, &canonical_dn(&pairs))
    }

    /// Issues a client certificate as `spec` says, but by `ca` (`spec.issued_by` is
    /// ignored); `intermediates` are the CAs the client presents after the leaf.
    pub fn client_from(&self, ca: &Ca, intermediates: &[&Ca], spec: &ClientSpec) -> Identity {
        let pairs: Vec<(&str, &str)> = spec
            .dn
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_dn(&pairs);
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.client_auth_eku {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let mut id = issue(&params, ca, Vec::new(), &canonical_dn(&pairs));
        for intermediate in intermediates {
            id.chain_pem.push_str(&intermediate.pem);
            id.intermediates.push(intermediate.der.clone());
        }
        id
    }

    /// `CN=<cn>,O=Example Corp,C=US` from the root, valid now, EKU clientAuth.
    pub fn client_cn(&self, cn: &str) -> Identity {
        self.client(&ClientSpec::new(cn))
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn issue(
    params: &CertificateParams,
    ca: &Ca,
    intermediates: Vec<CertificateDer<'static>>,
    dn: &str,
) -> Identity {
    let mut params = params.clone();
    let (serial, serial_hex) = next_serial();
    params.serial_number = Some(serial);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let der = cert.der().clone();
    let pem = cert.pem();
    let mut chain_pem = pem.clone();
    for intermediate in &intermediates {
        assert_eq!(
            intermediate, &ca.der,
            "the helper chains one intermediate only"
        );
        chain_pem.push_str(&ca.pem);
    }
    Identity {
        fingerprint: fingerprint(&der),
        der,
        pem,
        intermediates,
        chain_pem,
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
        dn: dn.to_string(),
        issuer_dn: ca.dn.clone(),
        serial_hex,
        not_after: params.not_after,
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// An API with no override.
pub fn api(id: i64, base_path: &str, upstream: SocketAddr) -> Api {
    Api {
        id,
        name: format!("api-{id}"),
        base_path: base_path.to_string(),
        upstream: format!("http://{upstream}"),
        override_: None,
    }
}

/// An API that overrides `required` and/or `trusted_dns`.
pub fn api_with_override(
    id: i64,
    base_path: &str,
    upstream: SocketAddr,
    required: Option<bool>,
    trusted_dns: Option<Vec<&str>>,
) -> Api {
    Api {
        override_: Some(ApiOverride {
            required,
            trusted_dns: trusted_dns.map(|dns| dns.into_iter().map(String::from).collect()),
        }),
        ..api(id, base_path, upstream)
    }
}

/// Header mode, one API at `/` to `upstream`, `required`, the given header name and trusted
/// proxies, format `auto`, empty trust table.
pub fn header_config(
    upstream: SocketAddr,
    header_name: &str,
    trusted_proxies: &[&str],
    required: bool,
) -> GatewayConfig {
    GatewayConfig {
        generation: 0,
        ssl_enabled: false,
        client_cert_auth: ClientCertAuthSettings {
            mode: CertAuthMode::Header,
            required,
            header_name: Some(header_name.to_string()),
            header_format: HeaderFormat::Auto,
            trusted_proxies: trusted_proxies
                .iter()
                .map(|cidr| cidr.parse().unwrap())
                .collect(),
            ..ClientCertAuthSettings::default()
        },
        trusted_certificates: Vec::new(),
        apis: vec![api(1, "/", upstream)],
    }
}

/// mtls mode on an SSL listener, one API at `/` to `upstream`, the given trust table.
pub fn mtls_config(
    upstream: SocketAddr,
    trusted: Vec<TrustedCertificate>,
    required: bool,
    validation_failure: ValidationFailure,
) -> GatewayConfig {
    GatewayConfig {
        generation: 0,
        ssl_enabled: true,
        client_cert_auth: ClientCertAuthSettings {
            mode: CertAuthMode::Mtls,
            required,
            validation_failure,
            ..ClientCertAuthSettings::default()
        },
        trusted_certificates: trusted,
        apis: vec![api(1, "/", upstream)],
    }
}

/// [`mtls_config`] trusting the test root alone.
pub fn root_mtls_config(
    pki: &Pki,
    upstream: SocketAddr,
    required: bool,
    validation_failure: ValidationFailure,
) -> GatewayConfig {
    mtls_config(
        upstream,
        vec![pki.root.trusted(1)],
        required,
        validation_failure,
    )
}

/// Applies `config` to `runtime` as a new generation (the trust store is `ok`).
pub fn apply(runtime: &Runtime, config: &GatewayConfig) {
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    let mut config = config.clone();
    config.generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    runtime.apply(&config, true).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// Starts the echo upstream on `127.0.0.1:0` for the rest of the test (its task ends with the
/// test's runtime).
pub async fn spawn_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(certgate_proxy::echo::serve_echo(
        listener,
        std::future::pending::<()>(),
    ));
    addr
}

/// Stops a gateway started by [`spawn_gateway`]. Dropping it also stops the gateway.
pub struct GatewayHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl GatewayHandle {
    /// Signals shutdown and waits for `serve` to return; panics if it returned an error.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a certgate proxy listener on `127.0.0.1:0` with `config` applied.
pub async fn spawn_gateway(
    settings: ProxySettings,
    config: &GatewayConfig,
) -> (SocketAddr, Arc<Runtime>, GatewayHandle) {
    let runtime = Runtime::new();
    apply(&runtime, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = serve_on(listener, settings, runtime.clone());
    (addr, runtime, handle)
}

/// Serves `runtime` on `listener` until the handle is dropped or shut down.
pub fn serve_on(
    listener: TcpListener,
    settings: ProxySettings,
    runtime: Arc<Runtime>,
) -> GatewayHandle {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(certgate_proxy::serve(
        listener,
        settings,
        runtime,
        async move {
            // A dropped sender means stop too.
            let _ = stopped.await;
        },
    ));
    GatewayHandle {
        stop: Some(stop),
        task: Some(task),
    }
}

/// TLS listener settings with the PKI's server certificate.
pub fn tls_settings(pki: &Pki) -> ProxySettings {
    ProxySettings::tls(pki.server.chain(), pki.server.key_der())
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A response as a client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header the echo upstream received (`name` lowercase), from the echo's JSON body.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .get(name)
            .and_then(|value| value.as_str())
            .map(String::from)
    }

    /// Panics unless this is the echo's 200.
    pub fn assert_echo(&self) -> serde_json::Value {
        assert_eq!(
            self.status,
            200,
            "expected the echo's 200, got {} {:?}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        assert!(json["headers"].is_object(), "not the echo's body: {json}");
        json
    }

    /// Panics unless the echo received exactly `identity`'s SPEC §7 headers.
    pub fn assert_identity(&self, identity: &Identity) {
        let json = self.assert_echo();
        let headers = &json["headers"];
        assert_eq!(
            headers["x-client-cert-subject"],
            identity.dn.as_str(),
            "{json}"
        );
        assert_eq!(
            headers["x-client-cert-issuer"],
            identity.issuer_dn.as_str(),
            "{json}"
        );
        assert_eq!(
            headers["x-client-cert-serial"],
            identity.serial_hex.as_str(),
            "{json}"
        );
        assert_eq!(
            headers["x-client-cert-fingerprint"],
            identity.fingerprint.as_str(),
            "{json}"
        );
        assert_eq!(
            headers["x-client-cert-not-after"],
            identity.not_after_rfc3339().as_str(),
            "{json}"
        );
    }

    /// Panics unless the echo received no `X-Client-Cert-*` header at all.
    pub fn assert_no_identity(&self) {
        let json = self.assert_echo();
        let leaked: Vec<&String> = json["headers"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|name| name.starts_with("x-client-cert-"))
            .collect();
        assert!(
            leaked.is_empty(),
            "identity headers reached upstream: {json}"
        );
    }
}

/// Asserts a data-plane error answer of SPEC §3: status, `Content-Type: application/json`
/// and the exact `{"code", "message"}` body.
pub fn assert_denied(reply: &Reply, status: u16) {
    let message = match status {
        401 => MSG_401,
        403 => MSG_403,
        404 => MSG_404,
        other => panic!("no SPEC message for {other}"),
    };
    assert_eq!(
        reply.status,
        status,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"code": status, "message": message})
    );
}

/// Any failure of a client helper (connect, TLS, HTTP).
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// Sends one request over an established stream with hyper's HTTP/1.1 client.
async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Reply, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// A GET request for `path` with `Host: localhost` and the given extra headers.
pub fn get_request(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::get(path).header(http::header::HOST, "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

/// One plain HTTP/1.1 request on a new connection.
pub async fn plain_request(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Reply, ClientError> {
    let stream = TcpStream::connect(addr).await?;
    exchange(stream, request).await
}

/// One plain HTTP/1.1 GET on a new connection; panics on a transport error.
pub async fn plain_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    plain_request(addr, get_request(path, headers))
        .await
        .unwrap()
}

/// Writes `request` as is on a new connection and reads until the server closes it (send
/// `Connection: close`). For what hyper's client will not send (header name case, folding).
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    // A reset after the answer is fine: what was read is the answer.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// A rustls client that trusts the test root (only) and presents `identity`, or no
/// certificate.
/// A rustls client config trusting the test root, presenting `identity` (its chain) or
/// nothing, with the given ALPN list and an in-memory session cache (resumption on).
pub fn client_config(
    pki: &Pki,
    identity: Option<&Identity>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain(), id.key_der())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::in_memory_sessions(64);
    Arc::new(config)
}

/// An HTTP/2 connection over TLS (SNI `localhost`) to `addr` with `config`: the request
/// sender and the task driving the connection (it ends when the server closes).
pub async fn h2_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    (sender, tokio::spawn(conn))
}

#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
}

impl TlsClient {
    /// A client presenting `identity` (its chain), or nothing.
    pub fn new(pki: &Pki, identity: Option<&Identity>) -> TlsClient {
        TlsClient {
            connector: tokio_rustls::TlsConnector::from(client_config(pki, identity, &[])),
        }
    }

    /// One HTTPS request on a new connection to `addr`, SNI `localhost`. A handshake the
    /// server refuses is an `Err` (with TLS 1.3 the refusal of a client certificate may only
    /// show when the request is sent or the answer read).
    pub async fn request(
        &self,
        addr: SocketAddr,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        let tls = self
            .connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        exchange(tls, request).await
    }

    /// One HTTPS GET on a new connection.
    pub async fn get(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        self.request(addr, get_request(path, headers)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Encodings the load balancers use (SPEC §6)
// ---------------------------------------------------------------------------------------------

/// Percent-encodes every byte except ASCII alphanumerics and the bytes in `keep`.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// nginx `$ssl_client_escaped_cert`: the PEM URL-encoded as a URI component (unreserved
/// characters kept; `+`, `/`, `=`, space and newline escaped).
pub fn nginx_escaped(pem: &str) -> String {
    percent_encode(pem, b"-._~")
}

/// AWS ALB `X-Amzn-Mtls-Clientcert`: URL-encoded PEM with `+`, `=` and `/` kept as they are.
pub fn alb_escaped(pem: &str) -> String {
    percent_encode(pem, b"-._~+=/")
}

/// base64 to the URL-safe alphabet.
pub fn b64_url_safe(b64: &str) -> String {
    b64.replace('+', "-").replace('/', "_")
}

/// Runs an external program's existence check; true when `path` is an executable file.
pub fn have_program(path: &str) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false)
}

/// Finds a program in `PATH` (or returns None).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
