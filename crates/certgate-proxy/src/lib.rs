//! # certgate-proxy
//!
//! The data plane of certgate: the proxy listener, TLS with client-certificate auth,
//! the per-connection client identity, request evaluation (SPEC §3), routing, the
//! upstream client, identity headers (SPEC §7) and the live configuration snapshot with
//! its hot swap.
//!
//! The entry points are [`Runtime`] (the live configuration, rebuilt from a
//! [`certgate_store::model::GatewayConfig`] by [`Runtime::apply`]) and [`serve`] (runs a
//! listener against a runtime until shutdown).

pub mod echo;
pub mod runtime;
pub mod settings;
pub mod snapshot;

mod server;

pub use runtime::Runtime;
pub use server::serve;
pub use settings::ProxySettings;
pub use snapshot::{Snapshot, SnapshotError};
