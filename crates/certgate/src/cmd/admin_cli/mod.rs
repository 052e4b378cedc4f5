//! The admin API from the shell: `certgate cert|trust|dn|api|gateway|truststore …` (SPEC §8, §9).
//!
//! This module owns the command-line client of the admin REST API: the clap definitions of the
//! six subcommand groups, the HTTP client ([`client`]), the human-readable rendering
//! ([`render`]) and one handler module per group. It holds no business rule: every check is the
//! admin API's, and its error answers are printed as they come
//! (`error: <message> (<code>, HTTP <status>)` on stderr, exit 1).
//!
//! Output: human tables by default; `--json` prints the API's JSON body as it was received.
//! Exceptions: `api show --json` prints the API object with the
//! `GET /apis/{id}/client-cert-auth` answer added under `client_cert_auth`; `dn list --json`
//! prints the `trusted_dns` array; the DELETE commands (`cert delete`, `trust remove`,
//! `api delete`, `api inherit`) print nothing with `--json` (the API answers 204, no body).
//!
//! Exit status: 0 on success, 1 when the admin API refused the request, could not be reached
//! or answered something unexpected (and `dn test` with no match), 2 on a usage or local input
//! error (no token, unreadable file, invalid `--admin` URL) — nothing is sent then.

mod api;
mod audit;
mod cert;
mod client;
pub mod clients;
mod cluster;
pub mod config;
mod dn;
pub mod explain;
mod gateway;
mod pem;
mod render;
mod trust;

use std::process::ExitCode;

pub use audit::AuditArgs;
pub use client::{AdminClient, CliError};
pub use cluster::ClusterCmd;

/// The admin API's address when neither `--admin` nor `CERTGATE_ADMIN_URL` gives one.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9090";

/// `--admin`, `--token`, `--json` written before the subcommand (`certgate --json api list`).
///
/// The environment is read by [`ClientOpts::resolve`], not by clap, so that a flag given at
/// either level beats the environment and `--help` shows no `[env: …=]` for an unset variable.
#[derive(Debug, Default, clap::Args)]
pub struct ClientOpts {
    /// Admin API base URL [default: env CERTGATE_ADMIN_URL, else http://127.0.0.1:9090]
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// Admin bearer token [default: env CERTGATE_ADMIN_TOKEN]
    #[arg(long)]
    pub token: Option<String>,
    /// Print the admin API's JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The same options written after the subcommand group (`certgate api list --json`); they
/// appear in the help of the admin subcommands only, not in `serve`'s or `quickstart`'s.
#[derive(Debug, Default, clap::Args)]
pub struct GroupOpts {
    /// Admin API base URL [default: env CERTGATE_ADMIN_URL, else http://127.0.0.1:9090]
    #[arg(long, global = true, value_name = "URL")]
    pub admin: Option<String>,
    /// Admin bearer token [default: env CERTGATE_ADMIN_TOKEN]
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Print the admin API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The options in force for one admin command.
#[derive(Debug)]
pub struct Resolved {
    /// Admin API base URL.
    pub admin: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// JSON output.
    pub json: bool,
}

impl ClientOpts {
    /// True when any of the options was given (they only apply to admin subcommands).
    pub fn any(&self) -> bool {
        self.admin.is_some() || self.token.is_some() || self.json
    }

