//! Node-local secrets made on first start: the admin token and the self-signed server
//! certificate (SPEC §10). Both live in the data dir and are reused afterwards.
//!
//! File modes, whatever the umask: the data dir is 0700; the admin token, the
//! self-signed key and certificate, the SQLite database and its `-wal`/`-shm` files are
//! 0600 (the trust store's own files are set by `certgate-store`). Existing files and
//! directories with wider modes are narrowed at start; a configured server key that
//! others can read is reported in the log.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;

/// Where the admin token came from, so `serve` knows whether to print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// From `admin.token` or `CERTGATE_ADMIN_TOKEN`.
    Configured,
    /// Read from `<data_dir>/admin-token`, made by an earlier start.
    Existing,
    /// Made now; printed once.
    Generated,
}

/// The data dir's mode.
pub const DATA_DIR_MODE: u32 = 0o700;
/// The mode of every private file the node makes.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Sets `path`'s mode to `want` when it differs; `false` when the path does not exist.
fn narrow(path: &Path, want: u32) -> anyhow::Result<bool> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode != want {
        fs::set_permissions(path, fs::Permissions::from_mode(want))
            .with_context(|| format!("cannot set the mode of {} to {want:o}", path.display()))?;
        tracing::info!(path = %path.display(), from = format!("{mode:o}"), to = format!("{want:o}"), "narrowed the file mode");
    }
    Ok(true)
}

/// Creates the data dir (and missing parents) with mode 0700, or narrows an existing
/// one to 0700.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(dir)
        .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
    narrow(dir, DATA_DIR_MODE)?;
    Ok(())
}

/// The database file of a `sqlite://` store URL (`None`: another backend, or in memory).
fn sqlite_path(store_url: &str) -> Option<PathBuf> {
    let rest = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// SQLite: creates the database file with mode 0600 when it is missing (SQLite gives
/// its `-wal`, `-shm` and journal files the database file's mode), and narrows the
/// database and its `-wal`/`-shm` files to 0600 when they exist. Call it before the
/// store opens the file and again after (the open may have made `-wal`/`-shm`).
pub fn secure_sqlite_files(store_url: &str) -> anyhow::Result<()> {
    let Some(db) = sqlite_path(store_url) else {
        return Ok(());
    };
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DATA_DIR_MODE)
                .create(parent)
                .with_context(|| format!("store: cannot create {}", parent.display()))?;
        }
    }
    // An empty file is an empty SQLite database.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("store: cannot create {}", db.display())),
    }
    let name = db.as_os_str().to_owned();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = name.clone();
        p.push(suffix);
        narrow(Path::new(&p), PRIVATE_FILE_MODE)?;
    }
    Ok(())
}

/// Logs a warning when a configured private key file can be read by other users.
pub fn warn_if_shared(key: &Path) {
    if let Ok(meta) = fs::metadata(key) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %key.display(), mode = format!("{mode:o}"), "listener.private_key can be read by other users; chmod 600 it");
        }
    }
}

/// Writes `contents` to a new file with mode 0600 (fails if it exists).
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // The umask may have narrowed the mode further, never widened it; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// The admin token: the configured one, or the one kept in `<data_dir>/admin-token`, or a new
/// random one (32 bytes, hex) written there with mode 0600.
pub fn admin_token(
    data_dir: &Path,
    configured: Option<&str>,
) -> anyhow::Result<(String, TokenSource)> {
    if let Some(t) = configured {
        return Ok((t.to_owned(), TokenSource::Configured));
    }
    let path = data_dir.join("admin-token");
    match fs::read_to_string(&path) {
        Ok(t) => {
            narrow(&path, PRIVATE_FILE_MODE)?;
            let t = t.trim().to_owned();
            if t.len() < 16 {
                bail!(
                    "{} holds no usable token (delete it to make a new one)",
                    path.display()
                );
            }
            Ok((t, TokenSource::Existing))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let token = hex::encode(bytes);
            write_private(&path, format!("{token}\n").as_bytes())?;
            Ok((token, TokenSource::Generated))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Paths of the self-signed server certificate in the data dir.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (
        data_dir.join("server-selfsigned.pem"),
        data_dir.join("server-selfsigned.key"),
    )
}

/// Makes (once) a self-signed server certificate for `localhost` and `127.0.0.1` in the
/// data dir and returns the paths of the certificate and the key.
pub fn ensure_self_signed(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, bool)> {
    let (cert_path, key_path) = self_signed_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        narrow(&key_path, PRIVATE_FILE_MODE)?;
        return Ok((cert_path, key_path, false));
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "certgate self-signed (localhost)",
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(825);
    let cert = params.self_signed(&key)?;
    let _ = fs::remove_file(&key_path);
    let _ = fs::remove_file(&cert_path);
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_private(&cert_path, cert.pem().as_bytes())?;
    Ok((cert_path, key_path, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, s1) = admin_token(dir.path(), None).unwrap();
        assert_eq!(s1, TokenSource::Generated);
        assert_eq!(t1.len(), 64);
        let mode = fs::metadata(dir.path().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (t2, s2) = admin_token(dir.path(), None).unwrap();
        assert_eq!((t2, s2), (t1, TokenSource::Existing));
        let (t3, s3) = admin_token(dir.path(), Some("configured-token-123")).unwrap();
        assert_eq!(
            (t3.as_str(), s3),
            ("configured-token-123", TokenSource::Configured)
        );
    }

    #[test]
    fn self_signed_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k, made) = ensure_self_signed(dir.path()).unwrap();
        assert!(made);
        let pem = fs::read_to_string(&c).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(
            fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (_, _, made_again) = ensure_self_signed(dir.path()).unwrap();
        assert!(!made_again);
        assert_eq!(fs::read_to_string(&c).unwrap(), pem);
    }
}
