//! The node's identity (SPEC §12) and the new-node marker of SPEC §5.
//!
//! `<data_dir>/node-id` holds the node's id (a UUID made on first start, mode 0600). A
//! data dir without it is a *new node*: its trust store is built at start. Once the file
//! exists, a deleted `truststore/` directory is `missing` (damage), not new. A data dir of
//! an older version, which has a `truststore/` directory but no `node-id`, gets one
//! without a rebuild (the trust store decides by the directory in that case, see
//! [`is_new_node`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;

/// The id file's name in the data dir.
pub const NODE_ID_FILE: &str = "node-id";

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node id (`[node] id`, else the content of `<data_dir>/node-id`).
    pub id: String,
    /// The node name (`[node] name`, else the host name).
    pub name: String,
    /// True when `node-id` was made by this start (first start of this data dir).
    pub created: bool,
}

/// Whether `data_dir` belongs to a node that has never started: neither a `node-id` nor
/// a `truststore/` directory (the latter for data dirs of versions before `node-id`).
pub fn is_new_node(data_dir: &Path) -> bool {
    !data_dir.join(NODE_ID_FILE).exists() && !data_dir.join("truststore").exists()
}

/// The path of the id file.
pub fn node_id_path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_ID_FILE)
}

/// A random (version 4) UUID in its usual lowercase form.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The host name (`/proc/sys/kernel/hostname`, `/etc/hostname`, `$HOSTNAME`), else
/// `localhost`.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Reads `<data_dir>/node-id`, making it on first start. A configured `id` wins over
/// the file (and is written to it when the file is missing); a configured `name` wins
/// over the host name. Call it *after* the trust store has started, so the first start
/// is still seen as a new node there.
pub fn load_or_create(
    data_dir: &Path,
    configured_id: Option<&str>,
    configured_name: Option<&str>,
) -> io::Result<NodeIdentity> {
    let path = node_id_path(data_dir);
    let (file_id, created) = match fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim().to_string();
            if id.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is empty", path.display()),
                ));
            }
            (id, false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = configured_id.map_or_else(new_uuid, str::to_string);
            write_private(&path, format!("{id}\n").as_bytes())?;
            (id, true)
        }
        Err(e) => return Err(e),
    };
    Ok(NodeIdentity {
        id: configured_id.map_or(file_id, str::to_string),
        name: configured_name.map_or_else(host_name, str::to_string),
        created,
    })
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename)
/// with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn made_once_then_kept_with_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        assert!(is_new_node(d.path()));
        let a = load_or_create(d.path(), None, Some("n1")).unwrap();
        assert!(a.created && a.name == "n1");
        assert!(!is_new_node(d.path()));
        let b = load_or_create(d.path(), None, None).unwrap();
        assert_eq!((b.id.as_str(), b.created), (a.id.as_str(), false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(node_id_path(d.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let c = load_or_create(d.path(), Some("fixed"), None).unwrap();
        assert_eq!(c.id, "fixed");
    }
}
