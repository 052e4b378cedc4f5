//! The configuration model: plain data that the store persists and every node reads.
//!
//! These types are the contract between the control plane (admin API, store) and the
//! data plane (`certgate-proxy` builds its runtime snapshot from a [`GatewayConfig`]).
//! Serde names are the JSON field names of the admin API (SPEC §2, §8).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use certgate_pki::header::HeaderFormat;

/// How client certificates reach the gateway (SPEC §2 `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertAuthMode {
    /// No certificate authentication (the initial default).
    #[default]
    None,
    /// The TLS handshake requests the client certificate.
    Mtls,
    /// A TLS-terminating load balancer forwards the certificate in a request header.
    Header,
}

/// What a failed client chain does in mtls mode (SPEC §2 `validation_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ValidationFailure {
    /// Fail the TLS handshake with an alert.
    #[default]
    Handshake,
    /// Complete the handshake; every request on the connection gets 403.
    Http,
}

/// One identity format forwarded upstream (SPEC §16 `forward_formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardFormat {
    /// The `X-Client-Cert-*` headers of SPEC §7.
    XClientCert,
    /// Envoy's `x-forwarded-client-cert`, one element.
    Xfcc,
    /// RFC 9440 `Client-Cert` (and `Client-Cert-Chain`).
    Rfc9440,
}

/// What a certificate whose revocation status cannot be learned gets (SPEC §16
/// `revocation_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RevocationFailure {
    /// Refused with reason `revocation_unknown`.
    #[default]
    Strict,
    /// Passes, counted in `certgate_revocation_soft_pass_total`.
    Soft,
}

/// Where revocation status comes from (SPEC §16 `revocation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RevocationSource {
    /// The configured `crls` only.
    #[default]
    Crl,
    /// Also the CRLs at the certificates' CRL distribution points.
    CrlDp,
    /// Also the OCSP responders named in the certificates' AIA.
    Ocsp,
}

/// The default of `revocation_fetch_timeout_ms`.
pub const DEFAULT_REVOCATION_FETCH_TIMEOUT_MS: u64 = 3000;

fn default_fetch_timeout_ms() -> u64 {
    DEFAULT_REVOCATION_FETCH_TIMEOUT_MS
}

/// The default of `forward_formats`: today's SPEC §7 headers.
pub fn default_forward_formats() -> Vec<ForwardFormat> {
    vec![ForwardFormat::XClientCert]
}

fn default_true() -> bool {
    true
}

/// The gateway-level client certificate auth settings (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertAuthSettings {
    pub mode: CertAuthMode,
    pub required: bool,
    /// Header mode only; the configured spelling is kept.
    pub header_name: Option<String>,
    pub header_format: HeaderFormat,
    /// Peers whose certificate header is honoured; empty = any peer.
    pub trusted_proxies: Vec<IpNet>,
    /// DN patterns (SPEC §4), at most 1000.
    pub trusted_dns: Vec<String>,
    pub validation_failure: ValidationFailure,
    /// PEM CRLs.
    pub crls: Vec<String>,
    pub forward_identity: bool,
    pub send_ca_names: bool,
    /// SPEC §16: the identity formats forwarded (sorted, no duplicates).
    #[serde(default = "default_forward_formats")]
    pub forward_formats: Vec<ForwardFormat>,
    /// SPEC §16: mtls, 421 when Host/:authority names another host than the SNI.
    #[serde(default = "default_true")]
    pub sni_host_check: bool,
    /// SPEC §16: strict or soft when the revocation status cannot be learned.
    #[serde(default)]
    pub revocation_failure: RevocationFailure,
    /// SPEC §16: `crl`, `crl_dp` or `ocsp`.
    #[serde(default)]
    pub revocation: RevocationSource,
    /// SPEC §16: host names or CIDRs revocation fetches may go to; empty = nowhere.
    #[serde(default)]
    pub revocation_fetch_hosts: Vec<String>,
    /// SPEC §16: the longest a fetch (and a handshake waiting on one) takes.
    #[serde(default = "default_fetch_timeout_ms")]
    pub revocation_fetch_timeout_ms: u64,
}

impl Default for ClientCertAuthSettings {
    fn default() -> Self {
        Self {
            mode: CertAuthMode::None,
            required: false,
            header_name: None,
            header_format: HeaderFormat::Auto,
            trusted_proxies: Vec::new(),
            trusted_dns: Vec::new(),
            validation_failure: ValidationFailure::Handshake,
            crls: Vec::new(),
            forward_identity: true,
            send_ca_names: false,
            forward_formats: default_forward_formats(),
            sni_host_check: true,
            revocation_failure: RevocationFailure::Strict,
            revocation: RevocationSource::Crl,
            revocation_fetch_hosts: Vec::new(),
            revocation_fetch_timeout_ms: DEFAULT_REVOCATION_FETCH_TIMEOUT_MS,
        }
    }
}

/// One entry of the trust table: a certificate component pinned at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedCertificate {
    pub certificate_id: i64,
    pub name: String,
    /// The pinned version.
    pub version: i64,
    /// The component's newest version (for `update_available`).
    pub latest_version: i64,
    /// The pinned version's PEM, verbatim.
    pub pem: String,
    pub subject: String,
    pub fingerprint_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A per-API override of the gateway's settings (SPEC §3 step 2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiOverride {
    /// `None` inherits the gateway's `required`.
    pub required: Option<bool>,
    /// `None` inherits; `Some(vec![])` means no DN restriction for this API.
    pub trusted_dns: Option<Vec<String>>,
}

/// A deployed API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    pub id: i64,
    pub name: String,
    /// `/` or a path starting with `/` without a trailing `/`.
    pub base_path: String,
    /// An `http://` or `https://` URL.
    pub upstream: String,
    /// `None`: inherits everything from the gateway.
    #[serde(rename = "override")]
    pub override_: Option<ApiOverride>,
}

/// Everything a node needs to serve traffic, read in one consistent transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GatewayConfig {
    /// Bumped by every committed change.
    pub generation: u64,
    pub ssl_enabled: bool,
    pub client_cert_auth: ClientCertAuthSettings,
    pub trusted_certificates: Vec<TrustedCertificate>,
    pub apis: Vec<Api>,
}
