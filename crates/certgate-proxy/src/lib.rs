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
//!
//! Modules, one job each:
//! - [`settings`]: listener and upstream settings from the config file;
//! - [`runtime`] and [`snapshot`]: the live configuration and its generations;
//! - [`path`]: the one normal form of a request path (routing and forwarding read it);
//! - [`route`]: the accepted request target, longest-prefix routing and the path rewrite;
//! - [`identity`]: a presented certificate, its verdict and the verdict's end, and the
//!   bounded verdict caches;
//! - [`clock`]: the clock of the freshness rules (injectable for tests);
//! - [`evaluate`]: the pure decision of SPEC §3;
//! - [`inventory`]: the clients this node has seen (SPEC §13) and the dry run's judgement;
//! - [`explain`]: SPEC §13 explain, the decision of [`evaluate`] with its steps;
//! - [`header_mode`]: the certificate header (SPEC §6);
//! - [`response`]: the JSON error bodies;
//! - [`upstream`]: the pooled upstream client and the request rewrite;
//! - `tls` (all rustls-specific code), `server` (accept loop, connections), `telemetry`.

#![warn(missing_docs)]

pub mod clock;
pub mod echo;
pub mod evaluate;
pub mod explain;
pub mod header_mode;
pub mod identity;
pub mod inventory;
pub mod path;
pub mod response;
pub mod route;
pub mod runtime;
pub mod settings;
pub mod snapshot;
pub mod upstream;

mod pool;
mod revocation;
mod server;
mod telemetry;
mod tls;

pub use clock::{Clock, ManualClock, SystemClock};
pub use evaluate::{evaluate, Decision, DenialReason, Presented};
pub use identity::{CacheUsage, CertSource, ClientIdentity, IdentityVerdict};
pub use runtime::Runtime;
pub use server::serve;
pub use settings::ProxySettings;
pub use snapshot::{Snapshot, SnapshotError};
