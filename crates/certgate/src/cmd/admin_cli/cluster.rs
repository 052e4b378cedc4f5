//! `certgate cluster status`: the nodes of SPEC §12 (`GET /api/v1/cluster/nodes`).

use std::process::ExitCode;

use super::client::{AdminClient, CliError};
use super::render::{array, table, text};

/// `certgate cluster …`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCmd {
    /// List the nodes on this store: state (up, stale, down), applied generation and
    /// trust store status; the answering node first.
    Status,
}

/// Runs one `cluster` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: ClusterCmd) -> Result<ExitCode, CliError> {
    match cmd {
        ClusterCmd::Status => {
            let answer = client.get("/cluster/nodes").await?;
            if json {
                answer.print_raw();
                return Ok(ExitCode::SUCCESS);
            }
            let nodes = answer.json()?;
            let rows: Vec<Vec<String>> = array(&nodes)
                .iter()
                .map(|n| {
                    vec![
                        text(n, "id"),
                        text(n, "name"),
                        text(n, "state"),
                        text(n, "config_generation"),
                        text(&n["truststore"], "status"),
                        text(n, "proxy_address"),
                        text(n, "admin_address"),
                        text(n, "version"),
                        text(n, "last_seen"),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "ID",
                        "NAME",
                        "STATE",
                        "GENERATION",
                        "TRUSTSTORE",
                        "PROXY",
                        "ADMIN",
                        "VERSION",
                        "LAST SEEN"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
