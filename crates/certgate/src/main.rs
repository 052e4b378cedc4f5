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

/// certgate: an API gateway whose core is client certificate authentication.
#[derive(Debug, Parser)]
#[command(name = "certgate", version, about)]
struct Cli {
    #[command(flatten)]
    client: cmd::admin_cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (proxy listener plus admin listener).
    Serve(cmd::serve::ServeArgs),
    /// Make a demo PKI, an echo upstream and a node in mtls mode, and print curl commands.
    Quickstart(cmd::quickstart::QuickstartArgs),
    /// Print a DN in canonical form and the first pattern that matches it.
    DnMatch(cmd::dn_match::DnMatchArgs),
    /// Certificate components (admin API).
    #[command(subcommand)]
    Cert(cmd::admin_cli::CertCmd),
    /// The gateway's trust table (admin API).
    #[command(subcommand)]
    Trust(cmd::admin_cli::TrustCmd),
    /// The gateway's trusted DN patterns (admin API).
    #[command(subcommand)]
    Dn(cmd::admin_cli::DnCmd),
    /// Deployed APIs and their overrides (admin API).
    #[command(subcommand)]
    Api(cmd::admin_cli::ApiCmd),
    /// Gateway settings (admin API).
    #[command(subcommand)]
    Gateway(cmd::admin_cli::GatewayCmd),
    /// The node's trust store (admin API).
    #[command(subcommand)]
    Truststore(cmd::admin_cli::TruststoreCmd),
    /// The nodes of a cluster (admin API).
    #[command(subcommand)]
    Cluster(cmd::admin_cli::ClusterCmd),
    /// Store maintenance: copy a configuration between stores.
    #[command(subcommand)]
    Store(cmd::store::StoreCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Quickstart(args) => cmd::quickstart::run(args),
        Command::DnMatch(args) => cmd::dn_match::run(args),
        Command::Cert(c) => cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Cert(c)),
        Command::Trust(c) => {
            cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Trust(c))
        }
        Command::Dn(c) => cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Dn(c)),
        Command::Api(c) => cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Api(c)),
        Command::Gateway(c) => {
            cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Gateway(c))
        }
        Command::Truststore(c) => {
            cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Truststore(c))
        }
        Command::Cluster(c) => {
            cmd::admin_cli::run(&cli.client, cmd::admin_cli::AdminCommand::Cluster(c))
        }
        Command::Store(c) => cmd::store::run(c),
    }
}
