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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ValidationFailure {
    /// Fail the TLS handshake with an alert.
    #[default]
    Handshake,
    /// Complete the handshake; every request on the connection gets 403.
    Http,
}

/// One identity format forwarded upstream (SPEC §16 `forward_formats`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RevocationFailure {
    /// Refused with reason `revocation_unknown`.
    #[default]
    Strict,
    /// Passes, counted in `certgate_revocation_soft_pass_total`.
    Soft,
}

/// Where revocation status comes from (SPEC §16 `revocation`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientCertAuthSettings {
    /// `none`, `mtls` or `header`.
    pub mode: CertAuthMode,
    /// Whether a request without a valid certificate is refused (401/403).
    pub required: bool,
    /// Header mode only; the configured spelling is kept.
    pub header_name: Option<String>,
    /// How the certificate header is encoded (SPEC §6).
    #[schema(value_type = String)]
    pub header_format: HeaderFormat,
    /// Peers whose certificate header is honoured; empty = any peer.
    #[schema(value_type = Vec<String>)]
    pub trusted_proxies: Vec<IpNet>,
    /// DN patterns (SPEC §4), at most 1000.
    pub trusted_dns: Vec<String>,
    /// Whether an mtls chain failure ends the handshake or answers 403.
    pub validation_failure: ValidationFailure,
    /// PEM CRLs.
    pub crls: Vec<String>,
    /// Whether the verified identity is forwarded upstream (SPEC §7).
    pub forward_identity: bool,
    /// Whether the TLS CertificateRequest lists the trusted CAs' names.
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

/// An API's effective settings (SPEC §3 step 2), borrowed from the gateway's settings and
/// the API's override. The one place the inheritance rule is written: the admin views, the
/// data plane's routes and explain all take it from [`ClientCertAuthSettings::effective`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective<'a> {
    /// Always the gateway's mode (an override cannot change it).
    pub mode: CertAuthMode,
    /// The override's `required`, else the gateway's.
    pub required: bool,
    /// The override's list (possibly empty: no DN restriction), else the gateway's.
    pub trusted_dns: &'a [String],
}

impl ClientCertAuthSettings {
    /// The effective settings of an API with override `ov` (`None`: inherits everything).
    pub fn effective<'a>(&'a self, ov: Option<&'a ApiOverride>) -> Effective<'a> {
        Effective {
            mode: self.mode,
            required: ov.and_then(|o| o.required).unwrap_or(self.required),
            trusted_dns: ov
                .and_then(|o| o.trusted_dns.as_deref())
                .unwrap_or(&self.trusted_dns),
        }
    }
}

/// One entry of the trust table: a certificate component pinned at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedCertificate {
    /// The certificate component's id.
    pub certificate_id: i64,
    /// The component's name.
    pub name: String,
    /// The pinned version.
    pub version: i64,
    /// The component's newest version (for `update_available`).
    pub latest_version: i64,
    /// The pinned version's PEM, verbatim.
    pub pem: String,
    /// The certificate's subject, canonical DN.
    pub subject: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A per-API override of the gateway's settings (SPEC §3 step 2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiOverride {
    /// `None` inherits the gateway's `required`.
    pub required: Option<bool>,
    /// `None` inherits; `Some(vec![])` means no DN restriction for this API.
    pub trusted_dns: Option<Vec<String>>,
}

/// A deployed API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Api {
    /// The API's id.
    pub id: i64,
    /// The API's unique name.
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
    /// Whether TLS is on (trust needs it).
    pub ssl_enabled: bool,
    /// The gateway's settings (SPEC §2, §16).
    pub client_cert_auth: ClientCertAuthSettings,
    /// The trust table.
    pub trusted_certificates: Vec<TrustedCertificate>,
    /// The deployed APIs.
    pub apis: Vec<Api>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_settings_inherit_field_by_field() {
        let gw = ClientCertAuthSettings {
            mode: CertAuthMode::Mtls,
            required: true,
            trusted_dns: vec!["CN=gw".into()],
            ..Default::default()
        };
        let none = gw.effective(None);
        assert_eq!(
            (none.mode, none.required, none.trusted_dns),
            (CertAuthMode::Mtls, true, &["CN=gw".to_string()][..])
        );
        let only_required = ApiOverride {
            required: Some(false),
            trusted_dns: None,
        };
        let e = gw.effective(Some(&only_required));
        assert_eq!((e.required, e.trusted_dns), (false, &gw.trusted_dns[..]));
        // An empty override list means no DN restriction, not "inherit".
        let open = ApiOverride {
            required: None,
            trusted_dns: Some(Vec::new()),
        };
        let e = gw.effective(Some(&open));
        assert_eq!((e.required, e.trusted_dns.len()), (true, 0));
    }
}