    /// Merges the two levels: a flag after the group beats one before it, either beats the
    /// environment, and the URL falls back to [`DEFAULT_ADMIN_URL`].
    pub fn resolve(&self, group: &GroupOpts) -> Resolved {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Resolved {
            admin: group
                .admin
                .clone()
                .or_else(|| self.admin.clone())
                .or_else(|| env("CERTGATE_ADMIN_URL"))
                .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned()),
            token: group
                .token
                .clone()
                .or_else(|| self.token.clone())
                .or_else(|| env("CERTGATE_ADMIN_TOKEN")),
            json: group.json || self.json,
        }
    }
}

/// `certgate cert …`: certificate components (SPEC §8 `/api/v1/certificates`).
#[derive(Debug, clap::Subcommand)]
pub enum CertCmd {
    /// Import a certificate as a new component (version 1).
    Add {
        /// Unique component name.
        #[arg(long)]
        name: String,
        /// Certificate file, PEM (or DER, converted to PEM).
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// List certificate components.
    List {
        /// Only active components whose latest version is unexpired (what can be trusted).
        #[arg(long)]
        lookup: bool,
    },
    /// Show one component with all its versions.
    Show {
        /// Component id.
        id: i64,
        /// Print only the PEM of the latest version (or of --version), e.g. to save it to a file.
        #[arg(long)]
        pem: bool,
        /// With --pem: the version whose PEM is printed.
        #[arg(long, requires = "pem")]
        version: Option<i64>,
    },
    /// Upload a new version of an existing component.
    NewVersion {
        /// Component id.
        id: i64,
        /// Certificate file, PEM (or DER, converted to PEM).
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Deactivate a component (refused while the trust table uses it).
    Delete {
        /// Component id.
        id: i64,
    },
}

/// `certgate trust …`: the gateway's trust table.
#[derive(Debug, clap::Subcommand)]
pub enum TrustCmd {
    /// Trust a certificate component, pinned at one version (SSL must be enabled).
    Add {
        /// Component id.
        cert_id: i64,
        /// Version to pin (default: the latest).
        #[arg(long)]
        version: Option<i64>,
    },
    /// List the trust table with versions, pending updates and expiry.
    List,
    /// Pin the latest version of a trusted component.
    Upgrade {
        /// Component id.
        cert_id: i64,
    },
    /// Remove a component from the trust table.
    Remove {
        /// Component id.
        cert_id: i64,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
}

/// `certgate dn …`: the gateway's trusted DN patterns (`trusted_dns`).
#[derive(Debug, clap::Subcommand)]
pub enum DnCmd {
    /// List the gateway's trusted DN patterns, one a line.
    List,
    /// Append patterns (ones already in the list are skipped).
    Add {
        /// DN patterns (SPEC §4), e.g. 'CN=*,O=Acme' or '**,O=Acme,**'.
        #[arg(required = true)]
        patterns: Vec<String>,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove patterns (each must be in the list, written exactly as listed).
    Remove {
        /// DN patterns, as `dn list` prints them.
        #[arg(required = true)]
        patterns: Vec<String>,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
    /// Replace the whole list.
    Set {
        /// DN patterns, in order.
        #[arg(required = true)]
        patterns: Vec<String>,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
    /// Empty the list (no DN restriction).
    Clear {
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
    /// Test a DN or a certificate against patterns on the admin API (changes nothing).
    #[command(group(clap::ArgGroup::new("input").required(true).args(["dn", "cert"])))]
    Test {
        /// A DN string to test.
        #[arg(long)]
        dn: Option<String>,
        /// A certificate file (PEM or DER) whose subject is tested.
        #[arg(long)]
        cert: Option<std::path::PathBuf>,
        /// Patterns, tried in order.
        #[arg(required = true)]
        patterns: Vec<String>,
    },
}

/// `certgate api …`: deployed APIs and their client certificate overrides.
#[derive(Debug, clap::Subcommand)]
pub enum ApiCmd {
    /// Deploy an API.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Unique base path: `/` or e.g. `/orders/v1` (no trailing `/`).
        #[arg(long)]
        base_path: String,
        /// Upstream `http://` or `https://` URL.
        #[arg(long)]
        upstream: String,
    },
    /// List deployed APIs.
    List,
    /// Show one API with its override and effective client certificate settings.
    Show {
        /// API id.
        id: i64,
    },
    /// Delete an API.
    Delete {
        /// API id.
        id: i64,
    },
    /// Override `required` and/or `trusted_dns` for one API; fields not given keep their
    /// current override (give at least one option).
    Override {
        /// API id.
        id: i64,
        /// Require a client certificate on this API.
        #[arg(long, value_name = "true|false", conflicts_with = "inherit_required")]
        required: Option<bool>,
        /// A trusted DN pattern for this API (repeat for several; replaces the gateway's list).
        #[arg(long = "dn", value_name = "PATTERN", conflicts_with_all = ["no_dn_restriction", "inherit_dns"])]
        dn: Vec<String>,
        /// No DN restriction on this API (sends `trusted_dns: []`).
        #[arg(long, conflicts_with = "inherit_dns")]
        no_dn_restriction: bool,
        /// Drop the `required` override: inherit the gateway's.
        #[arg(long)]
        inherit_required: bool,
        /// Drop the `trusted_dns` override: inherit the gateway's list.
        #[arg(long)]
        inherit_dns: bool,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
    /// Drop the whole override: inherit every setting from the gateway.
    Inherit {
        /// API id.
        id: i64,
        /// Change nothing: show who would lose and who would gain access (SPEC §13).
        #[arg(long)]
        dry_run: bool,
    },
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// No certificate authentication.
    None,
    /// Mutual TLS.
    Mtls,
    /// Certificate in a request header.
    Header,
}

/// `--header-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HeaderFormatArg {
    /// Recognise every supported form.
    Auto,
    /// PEM.
    Pem,
    /// URL-encoded PEM.
    #[value(name = "url_encoded_pem", alias = "url-encoded-pem")]
    UrlEncodedPem,
    /// Base64 DER.
    #[value(name = "base64_der", alias = "base64-der")]
    Base64Der,
    /// Envoy x-forwarded-client-cert.
    Xfcc,
}

/// `--validation-failure` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidationFailureArg {
    /// Fail the TLS handshake.
    Handshake,
    /// Answer 403 to every request of the connection.
    Http,
}

/// `certgate gateway …`: gateway client certificate settings.
#[derive(Debug, clap::Subcommand)]
pub enum GatewayCmd {
    /// Show the settings, the trust table, the trust store status and warnings.
    Show,
    /// Change only the given settings (give at least one option); the others keep their value.
    Set(GatewaySetArgs),
}

/// Arguments of `gateway set`; every one optional, an absent one keeps the current value.
#[derive(Debug, Default, clap::Args)]
pub struct GatewaySetArgs {
    /// Certificate authentication mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Enforce a certificate on every API request.
    #[arg(long, value_name = "true|false")]
    pub required: Option<bool>,
    /// Header carrying the certificate (header mode).
    #[arg(long)]
    pub header_name: Option<String>,
    /// Encoding of the header value (header mode).
    #[arg(long, value_enum)]
    pub header_format: Option<HeaderFormatArg>,
    /// A peer CIDR whose certificate header is honoured (repeat for several; replaces the list).
    #[arg(long, value_name = "CIDR", conflicts_with = "no_trusted_proxies")]
    pub trusted_proxy: Vec<String>,
    /// Empty the trusted proxy list (any peer).
    #[arg(long)]
    pub no_trusted_proxies: bool,
    /// What a failed client chain does in mtls mode.
    #[arg(long, value_enum)]
    pub validation_failure: Option<ValidationFailureArg>,
    /// A PEM (or DER) CRL file (repeat for several; replaces the list; a file with several
    /// PEM CRLs adds each).
    #[arg(long, value_name = "FILE", conflicts_with = "no_crls")]
    pub crl_file: Vec<std::path::PathBuf>,
    /// Empty the CRL list.
    #[arg(long)]
    pub no_crls: bool,
    /// Add the X-Client-Cert-* headers to upstream requests.
    #[arg(long, value_name = "true|false")]
    pub forward_identity: Option<bool>,
    /// List the trusted CA names in the TLS CertificateRequest (mtls).
    #[arg(long, value_name = "true|false")]
    pub send_ca_names: Option<bool>,
    /// An identity format forwarded upstream (repeat for several; replaces the list).
    #[arg(long, value_name = "FORMAT", value_parser = ["x_client_cert", "xfcc", "rfc9440"],
          conflicts_with = "no_forward_formats")]
    pub forward_format: Vec<String>,
    /// Forward no identity format.
    #[arg(long)]
    pub no_forward_formats: bool,
    /// Answer 421 when Host names another host than the TLS SNI (mtls).
    #[arg(long, value_name = "true|false")]
    pub sni_host_check: Option<bool>,
    /// What a certificate whose revocation status cannot be learned gets.
    #[arg(long, value_name = "strict|soft", value_parser = ["strict", "soft"])]
    pub revocation_failure: Option<String>,
    /// Where revocation status comes from: the configured CRLs, also the certificates'
    /// CRL distribution points, or also their OCSP responders.
    #[arg(long, value_name = "SOURCE", value_parser = ["crl", "crl_dp", "ocsp"])]
    pub revocation: Option<String>,
    /// A host name or CIDR revocation fetches may go to (repeat; replaces the list).
    #[arg(
        long,
        value_name = "HOST|CIDR",
        conflicts_with = "no_revocation_fetch_hosts"
    )]
    pub revocation_fetch_host: Vec<String>,
    /// Allow revocation fetches to no host.
    #[arg(long)]
    pub no_revocation_fetch_hosts: bool,
    /// The time limit of one revocation fetch, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub revocation_fetch_timeout_ms: Option<u64>,
}

/// `certgate truststore …`: the node's materialised trust store.
#[derive(Debug, clap::Subcommand)]
pub enum TruststoreCmd {
    /// Print the trust store status (ok, missing, corrupted, io_error).
    Status,
    /// Rebuild the trust store from the store now.
    Recover,
}

/// One admin subcommand.
#[derive(Debug)]
pub enum AdminCommand {
    /// `certgate cert …`
    Cert(CertCmd),
    /// `certgate trust …`
    Trust(TrustCmd),
    /// `certgate dn …`
    Dn(DnCmd),
    /// `certgate api …`
    Api(ApiCmd),
    /// `certgate gateway …`
    Gateway(GatewayCmd),
    /// `certgate truststore …`
    Truststore(TruststoreCmd),
    /// `certgate cluster …`
    Cluster(ClusterCmd),
    /// `certgate explain …`
    Explain(explain::ExplainArgs),
    /// `certgate audit`
    Audit(AuditArgs),
    /// `certgate clients`
    Clients(clients::ClientsArgs),
    /// `certgate export`
    Export(config::ExportArgs),
    /// `certgate apply`
    Apply(config::ApplyArgs),
}

/// Runs one admin subcommand against the admin API and returns the process exit status.
pub fn run(opts: &Resolved, cmd: AdminCommand) -> ExitCode {
    match run_inner(opts, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_inner(opts: &Resolved, cmd: AdminCommand) -> Result<ExitCode, CliError> {
    // Everything local is checked before a runtime exists or a byte is sent.
    let client = AdminClient::new(&opts.admin, opts.token.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))?;
    let json = opts.json;
    runtime.block_on(async move {
        match cmd {
            AdminCommand::Cert(c) => cert::run(&client, json, c).await,
            AdminCommand::Trust(c) => trust::run(&client, json, c).await,
            AdminCommand::Dn(c) => dn::run(&client, json, c).await,
            AdminCommand::Api(c) => api::run(&client, json, c).await,
            AdminCommand::Gateway(c) => gateway::run(&client, json, c).await,
            AdminCommand::Truststore(c) => gateway::run_truststore(&client, json, c).await,
            AdminCommand::Cluster(c) => cluster::run(&client, json, c).await,
            AdminCommand::Explain(a) => explain::run(&client, json, a).await,
            AdminCommand::Audit(a) => audit::run(&client, json, a).await,
            AdminCommand::Clients(a) => clients::run(&client, json, a).await,
            AdminCommand::Export(a) => config::run_export(&client, a).await,
            AdminCommand::Apply(a) => config::run_apply(&client, json, a).await,
        }
    })
}
