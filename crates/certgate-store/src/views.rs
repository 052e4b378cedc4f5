//! The JSON shapes of the admin API (SPEC §8): request bodies the store accepts and the
//! derived views it answers with. Shared by `certgate-admin` (server) and the CLI (client).
//!
//! Timestamps serialize as RFC 3339 in UTC with a `Z` and no fractional seconds (the store
//! keeps whole seconds).

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::model::{
    ApiOverride, CertAuthMode, ClientCertAuthSettings, ForwardFormat, RevocationFailure,
    RevocationSource, ValidationFailure,
};
use crate::truststore::TrustStoreInfo;
use certgate_pki::HeaderFormat;

/// One version of a certificate component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateVersion {
    /// 1, 2, … in upload order.
    pub version: i64,
    /// Canonical subject DN (SPEC §4).
    pub subject: String,
    /// Canonical issuer DN.
    pub issuer: String,
    /// Lowercase hex without separators.
    pub serial: String,
    /// `sha256:` + lowercase hex of the DER.
    pub fingerprint_sha256: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// When this version was uploaded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The PEM as uploaded; only in `GET /api/v1/certificates/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

/// A certificate component with its versions (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Component {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// False once deleted (deactivated).
    pub active: bool,
    /// The newest version number.
    pub latest_version: i64,
    /// Every version, oldest first.
    pub versions: Vec<CertificateVersion>,
}

/// `expiry_status` of a trust-table row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryStatus {
    /// More than 90 days left.
    Ok,
    /// Expires within 90 days.
    ExpiringSoon,
    /// notAfter has passed.
    Expired,
}

impl From<certgate_pki::ExpiryStatus> for ExpiryStatus {
    fn from(s: certgate_pki::ExpiryStatus) -> Self {
        match s {
            certgate_pki::ExpiryStatus::Ok => ExpiryStatus::Ok,
            certgate_pki::ExpiryStatus::ExpiringSoon => ExpiryStatus::ExpiringSoon,
            certgate_pki::ExpiryStatus::Expired => ExpiryStatus::Expired,
        }
    }
}

/// One row of the gateway's trust table, as `GET /api/v1/gateway/trusted-certificates` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustTableRow {
    /// The component's id.
    pub certificate_id: i64,
    /// The component's name.
    pub name: String,
    /// The pinned version.
    pub version: i64,
    /// The component's newest version.
    pub latest_version: i64,
    /// `latest_version > version`.
    pub update_available: bool,
    /// Canonical subject DN of the pinned version.
    pub subject: String,
    /// `sha256:` + hex of the pinned version's DER.
    pub fingerprint_sha256: String,
    /// notBefore of the pinned version.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_on: OffsetDateTime,
    /// notAfter of the pinned version.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_on: OffsetDateTime,
    /// Whole days from now to notAfter (negative once expired).
    pub days_to_expiry: i64,
    /// `ok`, `expiring_soon` (within 90 days) or `expired`.
    pub expiry_status: ExpiryStatus,
}

/// A warning of `GET /api/v1/gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Warning {
    /// One of the codes of SPEC §8 (`mtls_without_trusted_certificates`, …).
    pub code: String,
    /// A sentence for the operator.
    pub message: String,
}

/// `GET /api/v1/gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayView {
    /// Whether the proxy listener serves TLS (mirrored from the node's config file).
    pub ssl_enabled: bool,
    /// The store's configuration generation (SPEC §8).
    pub generation: u64,
    /// The SPEC §2 settings.
    pub client_cert_auth: ClientCertAuthSettings,
    /// The trust table.
    pub trusted_certificates: Vec<TrustTableRow>,
    /// The node's on-disk trust store.
    pub truststore: TrustStoreInfo,
    /// Things the operator should know about this configuration.
    pub warnings: Vec<Warning>,
}

/// Body of `PUT /api/v1/gateway/client-cert-auth`: every field optional, an absent field
/// keeps its current value. `header_name: null` clears the header name; `null` for any
/// other field is refused as a wrong type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertAuthPatch {
    /// `none`, `mtls` or `header`.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<CertAuthMode>,
    /// Certificate required on every request.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub required: Option<bool>,
    /// `Some(None)` (JSON `null`) clears it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub header_name: Option<Option<String>>,
    /// Header encoding.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub header_format: Option<HeaderFormat>,
    /// CIDRs (a bare address means that one host).
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// DN patterns, at most 1000.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub trusted_dns: Option<Vec<String>>,
    /// `handshake` or `http`.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub validation_failure: Option<ValidationFailure>,
    /// PEM CRLs (replaces the list).
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub crls: Option<Vec<String>>,
    /// Add `X-Client-Cert-*` headers upstream.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_identity: Option<bool>,
    /// List CA names in the TLS CertificateRequest.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub send_ca_names: Option<bool>,
    /// SPEC §16: identity formats forwarded upstream (replaces the list).
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_formats: Option<Vec<ForwardFormat>>,
    /// SPEC §16: 421 when Host names another host than the SNI (mtls).
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub sni_host_check: Option<bool>,
    /// SPEC §16: `strict` or `soft`.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation_failure: Option<RevocationFailure>,
    /// SPEC §16: `crl`, `crl_dp` or `ocsp`.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation: Option<RevocationSource>,
    /// SPEC §16: host names or CIDRs fetches may go to (replaces the list).
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation_fetch_hosts: Option<Vec<String>>,
    /// SPEC §16: fetch timeout in milliseconds.
    #[serde(
        default,
        deserialize_with = "non_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation_fetch_timeout_ms: Option<u64>,
}

