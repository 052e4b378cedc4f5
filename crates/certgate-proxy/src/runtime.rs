//! [`Runtime`]: the live configuration (an `ArcSwap<Snapshot>`) and the generation
//! counters that let connections notice trust and mode changes.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use certgate_store::model::GatewayConfig;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::snapshot::{BuildState, Snapshot, SnapshotError};

/// The live configuration: an `ArcSwap<Snapshot>` plus the generation machinery.
///
/// Readers (every request, every handshake) load the snapshot lock-free; writers
/// ([`Runtime::apply`]) are serialised and swap in a whole new snapshot, so a request
/// sees one consistent configuration.
#[derive(Debug)]
pub struct Runtime {
    live: Arc<ArcSwap<Snapshot>>,
    build: Mutex<BuildState>,
    mode_tx: watch::Sender<u64>,
}

impl Runtime {
    /// An empty snapshot: mode `none`, no APIs (every path 404), judging by the
    /// system clock.
    pub fn new() -> Arc<Runtime> {
        Runtime::with_clock(Arc::new(SystemClock))
    }

    /// [`Runtime::new`] with the clock of the freshness rules (verdict ends, certificate
    /// dates, CRL nextUpdate) given: tests move a [`crate::clock::ManualClock`] across a
    /// notAfter instead of sleeping.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Arc<Runtime> {
        let mut build = BuildState::new(clock);
        let initial = build.initial();
        let (mode_tx, _) = watch::channel(initial.mode_generation);
        Arc::new(Runtime {
            live: Arc::new(ArcSwap::from_pointee(initial)),
            build: Mutex::new(build),
            mode_tx,
        })
    }

    /// Builds a [`Snapshot`] from the stored config and swaps it in. `trust_store_ok ==
    /// false` makes every presented client certificate fail closed (reason
    /// `truststore_unavailable`).
    ///
    /// When the config has a DN pattern, upstream URL or header name that does not
    /// compile, nothing changes and the error is returned. When a trusted certificate
    /// or CRL is unusable, the rest of the config is applied with a trust store that
    /// fails closed, and the error is returned.
    pub fn apply(&self, config: &GatewayConfig, trust_store_ok: bool) -> Result<(), SnapshotError> {
        // A poisoned lock only means an earlier apply panicked; the state is still whole
        // because it is committed last.
        let mut build = self.build.lock().unwrap_or_else(|p| p.into_inner());
        let (snapshot, trust_error) = build.build(config, trust_store_ok)?;
        let mode_generation = snapshot.mode_generation;
        self.live.store(Arc::new(snapshot));
        self.mode_tx.send_if_modified(|g| {
            let moved = *g != mode_generation;
            *g = mode_generation;
            moved
        });
        drop(build);
        match trust_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The snapshot `config` would make, built exactly as [`Runtime::apply`] builds it
    /// (with the node's trust store as the last apply found it) but not swapped in: nothing of the
    /// running configuration changes. A dry run (SPEC §13) judges clients with it.
    pub fn rehearse(&self, config: &GatewayConfig) -> Result<Snapshot, SnapshotError> {
        let mut build = self.build.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let available = build.trust_store_ok();
        let (snapshot, _trust_error) = build.build(config, available)?;
        Ok(snapshot)
    }

    /// The clients this node has seen (SPEC §13).
    pub fn inventory(&self) -> Arc<crate::inventory::Inventory> {
        self.snapshot().inventory.clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.live.load_full()
    }

    /// The swap cell, shared with the TLS verifier.
    pub(crate) fn live(&self) -> Arc<ArcSwap<Snapshot>> {
        self.live.clone()
    }

    /// Notifies on every mode-generation change.
    pub(crate) fn mode_changes(&self) -> watch::Receiver<u64> {
        self.mode_tx.subscribe()
    }
}
