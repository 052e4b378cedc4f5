//! `certgate serve [--config FILE]`.

use std::process::ExitCode;

use crate::config::Config;
use crate::node;
use crate::secrets::TokenSource;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML configuration file (SPEC §10). Without it: `./certgate-data` and SQLite.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// Runs a node until SIGTERM/SIGINT, then drains in-flight requests and exits.
pub fn run(args: ServeArgs) -> ExitCode {
    node::init_logging();
    let cfg = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match node::tokio_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        let n = node::start(&cfg).await?;
        if n.token_source == TokenSource::Generated {
            // Printed once, on the start that made it; it stays in <data_dir>/admin-token.
            println!(
                "certgate: admin token (kept in {}): {}",
                cfg.data_dir.join("admin-token").display(),
                n.token
            );
        }
        println!(
            "certgate: proxy on {}://{}, admin API on http://{}",
            n.scheme, n.proxy_addr, n.admin_addr
        );
        node::termination_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        n.begin_shutdown();
        n.finished().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
