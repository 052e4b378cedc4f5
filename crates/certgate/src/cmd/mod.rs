//! One module per subcommand.

pub mod admin_cli;
pub mod dn_match;
pub mod quickstart;
pub mod serve;
pub mod store;

use std::future::Future;

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now and returns a future that resolves on
/// either. Installed before a command says it is ready, so that a signal sent as soon as it
/// has said so still stops it cleanly instead of killing it with the default disposition.
pub fn shutdown_signals() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
