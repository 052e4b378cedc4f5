//! `certgate quickstart` (SPEC §9).

use std::process::ExitCode;

/// Arguments of `quickstart`.
#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {}

/// Runs the quickstart.
pub fn run(_args: QuickstartArgs) -> ExitCode {
    todo!()
}
