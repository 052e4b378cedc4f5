//! The node's trust store on disk (SPEC §5): `<data_dir>/truststore/truststore.pem` (the
//! PEM bundle of the trust table) and `manifest.json` (its entries, the bundle's SHA-256
//! and when it was built), written atomically, verified on start and on every sync, and
//! rebuilt from the store when it no longer matches the trust table or is damaged.
//!
//! The data plane fails closed while [`TrustStore::status`] is not `ok`; the trust anchors
//! themselves it takes from [`GatewayConfig::trusted_certificates`], which hold the same
//! certificates as the bundle.
//!
//! "A data dir that never held a trust store" is a new node ([`crate::node::is_new_node`]:
//! no `node-id` and no `truststore/` directory); any other missing file or directory is
//! `missing`.
//!
//! Every method does short blocking file I/O (a bundle of 1000 certificates is about
//! 1.5 MB); async callers run it on a blocking thread.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::model::GatewayConfig;

/// The bundle's file name under `<data_dir>/truststore/`.
pub const BUNDLE_FILE: &str = "truststore.pem";
/// The manifest's file name under `<data_dir>/truststore/`.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The state of the on-disk trust store (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrustStoreStatus {
    /// Present, intact and matching the trust table.
    Ok,
    /// The bundle or the manifest is missing.
    Missing,
    /// Fails its checksum or does not parse.
    Corrupted,
    /// Cannot be read or written.
    IoError,
}

impl TrustStoreStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [TrustStoreStatus; 4] = [
        TrustStoreStatus::Ok,
        TrustStoreStatus::Missing,
        TrustStoreStatus::Corrupted,
        TrustStoreStatus::IoError,
    ];

    /// The API spelling: `ok`, `missing`, `corrupted`, `io_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustStoreStatus::Ok => "ok",
            TrustStoreStatus::Missing => "missing",
            TrustStoreStatus::Corrupted => "corrupted",
            TrustStoreStatus::IoError => "io_error",
        }
    }
}

impl std::fmt::Display for TrustStoreStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `GET /api/v1/truststore` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustStoreInfo {
    /// The current status.
    pub status: TrustStoreStatus,
    /// Number of trust-table entries in the bundle (expired ones included); 0 unless ok.
    pub entries: usize,
    /// Lowercase hex SHA-256 of the bundle; `null` unless ok.
    pub sha256: Option<String>,
    /// When the bundle was built; `null` unless ok.
    #[serde(with = "time::serde::rfc3339::option")]
    pub built_at: Option<OffsetDateTime>,
}

impl TrustStoreInfo {
    fn failed(status: TrustStoreStatus) -> Self {
        TrustStoreInfo {
            status,
            entries: 0,
            sha256: None,
            built_at: None,
        }
    }
}

/// One entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The component id.
    pub certificate_id: i64,
    /// The pinned version.
    pub version: i64,
    /// `sha256:` + hex of the DER.
    pub fingerprint: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The bundle's certificates, in bundle order.
    pub entries: Vec<ManifestEntry>,
    /// Lowercase hex SHA-256 of `truststore.pem`.
    pub sha256: String,
    /// When it was built.
    #[serde(with = "time::serde::rfc3339")]
    pub built_at: OffsetDateTime,
}

/// Why the files on disk are not a usable trust store.
struct Failure {
    status: TrustStoreStatus,
    reason: String,
}

impl Failure {
    fn io(what: &Path, e: &io::Error) -> Self {
        let status = if e.kind() == io::ErrorKind::NotFound {
            TrustStoreStatus::Missing
        } else {
            TrustStoreStatus::IoError
        };
        Failure {
            status,
            reason: format!("{}: {e}", what.display()),
        }
    }

    fn corrupted(reason: String) -> Self {
        Failure {
            status: TrustStoreStatus::Corrupted,
            reason,
        }
    }
}

#[derive(Debug)]
struct State {
    info: TrustStoreInfo,
    /// The manifest of the last bundle verified or built; `None` while failed.
    manifest: Option<Manifest>,
    /// The files as they were when `info` was found: a differing stamp means they
    /// changed since and must be verified again.
    stamp: Option<DiskStamp>,
    /// The configuration generation `info` was found for.
    generation: Option<u64>,
}

/// What `stat` says about one file: enough to notice any write (a write moves ctime,
/// which no user can set back) without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// The stamps of the bundle and the manifest (`None`: cannot be stat'ed).
type DiskStamp = [Option<FileStamp>; 2];

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(FileStamp {
        len: m.len(),
        ino: m.ino(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    })
}

impl State {
    /// Records an intact trust store described by `manifest`.
    fn set_ok(&mut self, manifest: Manifest) {
        self.info = TrustStoreInfo {
            status: TrustStoreStatus::Ok,
            entries: manifest.entries.len(),
            sha256: Some(manifest.sha256.clone()),
            built_at: Some(manifest.built_at),
        };
        self.manifest = Some(manifest);
    }
}

/// A node's on-disk trust store. Thread-safe; share it as `Arc<TrustStore>`.
#[derive(Debug)]
pub struct TrustStore {
    dir: PathBuf,
    auto_recover: bool,
    state: Mutex<State>,
}

