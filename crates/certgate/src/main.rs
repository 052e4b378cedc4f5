//! The `certgate` binary: command line, configuration file and wiring. Business rules
//! live in the library crates; this crate only parses, wires and prints.

mod cmd;
mod config;
mod node;
mod secrets;

use std::process::ExitCode;

/// jemalloc: 11% less resident memory per idle mTLS connection than glibc's allocator in
/// the benchmark's 10,000-connection scenario (mimalloc was worse); see docs/BENCHMARKS.md.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};
use cmd::admin_cli::{self, AdminCommand, GroupOpts};

/// certgate: an API gateway whose core is client certificate authentication.
///
/// `--admin`, `--token` and `--json` belong to the admin subcommands (cert, trust, dn, api,
/// gateway, truststore) and may be written before or after them.
#[derive(Debug, Parser)]
#[command(name = "certgate", version, about)]
struct Cli {
    #[command(flatten)]
    client: admin_cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

/// One admin subcommand group with the client options written after it.
#[derive(Debug, clap::Args)]
struct Group<T: Subcommand> {
    #[command(flatten)]
    opts: GroupOpts,
    #[command(subcommand)]
    cmd: T,
}

/// One admin command without subcommands, with the client options written after it.
#[derive(Debug, clap::Args)]
struct Flat<T: clap::Args> {
    #[command(flatten)]
    opts: GroupOpts,
    #[command(flatten)]
    args: T,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (proxy listener plus admin listener).
    #[command(long_about = cmd::serve::LONG_ABOUT)]
    Serve(cmd::serve::ServeArgs),
    /// Make a demo PKI, an echo upstream and a node in mtls mode, and print curl commands.
    #[command(long_about = cmd::quickstart::LONG_ABOUT)]
    Quickstart(cmd::quickstart::QuickstartArgs),
    /// Print a DN in canonical form and the first pattern that matches it.
    DnMatch(cmd::dn_match::DnMatchArgs),
    /// Certificate components (admin API).
    Cert(Group<admin_cli::CertCmd>),
    /// The gateway's trust table (admin API).
    Trust(Group<admin_cli::TrustCmd>),
    /// The gateway's trusted DN patterns (admin API).
    Dn(Group<admin_cli::DnCmd>),
    /// Deployed APIs and their overrides (admin API).
    Api(Group<admin_cli::ApiCmd>),
    /// Gateway settings (admin API).
    Gateway(Group<admin_cli::GatewayCmd>),
    /// The node's trust store (admin API).
    Truststore(Group<admin_cli::TruststoreCmd>),
    /// The nodes of a cluster (admin API).
    Cluster(Group<admin_cli::ClusterCmd>),
    /// Why a request would be refused: the evaluation's steps (admin API).
    Explain(Flat<admin_cli::explain::ExplainArgs>),
    /// The audit log of admin writes, newest first (admin API).
    Audit(Flat<admin_cli::AuditArgs>),
    /// The client certificates the node has seen, newest first (admin API).
    Clients(Flat<admin_cli::clients::ClientsArgs>),
    /// The whole configuration as one document, JSON or YAML (admin API).
    Export(Flat<admin_cli::config::ExportArgs>),
    /// Make the configuration equal to a document, in one transaction (admin API).
    Apply(Flat<admin_cli::config::ApplyArgs>),
    /// Store maintenance: copy a configuration between stores.
    #[command(subcommand)]
    Store(cmd::store::StoreCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let admin = |opts: &GroupOpts, c: AdminCommand| admin_cli::run(&cli.client.resolve(opts), c);
    match cli.command {
        Command::Serve(args) => local_run(&cli.client, || cmd::serve::run(args)),
        Command::Quickstart(args) => local_run(&cli.client, || cmd::quickstart::run(args)),
        Command::DnMatch(args) => local_run(&cli.client, || cmd::dn_match::run(args)),
        Command::Cert(g) => admin(&g.opts, AdminCommand::Cert(g.cmd)),
        Command::Trust(g) => admin(&g.opts, AdminCommand::Trust(g.cmd)),
        Command::Dn(g) => admin(&g.opts, AdminCommand::Dn(g.cmd)),
        Command::Api(g) => admin(&g.opts, AdminCommand::Api(g.cmd)),
        Command::Gateway(g) => admin(&g.opts, AdminCommand::Gateway(g.cmd)),
        Command::Truststore(g) => admin(&g.opts, AdminCommand::Truststore(g.cmd)),
        Command::Cluster(g) => admin(&g.opts, AdminCommand::Cluster(g.cmd)),
        Command::Explain(g) => admin(&g.opts, AdminCommand::Explain(g.args)),
        Command::Audit(f) => admin(&f.opts, AdminCommand::Audit(f.args)),
        Command::Clients(f) => admin(&f.opts, AdminCommand::Clients(f.args)),
        Command::Export(f) => admin(&f.opts, AdminCommand::Export(f.args)),
        Command::Apply(f) => admin(&f.opts, AdminCommand::Apply(f.args)),
        Command::Store(c) => local_run(&cli.client, || cmd::store::run(c)),
    }
}

/// Runs a command that talks to no admin API; refuses the admin client options, which the
/// parser accepts before any subcommand's name.
fn local_run(client: &admin_cli::ClientOpts, run: impl FnOnce() -> ExitCode) -> ExitCode {
    if client.any() {
        eprintln!(
            "certgate: --admin, --token and --json apply to the admin subcommands only \
             (cert, trust, dn, api, gateway, truststore)"
        );
        return ExitCode::from(2);
    }
    run()
}
