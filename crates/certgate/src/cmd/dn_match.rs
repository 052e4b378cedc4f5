//! `certgate dn-match [--dn DN | --cert FILE] PATTERN...` (SPEC §9).

use std::process::ExitCode;

/// Arguments of `dn-match`.
#[derive(Debug, clap::Args)]
pub struct DnMatchArgs {
    /// A DN string to test.
    #[arg(long, conflicts_with = "cert")]
    pub dn: Option<String>,
    /// A PEM or DER certificate file whose subject is tested.
    #[arg(long)]
    pub cert: Option<std::path::PathBuf>,
    /// Patterns, tried in order.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

/// Runs `dn-match`: exit 0 on a match, 1 on none, 2 on bad input.
pub fn run(_args: DnMatchArgs) -> ExitCode {
    todo!()
}
