//! `certgate serve [--config FILE]`.

use std::process::ExitCode;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML configuration file (SPEC §10). Without it: `./certgate-data` and SQLite.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// Runs a node until SIGTERM/SIGINT.
pub fn run(_args: ServeArgs) -> ExitCode {
    todo!()
}
