//! The accept loop and per-connection serving.

use std::future::Future;
use std::sync::Arc;

use crate::runtime::Runtime;
use crate::settings::ProxySettings;

/// Runs the proxy listener until `shutdown` resolves, then drains in-flight requests (up
/// to `shutdown_grace`) and returns.
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _settings: ProxySettings,
    _runtime: Arc<Runtime>,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    todo!()
}
