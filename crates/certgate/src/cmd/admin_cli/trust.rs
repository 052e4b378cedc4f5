//! `certgate trust add|list|upgrade|remove`: the gateway's trust table.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::client::{AdminClient, CliError};
use super::clients::print_dry_run_answer;
use super::render::{array, block, expiry_flag, table, text};
use super::TrustCmd;

const TRUST_PATH: &str = "/gateway/trusted-certificates";

/// Runs one `trust` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: TrustCmd) -> Result<ExitCode, CliError> {
    match cmd {
        TrustCmd::Add { cert_id, version } => {
            let mut body = Map::new();
            body.insert("certificate_id".into(), json!(cert_id));
            if let Some(v) = version {
                body.insert("version".into(), json!(v));
            }
            let answer = client.post(TRUST_PATH, Some(&Value::Object(body))).await?;
            if json {
                answer.print_raw();
            } else {
                let row = answer.json()?;
                println!(
                    "Trusted certificate {} ({}) at version {}.",
                    text(&row, "certificate_id"),
                    text(&row, "name"),
                    text(&row, "version")
                );
                print!("{}", row_block(&row));
            }
        }
        TrustCmd::List => {
            let answer = client.get(TRUST_PATH).await?;
            if json {
                answer.print_raw();
            } else {
                print!("{}", trust_table(&answer.json()?));
            }
        }
        TrustCmd::Upgrade { cert_id } => {
            let answer = client
                .post(&format!("{TRUST_PATH}/{cert_id}/upgrade"), None)
                .await?;
            if json {
                answer.print_raw();
            } else {
                let row = answer.json()?;
                println!(
                    "Trusted certificate {} ({}) now pinned at version {}.",
                    text(&row, "certificate_id"),
                    text(&row, "name"),
                    text(&row, "version")
                );
                print!("{}", row_block(&row));
            }
        }
        TrustCmd::Remove {
            cert_id,
            dry_run: true,
        } => {
            let answer = client
                .delete(&format!("{TRUST_PATH}/{cert_id}?dry_run=true"))
                .await?;
            print_dry_run_answer(&answer, json)?;
        }
        TrustCmd::Remove { cert_id, .. } => {
            let answer = client.delete(&format!("{TRUST_PATH}/{cert_id}")).await?;
            if json {
                answer.print_raw();
            } else {
                println!("Removed certificate {cert_id} from the trust table.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `version/latest` of a row, e.g. `1/2`.
fn versions(row: &Value) -> String {
    format!("{}/{}", text(row, "version"), text(row, "latest_version"))
}

fn update_flag(row: &Value) -> String {
    if row.get("update_available").and_then(Value::as_bool) == Some(true) {
        "update available".to_owned()
    } else {
        "-".to_owned()
    }
}

/// `trust list` (and `gateway show`): one row per trusted certificate.
pub fn trust_table(list: &Value) -> String {
    let rows = array(list);
    if rows.is_empty() {
        return "No trusted certificates.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                text(r, "certificate_id"),
                text(r, "name"),
                versions(r),
                update_flag(r),
                text(r, "subject"),
                text(r, "expires_on"),
                text(r, "days_to_expiry"),
                expiry_flag(&text(r, "expiry_status")),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "VERSION",
            "UPDATE",
            "SUBJECT",
            "EXPIRES ON",
            "DAYS",
            "EXPIRY",
        ],
        &rows,
    )
}

fn row_block(row: &Value) -> String {
    block(
        2,
        &[
            ("version", versions(row)),
            ("update", update_flag(row)),
            ("subject", text(row, "subject")),
            ("fingerprint", text(row, "fingerprint_sha256")),
            ("issued on", text(row, "issued_on")),
            ("expires on", text(row, "expires_on")),
            ("days to expiry", text(row, "days_to_expiry")),
            ("expiry", expiry_flag(&text(row, "expiry_status"))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_flags_updates_and_expiry() {
        let list = json!([
            {"certificate_id": 1, "name": "root", "version": 1, "latest_version": 2,
             "update_available": true, "subject": "CN=Root", "expires_on": "2026-12-01T00:00:00Z",
             "days_to_expiry": 30, "expiry_status": "expiring_soon"},
            {"certificate_id": 2, "name": "old", "version": 1, "latest_version": 1,
             "update_available": false, "subject": "CN=Old", "expires_on": "2020-01-01T00:00:00Z",
             "days_to_expiry": -10, "expiry_status": "expired"}
        ]);
        assert_eq!(
            trust_table(&list),
            "ID  NAME  VERSION  UPDATE            SUBJECT  EXPIRES ON            DAYS  EXPIRY\n\
             1   root  1/2      update available  CN=Root  2026-12-01T00:00:00Z  30    EXPIRING SOON\n\
             2   old   1/1      -                 CN=Old   2020-01-01T00:00:00Z  -10   EXPIRED\n"
        );
        assert_eq!(trust_table(&json!([])), "No trusted certificates.\n");
    }
}
