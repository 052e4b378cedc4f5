//! `certgate store migrate --from URL --to URL` (SPEC §12): copies a whole configuration
//! into an empty store, SQLite to PostgreSQL and back. Works on the databases directly
//! (no node needs to run); the target's schema is created first.

use std::process::ExitCode;

use certgate_store::Store;

/// `certgate store …`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCmd {
    /// Copy everything (components with every version, settings, trust table, DN lists,
    /// APIs, overrides) from one store into an empty one; a target that holds data is
    /// refused and left unchanged.
    Migrate {
        /// Source store URL (`sqlite://path` or `postgres://user:password@host:port/db`).
        #[arg(long)]
        from: String,
        /// Target store URL; must be empty.
        #[arg(long)]
        to: String,
    },
}

/// Runs one `store` subcommand.
pub fn run(cmd: StoreCmd) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        StoreCmd::Migrate { from, to } => rt.block_on(async {
            if from == to {
                eprintln!("error: --from and --to name the same store");
                return ExitCode::from(2);
            }
            let source = match Store::open(&from).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: source {}: {e}", redact(&from));
                    return ExitCode::from(1);
                }
            };
            let target = match Store::open(&to).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: target {}: {e}", redact(&to));
                    return ExitCode::from(1);
                }
            };
            let result = source.migrate_into(&target).await;
            source.close().await;
            target.close().await;
            match result {
                Ok(r) => {
                    println!(
                        "Migrated {} certificates ({} versions), {} trusted certificates, {} DN patterns and {} APIs from {} to {} (generation {}).",
                        r.components,
                        r.versions,
                        r.trusted_certificates,
                        r.trusted_dns,
                        r.apis,
                        redact(&from),
                        redact(&to),
                        r.generation
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e} ({})", e.code());
                    ExitCode::from(1)
                }
            }
        }),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}
