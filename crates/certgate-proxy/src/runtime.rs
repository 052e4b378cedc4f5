//! [`Runtime`]: the live configuration (an `ArcSwap<Snapshot>`) and the generation
//! counters that let connections notice trust and mode changes.

use std::sync::Arc;

use certgate_store::model::GatewayConfig;

use crate::snapshot::{Snapshot, SnapshotError};

/// The live configuration: an `ArcSwap<Snapshot>` plus the generation machinery.
#[derive(Debug)]
pub struct Runtime {
    _private: (),
}

impl Runtime {
    /// An empty snapshot: mode `none`, no APIs (every path 404).
    pub fn new() -> Arc<Runtime> {
        todo!()
    }

    /// Builds a [`Snapshot`] from the stored config and swaps it in. `trust_store_ok ==
    /// false` makes every presented client certificate fail closed (reason
    /// `truststore_unavailable`).
    pub fn apply(&self, _config: &GatewayConfig, _trust_store_ok: bool) -> Result<(), SnapshotError> {
        todo!()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        todo!()
    }
}