impl TrustStore {
    /// A trust store under `<data_dir>/truststore/`. Touches no file: call
    /// [`start`](Self::start) next. Until then the status is `missing`.
    pub fn open(data_dir: impl AsRef<Path>, auto_recover: bool) -> TrustStore {
        TrustStore {
            dir: data_dir.as_ref().join("truststore"),
            auto_recover,
            state: Mutex::new(State {
                info: TrustStoreInfo::failed(TrustStoreStatus::Missing),
                manifest: None,
                stamp: None,
                generation: None,
            }),
        }
    }

    /// The directory holding the bundle and the manifest.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bundle's path.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join(BUNDLE_FILE)
    }

    /// The manifest's path.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// Whether a damaged trust store is rebuilt at once.
    pub fn auto_recover(&self) -> bool {
        self.auto_recover
    }

    /// The status as of the last start, sync or recover.
    pub fn status(&self) -> TrustStoreInfo {
        self.lock().info.clone()
    }

    /// True when the files changed on disk since the last start, sync or recover looked
    /// at them (two `stat` calls, no read): the node's watcher then syncs again, so a
    /// trust store damaged while the node runs fails closed within one watch period.
    pub fn changed_on_disk(&self) -> bool {
        let stamp = self.disk_stamp();
        self.lock().stamp != Some(stamp)
    }

    /// The status last found for configuration `generation`, if the files have not
    /// changed since: what `/readyz` answers without reading the store's configuration
    /// or hashing the bundle again. `None`: sync first.
    pub fn current(&self, generation: u64) -> Option<TrustStoreInfo> {
        let stamp = self.disk_stamp();
        let state = self.lock();
        (state.generation == Some(generation) && state.stamp == Some(stamp))
            .then(|| state.info.clone())
    }

    /// Narrows the modes of an existing trust store (written by an older version, or
    /// under a lax umask) to 0700 / 0600.
    fn narrow_modes(&self) {
        let targets = [
            (self.dir.clone(), PRIVATE_DIR_MODE),
            (self.bundle_path(), PRIVATE_FILE_MODE),
            (self.manifest_path(), PRIVATE_FILE_MODE),
        ];
        for (path, want) in targets {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode != want {
                match fs::set_permissions(&path, fs::Permissions::from_mode(want)) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), from = format!("{mode:o}"), to = format!("{want:o}"), "trust store: narrowed the file mode")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "trust store: cannot narrow the file mode")
                    }
                }
            }
        }
    }

    fn disk_stamp(&self) -> DiskStamp {
        [
            file_stamp(&self.bundle_path()),
            file_stamp(&self.manifest_path()),
        ]
    }

    /// Node start: builds the trust store of a new data dir; otherwise loads and verifies
    /// the files, rebuilds them when intact but out of date, and reports a damaged trust
    /// store (rebuilding it when `auto_recover` is on). `force_recovery` rebuilds whatever
    /// the state.
    pub fn start(&self, config: &GatewayConfig, force_recovery: bool) -> TrustStoreInfo {
        let mut state = self.lock();
        state.generation = Some(config.generation);
        self.narrow_modes();
        if force_recovery {
            tracing::info!(dir = %self.dir.display(), "trust store: force_recovery set, rebuilding from the store");
            return self.build(&mut state, config);
        }
        // A new node (SPEC §5: no node-id yet) builds its trust store; a node that has
        // started before and lost its truststore/ directory reports `missing`.
        if self.dir.parent().is_some_and(crate::node::is_new_node) {
            tracing::info!(dir = %self.dir.display(), "trust store: new data dir, building the trust store");
            return self.build(&mut state, config);
        }
        self.check(&mut state, config, true)
    }

    /// Called on every configuration change (and cheap enough for every readiness probe):
    /// re-verifies the files, rebuilds when the trust table differs from the manifest, and
    /// reports damage (then rebuilds when `auto_recover` is on).
    pub fn sync(&self, config: &GatewayConfig) -> TrustStoreInfo {
        let mut state = self.lock();
        state.generation = Some(config.generation);
        self.check(&mut state, config, false)
    }

    /// Rebuilds the trust store from `config` now, whatever its state.
    pub fn recover(&self, config: &GatewayConfig) -> TrustStoreInfo {
        let mut state = self.lock();
        state.generation = Some(config.generation);
        tracing::info!(dir = %self.dir.display(), "trust store: recovery requested, rebuilding from the store");
        self.build(&mut state, config)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a State that is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, state: &mut State, config: &GatewayConfig, full: bool) -> TrustStoreInfo {
        // Skip re-parsing the bundle when its checksum is the one verified before.
        let known = if full { None } else { state.manifest.clone() };
        // Stamped before reading: a change during the read shows at the next look.
        state.stamp = Some(self.disk_stamp());
        match self.verify(known.as_ref()) {
            Ok(manifest) => {
                if matches_config(&manifest, config) {
                    state.set_ok(manifest);
                    state.info.clone()
                } else {
                    tracing::info!(dir = %self.dir.display(), "trust store: trust table changed, rebuilding");
                    self.build(state, config)
                }
            }
            Err(f) => {
                state.info = TrustStoreInfo::failed(f.status);
                state.manifest = None;
                if self.auto_recover {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        status = f.status.as_str(),
                        reason = %f.reason,
                        "trust store unusable; auto_recover is on, rebuilding it from the store"
                    );
                    self.build(state, config)
                } else {
                    tracing::error!(
                        dir = %self.dir.display(),
                        status = f.status.as_str(),
                        reason = %f.reason,
                        "trust store unusable; client certificates are rejected until it is recovered"
                    );
                    state.info.clone()
                }
            }
        }
    }

    /// Reads and verifies the files. With `known`, a bundle whose checksum equals the
    /// known manifest's is not parsed again.
    fn verify(&self, known: Option<&Manifest>) -> Result<Manifest, Failure> {
        let manifest_path = self.manifest_path();
        let bundle_path = self.bundle_path();
        let manifest_bytes =
            fs::read(&manifest_path).map_err(|e| Failure::io(&manifest_path, &e))?;
        let bundle = fs::read(&bundle_path).map_err(|e| Failure::io(&bundle_path, &e))?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Failure::corrupted(format!("{}: {e}", manifest_path.display())))?;
        let sha = hex::encode(Sha256::digest(&bundle));
        if sha != manifest.sha256 {
            return Err(Failure::corrupted(format!(
                "{}: SHA-256 {sha} does not match the manifest's {}",
                bundle_path.display(),
                manifest.sha256
            )));
        }
        if known.is_some_and(|k| *k == manifest) {
            return Ok(manifest);
        }
        let fingerprints = bundle_fingerprints(&bundle)
            .map_err(|why| Failure::corrupted(format!("{}: {why}", bundle_path.display())))?;
        let expected: Vec<&str> = manifest
            .entries
            .iter()
            .map(|e| e.fingerprint.as_str())
            .collect();
        if fingerprints != expected {
            return Err(Failure::corrupted(format!(
                "{}: certificates do not match the manifest",
                bundle_path.display()
            )));
        }
        Ok(manifest)
    }

    fn build(&self, state: &mut State, config: &GatewayConfig) -> TrustStoreInfo {
        let written = self.write_files(config);
        state.stamp = Some(self.disk_stamp());
        match written {
            Ok(manifest) => {
                state.set_ok(manifest);
                tracing::info!(
                    dir = %self.dir.display(),
                    entries = state.info.entries,
                    "trust store built"
                );
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "trust store could not be written");
                state.info = TrustStoreInfo::failed(TrustStoreStatus::IoError);
                state.manifest = None;
            }
        }
        state.info.clone()
    }

    fn write_files(&self, config: &GatewayConfig) -> io::Result<Manifest> {
        create_private_dir(&self.dir)?;
        let mut bundle = String::new();
        for t in &config.trusted_certificates {
            bundle.push_str(t.pem.trim_end());
            bundle.push('\n');
        }
        let built_at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let manifest = Manifest {
            entries: config
                .trusted_certificates
                .iter()
                .map(|t| ManifestEntry {
                    certificate_id: t.certificate_id,
                    version: t.version,
                    fingerprint: t.fingerprint_sha256.clone(),
                })
                .collect(),
            sha256: hex::encode(Sha256::digest(bundle.as_bytes())),
            built_at,
        };
        let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        // Bundle first: a crash between the two leaves a checksum mismatch (corrupted,
        // then rebuilt), never a manifest that vouches for a bundle it did not hash.
        write_atomic(&self.dir, BUNDLE_FILE, bundle.as_bytes())?;
        write_atomic(&self.dir, MANIFEST_FILE, &manifest_json)?;
        Ok(manifest)
    }
}

