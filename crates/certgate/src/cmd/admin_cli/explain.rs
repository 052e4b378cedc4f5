//! `certgate explain [--cert FILE] [--method M] [--host H] [--sni NAME] PATH` (SPEC §13): asks the node
//! why a request would be answered as it would, and prints one line per step. `--json`
//! prints the API's answer. Exit 0 when the status is 2xx, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::client::{AdminClient, CliError};
use super::pem::read_certificate_file;

/// The arguments of `certgate explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The client's certificate (PEM: leaf, then intermediates); none: no certificate.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The request method [default: GET].
    #[arg(long, value_name = "M")]
    pub method: Option<String>,
    /// The request's Host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The TLS SNI the client would send (with --host: the SPEC §16 Host check).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// The request path, e.g. /orders/1.
    pub path: String,
}

/// Runs `certgate explain`.
pub async fn run(
    client: &AdminClient,
    json: bool,
    args: ExplainArgs,
) -> Result<ExitCode, CliError> {
    let mut body = json!({ "path": args.path });
    if let Some(m) = args.method {
        body["method"] = json!(m);
    }
    if let Some(h) = args.host {
        body["host"] = json!(h);
    }
    if let Some(sni) = args.sni {
        body["sni"] = json!(sni);
    }
    if let Some(path) = args.cert {
        body["certificate_pem"] = json!(read_certificate_file(&path)?);
    }
    let answer = client.post("/tools/explain", Some(&body)).await?;
    let result = answer.json()?;
    if json {
        answer.print_raw();
    } else {
        print!("{}", render(&result));
    }
    let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The readable trace: the verdict, then one line per step.
fn render(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let status = v.get("status").and_then(Value::as_u64).unwrap_or(0);
    let mut out = format!("status: {status}");
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        out.push_str(&format!(" ({reason})"));
    }
    if s("outcome") == "tls_handshake_failure" {
        out.push_str(", refused in the TLS handshake");
    }
    out.push('\n');
    if let Some(name) = v.pointer("/api/name").and_then(Value::as_str) {
        out.push_str(&format!("api: {name}\n"));
    }
    if let Some(dn) = v.get("dn").and_then(Value::as_str) {
        out.push_str(&format!("dn: {dn}\n"));
    }
    for step in v
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or("");
        out.push_str(&format!(
            "{:<12} {:<5} {}\n",
            f("check"),
            f("result"),
            f("detail")
        ));
    }
    out
}
