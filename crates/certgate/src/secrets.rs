//! Node-local secrets made on first start: the admin token and the self-signed server
//! certificate (SPEC §10). Both live in the data dir and are reused afterwards.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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

/// Writes `contents` to a new file with mode 0600 (fails if it exists).
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
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
    fs::write(&cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok((cert_path, key_path, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