fn matches_config(manifest: &Manifest, config: &GatewayConfig) -> bool {
    manifest.entries.len() == config.trusted_certificates.len()
        && manifest
            .entries
            .iter()
            .zip(&config.trusted_certificates)
            .all(|(m, t)| {
                m.certificate_id == t.certificate_id
                    && m.version == t.version
                    && m.fingerprint == t.fingerprint_sha256
            })
}

/// The `sha256:` fingerprints of the bundle's certificates, in order; an error when a
/// block is not a certificate or does not parse.
fn bundle_fingerprints(bundle: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(bundle) {
        let block = block.map_err(|e| format!("PEM does not parse: {e}"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!("unexpected PEM block {:?}", block.label));
        }
        block
            .parse_x509()
            .map_err(|e| format!("certificate does not parse: {e}"))?;
        out.push(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(&block.contents))
        ));
    }
    Ok(out)
}

/// The mode of the bundle and the manifest: only the node's user reads them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of `truststore/`.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) with mode 0700, and narrows an existing one to
/// 0700, whatever the umask.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != PRIVATE_DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    }
    Ok(())
}

/// Writes `name` in `dir` atomically: a temp file in the same directory, fsync, rename
/// over the target, fsync the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        // 0600 whatever the umask (the mode survives the rename).
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
