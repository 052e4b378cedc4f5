//! The admin API from the shell: `certgate cert|trust|dn|api|gateway|truststore …`.

use std::process::ExitCode;

/// Options shared by every admin subcommand; accepted before or after the subcommand.
#[derive(Debug, clap::Args)]
pub struct ClientOpts {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        env = "CERTGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub admin: String,
    /// Admin bearer token.
    #[arg(
        long,
        global = true,
        env = "CERTGATE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum TrustCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum DnCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum ApiCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum GatewayCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum TruststoreCmd {}

/// One admin subcommand.
#[derive(Debug)]
pub enum AdminCommand {
    Cert(CertCmd),
    Trust(TrustCmd),
    Dn(DnCmd),
    Api(ApiCmd),
    Gateway(GatewayCmd),
    Truststore(TruststoreCmd),
}

/// Runs one admin subcommand against the admin API.
pub fn run(_opts: &ClientOpts, _cmd: AdminCommand) -> ExitCode {
    todo!()
}
