//! `certgate serve [--config FILE]`.

use std::process::ExitCode;

use crate::config::Config;
use crate::node;
use crate::secrets::TokenSource;

/// The long help of `serve`.
pub const LONG_ABOUT: &str = "Run a node: the proxy listener (default https://0.0.0.0:8443) and \
    the admin API (default http://127.0.0.1:9090).\n\n\
    Without --config the node keeps its state in ./certgate-data (SQLite), makes a self-signed \
    server certificate for localhost there and prints a new admin token on its first start. \
    The addresses are set by [listener] address and [admin] address in the configuration file \
    (docs/CONFIG.md).\n\n\
    SIGINT (Ctrl-C) or SIGTERM stops it after in-flight requests have finished.";

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
#[command(override_usage = "certgate serve [--config FILE]")]
pub struct ServeArgs {
    /// TOML configuration file (docs/CONFIG.md); optional, every key has a default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Exit status of a start refused for its configuration.
const BAD_CONFIG: u8 = 2;

/// Runs a node until SIGTERM/SIGINT, then drains in-flight requests and exits.
pub fn run(args: ServeArgs) -> ExitCode {
    node::init_logging();
    let cfg = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    // Files named by the configuration are part of it: a missing or unreadable server
    // certificate is a configuration error like a bad key, found before anything is made.
    if let (true, Some(cert), Some(key)) = (
        cfg.listener.ssl,
        &cfg.listener.certificate,
        &cfg.listener.private_key,
    ) {
        if let Err(e) = node::load_server_identity(cert, key) {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(BAD_CONFIG);
        }
    }
    let rt = match node::tokio_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certgate: {e:#}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let result = rt.block_on(async {
        let n = node::start(&cfg).await?;
        let stop = super::shutdown_signals()?;
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
        stop.await;
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