/// Body of `POST /api/v1/apis` and `PUT /api/v1/apis/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiBody {
    /// Unique, non-empty.
    pub name: String,
    /// `/` or `/seg(/seg)*`, unique.
    pub base_path: String,
    /// Absolute `http://` or `https://` URL.
    pub upstream: String,
}

/// Body of `PUT /api/v1/apis/{id}/client-cert-auth`: absent or `null` inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiOverrideBody {
    /// Overrides the gateway's `required`.
    #[serde(default)]
    pub required: Option<bool>,
    /// Replaces the gateway's list; `[]` = no DN restriction for this API.
    #[serde(default)]
    pub trusted_dns: Option<Vec<String>>,
}

impl From<ApiOverrideBody> for ApiOverride {
    fn from(b: ApiOverrideBody) -> Self {
        ApiOverride {
            required: b.required,
            trusted_dns: b.trusted_dns,
        }
    }
}

/// The settings an API actually runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveCertAuth {
    /// Always the gateway's mode.
    pub mode: CertAuthMode,
    /// The override's `required`, else the gateway's.
    pub required: bool,
    /// The override's list, else the gateway's.
    pub trusted_dns: Vec<String>,
}

/// `GET /api/v1/apis/{id}/client-cert-auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiCertAuthView {
    /// The API's override, `null` when it inherits everything.
    #[serde(rename = "override")]
    pub override_: Option<ApiOverride>,
    /// What applies.
    pub effective: EffectiveCertAuth,
}

/// Body of `POST /api/v1/gateway/trusted-certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustBody {
    /// The component to trust.
    pub certificate_id: i64,
    /// The version to pin; absent or null: the latest.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Body of `POST /api/v1/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComponentBody {
    /// Unique, non-empty.
    pub name: String,
    /// One PEM certificate.
    pub pem: String,
}

/// Body of `POST /api/v1/certificates/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersionBody {
    /// One PEM certificate.
    pub pem: String,
}

/// A present field must not be `null`.
fn non_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A present field may be `null` (`Some(None)`); an absent one is `None` via `default`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What a node writes about itself into the nodes table (SPEC §12); renewed every 2 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node id.
    pub id: String,
    /// The node name.
    pub name: String,
    /// The admin listener, `host:port`.
    pub admin_address: String,
    /// The proxy listener, `host:port`.
    pub proxy_address: String,
    /// The certgate version.
    pub version: String,
    /// The generation of the configuration the node applied last.
    pub config_generation: u64,
    /// Its trust store status (`ok`, `missing`, …).
    pub truststore_status: String,
    /// Its trust store bundle's SHA-256 (`null` unless ok).
    pub truststore_sha256: Option<String>,
}

/// A node's state by the database clock: `up` (seen within 10 s), `stale` (within 60 s)
/// or `down` (older, or stopped with SIGTERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Seen within 10 s.
    Up,
    /// Seen within 60 s.
    Stale,
    /// Not seen for 60 s, or stopped.
    Down,
}

impl NodeState {
    /// The state of a node last seen `age_secs` ago (`stopped`: marked down at exit).
    pub fn from_age(age_secs: i64, stopped: bool) -> NodeState {
        if stopped {
            NodeState::Down
        } else if age_secs <= 10 {
            NodeState::Up
        } else if age_secs <= 60 {
            NodeState::Stale
        } else {
            NodeState::Down
        }
    }
}

/// `truststore` of a [`NodeView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeTrustStore {
    /// `ok`, `missing`, `corrupted` or `io_error`.
    pub status: String,
    /// The bundle's SHA-256, `null` unless ok.
    pub sha256: Option<String>,
}

/// One element of `GET /api/v1/cluster/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeView {
    /// The node id.
    pub id: String,
    /// The node name.
    pub name: String,
    /// `host:port` of its admin listener.
    pub admin_address: String,
    /// `host:port` of its proxy listener.
    pub proxy_address: String,
    /// The certgate version it runs.
    pub version: String,
    /// When it started (database clock).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it last renewed its record (database clock).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// `up`, `stale` or `down`.
    pub state: NodeState,
    /// The generation it applied last.
    pub config_generation: u64,
    /// Its trust store.
    pub truststore: NodeTrustStore,
}
