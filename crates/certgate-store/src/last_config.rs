//! `<data_dir>/last-config.json` (SPEC §12): the configuration a node applied last,
//! checksummed and written atomically with mode 0600, read only when the store is
//! unreachable at start.
//!
//! The file is `{"sha256": "<hex of config>", "config": "<the GatewayConfig as JSON>"}`:
//! the configuration is kept as a string so the checksum covers exactly the bytes that
//! are parsed back.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::GatewayConfig;
use crate::node::write_private;

/// The file's name in the data dir.
pub const LAST_CONFIG_FILE: &str = "last-config.json";

#[derive(Serialize, Deserialize)]
struct File {
    sha256: String,
    config: String,
}

/// Why `last-config.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LastConfigError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// It does not parse or fails its checksum.
    #[error("{path}: {reason}")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The file's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(LAST_CONFIG_FILE)
}

/// Writes `config` atomically (temp file, fsync, rename) with mode 0600.
pub fn save(data_dir: &Path, config: &GatewayConfig) -> Result<(), LastConfigError> {
    let path = path(data_dir);
    let json = serde_json::to_string(config).map_err(|e| LastConfigError::Corrupted {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let file = File {
        sha256: hex::encode(Sha256::digest(json.as_bytes())),
        config: json,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| LastConfigError::Corrupted {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_private(&path, &bytes).map_err(|source| LastConfigError::Io { path, source })
}

/// Reads the file; `Ok(None)` when there is none.
pub fn load(data_dir: &Path) -> Result<Option<GatewayConfig>, LastConfigError> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LastConfigError::Io { path, source }),
    };
    let corrupted = |reason: String| LastConfigError::Corrupted {
        path: path.clone(),
        reason,
    };
    let file: File = serde_json::from_slice(&bytes).map_err(|e| corrupted(e.to_string()))?;
    let sha = hex::encode(Sha256::digest(file.config.as_bytes()));
    if sha != file.sha256 {
        return Err(corrupted(format!(
            "SHA-256 {sha} does not match the recorded {}",
            file.sha256
        )));
    }
    let config = serde_json::from_str(&file.config).map_err(|e| corrupted(e.to_string()))?;
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        let c = GatewayConfig {
            generation: 7,
            ..Default::default()
        };
        save(d.path(), &c).unwrap();
        assert_eq!(load(d.path()).unwrap(), Some(c));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(d.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(path(d.path())).unwrap();
        std::fs::write(path(d.path()), text.replace("7", "8")).unwrap();
        assert!(matches!(
            load(d.path()),
            Err(LastConfigError::Corrupted { .. })
        ));
    }
}
