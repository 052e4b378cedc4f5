//! `certgate dn list|add|remove|set|clear|test`: the gateway's `trusted_dns` list.
//!
//! The list is part of the gateway settings: the CLI reads it (`GET /api/v1/gateway`),
//! changes it locally and writes the whole list back (`PUT /api/v1/gateway/client-cert-auth`
//! with only `trusted_dns`); the admin API validates every pattern. Two operators editing the
//! list at the same instant can overwrite each other's change (last write wins). `--json`
//! prints, for `list`, the `trusted_dns` array; for the changes, the settings the PUT answered.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::client::{AdminClient, CliError};
use super::clients::print_dry_run_answer;
use super::pem::read_certificate_file;
use super::render::{plural, strings, text};
use super::DnCmd;

const EMPTY: &str = "No trusted DN patterns: a certificate's subject DN is not restricted.";

/// Runs one `dn` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: DnCmd) -> Result<ExitCode, CliError> {
    match cmd {
        DnCmd::List => {
            let (_, current) = current(client).await?;
            if json {
                println!("{}", Value::from(current));
            } else if current.is_empty() {
                println!("{EMPTY}");
            } else {
                for p in current {
                    println!("{p}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DnCmd::Add { patterns, dry_run } => {
            let (settings, current) = current(client).await?;
            let (next, skipped) = add(&current, &patterns);
            for p in &skipped {
                if !json {
                    println!("Already in the list: {p}");
                }
            }
            write(client, json, dry_run, settings, &current, next).await
        }
        DnCmd::Remove { patterns, dry_run } => {
            let (settings, current) = current(client).await?;
            let next = remove(&current, &patterns)?;
            write(client, json, dry_run, settings, &current, next).await
        }
        DnCmd::Set { patterns, dry_run } => {
            let (settings, current) = current(client).await?;
            write(client, json, dry_run, settings, &current, patterns).await
        }
        DnCmd::Clear { dry_run } => {
            let (settings, current) = current(client).await?;
            write(client, json, dry_run, settings, &current, Vec::new()).await
        }
        DnCmd::Test { dn, cert, patterns } => {
            let mut body = json!({ "patterns": patterns });
            match (dn, cert) {
                (Some(dn), _) => body["dn"] = json!(dn),
                (None, Some(path)) => {
                    body["certificate_pem"] = json!(read_certificate_file(&path)?)
                }
                // clap's ArgGroup makes one of them required.
                (None, None) => {
                    return Err(CliError::Input("give --dn DN or --cert FILE".to_owned()))
                }
            }
            let answer = client.post("/tools/dn-match", Some(&body)).await?;
            let result = answer.json()?;
            let matched = result.get("matched").and_then(Value::as_bool) == Some(true);
            if json {
                answer.print_raw();
            } else {
                print!("{}", test_result(&result));
            }
            // As `certgate dn-match`: 0 on a match, 1 on none.
            Ok(if matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// The gateway's `client_cert_auth` settings and their `trusted_dns`.
async fn current(client: &AdminClient) -> Result<(Value, Vec<String>), CliError> {
    let gateway = client.get("/gateway").await?.json()?;
    let settings = gateway
        .get("client_cert_auth")
        .cloned()
        .unwrap_or(Value::Null);
    let list = strings(&settings, "trusted_dns");
    Ok((settings, list))
}

/// PUTs `next` unless it equals `current`, then prints the outcome. A dry run always
/// asks the admin API (which answers who would lose or gain access) and changes nothing.
async fn write(
    client: &AdminClient,
    json: bool,
    dry_run: bool,
    settings: Value,
    current: &[String],
    next: Vec<String>,
) -> Result<ExitCode, CliError> {
    if dry_run {
        let answer = client
            .put(
                "/gateway/client-cert-auth?dry_run=true",
                &json!({ "trusted_dns": next }),
            )
            .await?;
        print_dry_run_answer(&answer, json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if next.as_slice() == current {
        if json {
            println!("{settings}");
        } else {
            println!("No change.");
            print_list(current);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let answer = client
        .put("/gateway/client-cert-auth", &json!({ "trusted_dns": next }))
        .await?;
    if json {
        answer.print_raw();
    } else {
        let saved = strings(&answer.json()?, "trusted_dns");
        print_list(&saved);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(list: &[String]) {
    if list.is_empty() {
        println!("{EMPTY}");
    } else {
        println!(
            "The gateway has {}:",
            plural(list.len(), "trusted DN pattern", "trusted DN patterns")
        );
        for p in list {
            println!("  {p}");
        }
    }
}

/// Appends the patterns not yet in the list (nor repeated in `patterns`); returns the new
/// list and the skipped ones.
pub fn add(current: &[String], patterns: &[String]) -> (Vec<String>, Vec<String>) {
    let mut next = current.to_vec();
    let mut skipped = Vec::new();
    for p in patterns {
        if next.contains(p) {
            skipped.push(p.clone());
        } else {
            next.push(p.clone());
        }
    }
    (next, skipped)
}

/// Removes the patterns (each must be in the list, exactly as written there); nothing is
/// removed when one is missing.
pub fn remove(current: &[String], patterns: &[String]) -> Result<Vec<String>, CliError> {
    if let Some(missing) = patterns.iter().find(|p| !current.contains(p)) {
        return Err(CliError::Other(format!(
            "\"{missing}\" is not in the gateway's trusted DN list (see `certgate dn list`); nothing was changed"
        )));
    }
    Ok(current
        .iter()
        .filter(|c| !patterns.contains(c))
        .cloned()
        .collect())
}

/// `dn test` output, like `certgate dn-match`: `dn: …` then `match: …` or `no match`.
pub fn test_result(result: &Value) -> String {
    let mut out = format!("dn: {}\n", text(result, "dn"));
    match result.get("pattern").and_then(Value::as_str) {
        Some(p) if result.get("matched").and_then(Value::as_bool) == Some(true) => {
            out.push_str(&format!("match: {p}\n"))
        }
        _ => out.push_str("no match\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn add_keeps_order_and_skips_present() {
        let (next, skipped) = add(&v(&["A", "B"]), &v(&["B", "C", "C"]));
        assert_eq!(next, v(&["A", "B", "C"]));
        assert_eq!(skipped, v(&["B", "C"]));
    }

    #[test]
    fn remove_refuses_unknown_and_changes_nothing() {
        assert_eq!(
            remove(&v(&["A", "B", "C"]), &v(&["B"])).unwrap(),
            v(&["A", "C"])
        );
        let e = remove(&v(&["A"]), &v(&["A", "Z"])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("\"Z\" is not in the gateway's trusted DN list"));
    }

    #[test]
    fn test_output() {
        assert_eq!(
            test_result(&json!({"dn": "CN=a,O=b", "matched": true, "pattern": "**,O=b"})),
            "dn: CN=a,O=b\nmatch: **,O=b\n"
        );
        assert_eq!(
            test_result(&json!({"dn": "CN=a", "matched": false, "pattern": null})),
            "dn: CN=a\nno match\n"
        );
    }
}
