//! Reading certificate and CRL files for the admin API, which takes PEM text: a PEM file is
//! sent as it is (verbatim, so the stored PEM is the operator's), a DER file is wrapped in PEM.

use std::path::Path;

use certgate_pki::cert::der_to_pem;
use certgate_pki::{CertError, CertificateInfo};

use super::client::CliError;

/// Reads `path` as PEM text; a file without a PEM header is taken as DER and wrapped in a
/// PEM block labelled `label` (e.g. `CERTIFICATE`, `X509 CRL`).
pub fn read_pem_file(path: &Path, label: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    if bytes.is_empty() {
        return Err(CliError::Input(format!("{} is empty", path.display())));
    }
    if contains(&bytes, b"-----BEGIN ") {
        return String::from_utf8(bytes).map_err(|_| {
            CliError::Input(format!(
                "{} looks like PEM but is not valid UTF-8 text",
                path.display()
            ))
        });
    }
    Ok(der_to_pem(&bytes, label))
}

/// Reads a certificate file (PEM, or DER wrapped in PEM) and checks locally that it holds a
/// certificate, so that a wrong file is named in the user's words ("FILE is not a PEM
/// certificate (…)", exit 2) before anything is sent.
pub fn read_certificate_file(path: &Path) -> Result<String, CliError> {
    let pem = read_pem_file(path, "CERTIFICATE")?;
    let not = |why: &str| {
        CliError::Input(format!(
            "{} is not a PEM certificate ({why})",
            path.display()
        ))
    };
    let raw = std::fs::read(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    if !contains(&raw, b"-----BEGIN ") {
        // No PEM armour: acceptable only as a DER certificate (an ASN.1 SEQUENCE that parses).
        if raw.first() != Some(&0x30) || CertificateInfo::from_der(&raw).is_err() {
            return Err(not(
                "no -----BEGIN CERTIFICATE----- line, and not a DER certificate either",
            ));
        }
        return Ok(pem);
    }
    if !contains(&raw, b"-----BEGIN CERTIFICATE-----") {
        return Err(not("it holds no -----BEGIN CERTIFICATE----- block"));
    }
    match CertificateInfo::parse_pem_chain(&pem) {
        Ok(_) => Ok(pem),
        Err(CertError::Empty) => Err(not("it holds no certificate")),
        Err(CertError::Pem(_)) => Err(not("its base64 text does not decode")),
        Err(CertError::Der(_)) => Err(not("the block does not hold an X.509 certificate")),
    }
}

/// Splits PEM text into its `-----BEGIN …-----` … `-----END …-----` blocks (each with a final
/// newline); text outside blocks is dropped. A text with no complete block is returned whole,
/// so the admin API judges it and answers its own message.
pub fn split_pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(trimmed);
            block.push('\n');
            if trimmed.starts_with("-----END ") {
                if let Some(done) = current.take() {
                    blocks.push(done);
                }
            }
        }
    }
    if blocks.is_empty() {
        blocks.push(text.to_owned());
    }
    blocks
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_is_wrapped_at_64_columns() {
        let pem = der_to_pem(&[0u8; 60], "CERTIFICATE");
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "AAAAAAAAAAAAAAAA");
        assert_eq!(lines[3], "-----END CERTIFICATE-----");
    }

    #[test]
    fn pem_blocks_are_split() {
        let text = "junk\n-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n\
                    -----BEGIN X509 CRL-----\r\nBBBB\r\n-----END X509 CRL-----\n";
        assert_eq!(
            split_pem_blocks(text),
            vec![
                "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".to_owned(),
                "-----BEGIN X509 CRL-----\nBBBB\n-----END X509 CRL-----\n".to_owned(),
            ]
        );
        assert_eq!(split_pem_blocks("nothing"), vec!["nothing".to_owned()]);
    }

    #[test]
    fn files_are_read_as_pem_or_der() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pem");
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(read_pem_file(&p, "CERTIFICATE")
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\nAA=="));
        let d = dir.path().join("a.der");
        std::fs::write(&d, [0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
        assert_eq!(
            read_pem_file(&d, "CERTIFICATE").unwrap(),
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
        );
        let e = read_pem_file(&dir.path().join("missing.pem"), "CERTIFICATE").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }
}
