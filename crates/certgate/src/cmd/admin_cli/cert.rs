//! `certgate cert add|list|show|new-version|delete`: certificate components.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::client::{AdminClient, CliError};
use super::pem::read_certificate_file;
use super::render::{array, block, items, table, text, yes_no};
use super::CertCmd;

/// Runs one `cert` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: CertCmd) -> Result<ExitCode, CliError> {
    match cmd {
        CertCmd::Add { name, file } => {
            let pem = read_certificate_file(&file)?;
            let answer = client
                .post("/certificates", Some(&json!({"name": name, "pem": pem})))
                .await?;
            if json {
                answer.print_raw();
            } else {
                let c = answer.json()?;
                println!(
                    "Created certificate component {} ({}), version {}.",
                    text(&c, "id"),
                    text(&c, "name"),
                    text(&c, "latest_version")
                );
                print!("{}", component(&c));
            }
        }
        CertCmd::List { lookup } => {
            let path = if lookup {
                "/certificates?lookup=true"
            } else {
                "/certificates"
            };
            let answer = client.get(path).await?;
            if json {
                answer.print_raw();
            } else {
                let list = answer.json()?;
                print!("{}", component_table(&list));
            }
        }
        CertCmd::Show { id, pem, version } => {
            let answer = client.get(&format!("/certificates/{id}")).await?;
            if json {
                answer.print_raw();
            } else {
                let c = answer.json()?;
                if pem {
                    print!("{}", version_pem(&c, version)?);
                } else {
                    print!("{}", component(&c));
                }
            }
        }
        CertCmd::NewVersion { id, file } => {
            let pem = read_certificate_file(&file)?;
            let answer = client
                .post(
                    &format!("/certificates/{id}/versions"),
                    Some(&json!({"pem": pem})),
                )
                .await?;
            if json {
                answer.print_raw();
            } else {
                let v = answer.json()?;
                println!(
                    "Created version {} of certificate component {id}.",
                    text(&v, "version")
                );
                print!("{}", version_block(&v));
            }
        }
        CertCmd::Delete { id } => {
            let answer = client.delete(&format!("/certificates/{id}")).await?;
            if json {
                answer.print_raw();
            } else {
                println!("Deactivated certificate component {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The version object named by `latest_version` (or the last one listed).
fn latest(c: &Value) -> Option<&Value> {
    let versions = items(c, "versions");
    let want = c.get("latest_version").and_then(Value::as_i64);
    versions
        .iter()
        .find(|v| want.is_some() && v.get("version").and_then(Value::as_i64) == want)
        .or_else(|| versions.last())
}

/// `cert list`: one row per component, with its latest version's subject and expiry.
pub fn component_table(list: &Value) -> String {
    let components = array(list);
    if components.is_empty() {
        return "No certificate components.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = components
        .iter()
        .map(|c| {
            let l = latest(c);
            vec![
                text(c, "id"),
                text(c, "name"),
                yes_no(c, "active"),
                text(c, "latest_version"),
                l.map_or("-".to_owned(), |v| text(v, "subject")),
                l.map_or("-".to_owned(), |v| text(v, "not_after")),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "ACTIVE", "LATEST", "SUBJECT", "NOT AFTER"],
        &rows,
    )
}

/// `cert show`: the component and each version's details.
pub fn component(c: &Value) -> String {
    let mut out = block(
        0,
        &[
            ("id", text(c, "id")),
            ("name", text(c, "name")),
            ("active", yes_no(c, "active")),
            ("latest version", text(c, "latest_version")),
        ],
    );
    for v in items(c, "versions") {
        out.push('\n');
        out.push_str(&version_block(v));
    }
    out
}

fn version_block(v: &Value) -> String {
    let mut out = format!("version {}\n", text(v, "version"));
    out.push_str(&block(
        2,
        &[
            ("subject", text(v, "subject")),
            ("issuer", text(v, "issuer")),
            ("serial", text(v, "serial")),
            ("fingerprint", text(v, "fingerprint_sha256")),
            ("not before", text(v, "not_before")),
            ("not after", text(v, "not_after")),
            ("CA", yes_no(v, "is_ca")),
            ("created", text(v, "created_at")),
        ],
    ));
    out
}

/// `cert show --pem [--version V]`: one version's PEM exactly as stored.
fn version_pem(c: &Value, version: Option<i64>) -> Result<String, CliError> {
    let v = match version {
        Some(n) => items(c, "versions")
            .iter()
            .find(|v| v.get("version").and_then(Value::as_i64) == Some(n)),
        None => latest(c),
    };
    let pem = v.and_then(|v| v.get("pem")).and_then(Value::as_str);
    match (pem, version) {
        (Some(p), _) if p.ends_with('\n') => Ok(p.to_owned()),
        (Some(p), _) => Ok(format!("{p}\n")),
        (None, Some(n)) => Err(CliError::Other(format!(
            "certificate component {} has no version {n}",
            text(c, "id")
        ))),
        (None, None) => Err(CliError::Other(format!(
            "the admin API gave no PEM for certificate component {}",
            text(c, "id")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "id": 3, "name": "root-ca", "active": true, "latest_version": 2,
            "versions": [
                {"version": 1, "subject": "CN=Old", "not_after": "2026-01-01T00:00:00Z", "pem": "P1\n"},
                {"version": 2, "subject": "CN=Root,O=Acme", "issuer": "CN=Root,O=Acme",
                 "serial": "0a", "fingerprint_sha256": "sha256:ab", "not_before": "2025-01-01T00:00:00Z",
                 "not_after": "2027-01-01T00:00:00Z", "is_ca": true, "created_at": "2025-06-01T00:00:00Z",
                 "pem": "P2"}
            ]
        })
    }

    #[test]
    fn list_shows_latest_version() {
        let t = component_table(&json!([sample()]));
        assert_eq!(
            t,
            "ID  NAME     ACTIVE  LATEST  SUBJECT         NOT AFTER\n\
             3   root-ca  yes     2       CN=Root,O=Acme  2027-01-01T00:00:00Z\n"
        );
        assert_eq!(component_table(&json!([])), "No certificate components.\n");
    }

    #[test]
    fn show_lists_every_version() {
        let s = component(&sample());
        assert!(
            s.starts_with("id:              3\nname:            root-ca\n"),
            "{s}"
        );
        assert!(s.contains("version 1\n  subject:      CN=Old\n"), "{s}");
        assert!(s.contains("  CA:           yes\n"), "{s}");
    }

    #[test]
    fn pem_of_latest_or_given_version() {
        assert_eq!(version_pem(&sample(), None).unwrap(), "P2\n");
        assert_eq!(version_pem(&sample(), Some(1)).unwrap(), "P1\n");
        let e = version_pem(&sample(), Some(9)).unwrap_err();
        assert_eq!(e.to_string(), "certificate component 3 has no version 9");
    }
}
