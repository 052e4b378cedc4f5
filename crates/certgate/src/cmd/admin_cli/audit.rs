//! `certgate audit [--limit N] [--before ID]`: the audit log of SPEC §14
//! (`GET /api/v1/audit`), newest first.

use std::process::ExitCode;

use super::client::{AdminClient, CliError};
use super::render::{array, table, text};

/// `certgate audit` options.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many records (the API's default is 100, at most 1000).
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
    /// Only records older than this id (pages back).
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
}

/// Runs `certgate audit`.
pub async fn run(client: &AdminClient, json: bool, args: AuditArgs) -> Result<ExitCode, CliError> {
    let mut query = Vec::new();
    if let Some(l) = args.limit {
        query.push(format!("limit={l}"));
    }
    if let Some(b) = args.before {
        query.push(format!("before={b}"));
    }
    let path = if query.is_empty() {
        "/audit".to_string()
    } else {
        format!("/audit?{}", query.join("&"))
    };
    let answer = client.get(&path).await?;
    if json {
        answer.print_raw();
        return Ok(ExitCode::SUCCESS);
    }
    let records = answer.json()?;
    let rows: Vec<Vec<String>> = array(&records)
        .iter()
        .map(|r| {
            vec![
                text(r, "id"),
                text(r, "at"),
                text(r, "actor"),
                text(r, "action"),
                text(r, "target"),
                text(r, "generation"),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "AT", "ACTOR", "ACTION", "TARGET", "GENERATION"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
