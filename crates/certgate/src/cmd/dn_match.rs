//! `certgate dn-match [--dn DN | --cert FILE] PATTERN...` (SPEC §9): shows the canonical
//! form of a DN (given as a string or as a certificate's subject) and the first pattern
//! that matches it, using the same matcher the gateway uses for `trusted_dns`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use certgate_pki::{CertificateInfo, Dn, PatternSet};

/// Arguments of `dn-match`.
#[derive(Debug, clap::Args)]
pub struct DnMatchArgs {
    /// A DN string to test.
    #[arg(long, conflicts_with = "cert")]
    pub dn: Option<String>,
    /// A PEM or DER certificate file whose subject is tested.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Patterns, tried in order.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

/// Exit status when a pattern matches.
const MATCHED: u8 = 0;
/// Exit status when no pattern matches.
const NO_MATCH: u8 = 1;
/// Exit status on bad input (DN, certificate file, pattern, missing option).
const BAD_INPUT: u8 = 2;

/// Runs `dn-match`: exit 0 on a match, 1 on none, 2 on bad input.
pub fn run(args: DnMatchArgs) -> ExitCode {
    // Everything is validated before anything is printed, so a bad pattern never leaves
    // a half answer on stdout.
    let (dn, set) = match inputs(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("certgate dn-match: {e:#}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let matched = set.first_matching(&dn);
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head -0`) is not an error of the match itself.
    let _ = writeln!(out, "dn: {dn}");
    let code = match matched {
        Some(p) => {
            let _ = writeln!(out, "match: {}", p.as_str());
            MATCHED
        }
        None => {
            let _ = writeln!(out, "no match");
            NO_MATCH
        }
    };
    ExitCode::from(code)
}

/// The DN to test and the compiled patterns, or what is wrong with the input.
fn inputs(args: &DnMatchArgs) -> anyhow::Result<(Dn, PatternSet)> {
    let dn = match (&args.dn, &args.cert) {
        (Some(text), _) => Dn::parse(text)?,
        (None, Some(path)) => cert_subject(path)?,
        (None, None) => return Err(anyhow!("give the DN to test with --dn DN or --cert FILE")),
    };
    let set = PatternSet::compile(&args.patterns)?;
    Ok((dn, set))
}

/// The subject DN of the first certificate in a PEM or DER file.
fn cert_subject(path: &Path) -> anyhow::Result<Dn> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read certificate file {}", path.display()))?;
    let info = CertificateInfo::parse_any(&bytes)
        .with_context(|| format!("invalid certificate file {}", path.display()))?;
    Ok(info.subject)
}
