//! `certgate clients`: the client inventory (SPEC §13, `GET /api/v1/clients`), and the
//! rendering of a dry run's answer (`--dry-run` of `trust remove`, `dn add|remove|set|clear`
//! and `api override|inherit`), which lists inventory clients too.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{AdminClient, CliError};
use super::render::{array, items, strings, table, text};

/// `certgate clients` options.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    /// Only clients that requested this API (by name).
    #[arg(long, value_name = "NAME")]
    pub api: Option<String>,
    /// Only clients with at least one denial.
    #[arg(long)]
    pub denied: bool,
}

/// Runs `certgate clients`.
pub async fn run(
    client: &AdminClient,
    json: bool,
    args: ClientsArgs,
) -> Result<ExitCode, CliError> {
    let mut query = Vec::new();
    if let Some(api) = &args.api {
        query.push(format!("api={}", percent_encode(api)));
    }
    if args.denied {
        query.push("denied=true".to_owned());
    }
    let path = if query.is_empty() {
        "/clients".to_owned()
    } else {
        format!("/clients?{}", query.join("&"))
    };
    let answer = client.get(&path).await?;
    if json {
        answer.print_raw();
        return Ok(ExitCode::SUCCESS);
    }
    let clients = answer.json()?;
    if array(&clients).is_empty() {
        println!("No client certificates seen.");
    } else {
        print!("{}", client_table(array(&clients), false));
    }
    Ok(ExitCode::SUCCESS)
}

/// The inventory's clients as a table; `with_api` adds the `API` column of dry-run entries.
pub fn client_table(clients: &[Value], with_api: bool) -> String {
    let mut headers = vec![
        "SUBJECT",
        "FINGERPRINT",
        "REQUESTS",
        "DENIED",
        "APIS",
        "LAST SEEN",
    ];
    if with_api {
        headers.insert(0, "API");
    }
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| {
            let mut row = vec![
                text(c, "subject"),
                short_fingerprint(&text(c, "fingerprint_sha256")),
                text(c, "requests"),
                denied(c),
                list_or_dash(&strings(c, "apis")),
                text(c, "last_seen"),
            ];
            if with_api {
                row.insert(0, text(c, "api"));
            }
            row
        })
        .collect();
    table(&headers, &rows)
}

/// Prints a dry run's answer: the API's JSON with `--json`, else [`print_dry_run`].
pub fn print_dry_run_answer(answer: &super::client::Answer, json: bool) -> Result<(), CliError> {
    if json {
        answer.print_raw();
    } else {
        print_dry_run(&answer.json()?);
    }
    Ok(())
}

/// Prints a dry run's answer: who would lose and who would gain access.
pub fn print_dry_run(answer: &Value) {
    println!("Dry run: nothing was changed.");
    for (key, title) in [
        ("would_lose_access", "Would lose access"),
        ("would_gain_access", "Would gain access"),
    ] {
        let list = items(answer, key);
        if list.is_empty() {
            println!("{title}: nobody.");
        } else {
            println!("{title} ({}):", list.len());
            print!("{}", client_table(list, true));
        }
    }
}

/// `sha256:` and the first 16 hex digits: enough to tell clients apart in a table
/// (`--json` has the whole fingerprint).
fn short_fingerprint(fp: &str) -> String {
    match fp.char_indices().nth(7 + 16) {
        Some((i, _)) => format!("{}…", &fp[..i]),
        None => fp.to_owned(),
    }
}

/// `reason=count` pairs, `-` for none.
fn denied(c: &Value) -> String {
    let pairs: Vec<String> = c
        .get("denied")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    list_or_dash(&pairs)
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(",")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_show_counts_and_reasons() {
        let c = json!({"subject": "CN=a", "fingerprint_sha256": "sha256:0123456789abcdef0123", "requests": 3,
            "denied": {"dn_mismatch": 2}, "apis": ["svc", "x"], "last_seen": "2026-12-04T10:00:00Z", "api": "svc"});
        let t = client_table(std::slice::from_ref(&c), false);
        assert_eq!(
            t.lines().nth(1),
            Some("CN=a     sha256:0123456789abcdef…  3         dn_mismatch=2  svc,x  2026-12-04T10:00:00Z"),
            "{t}"
        );
        let t = client_table(&[c], true);
        assert!(t.starts_with("API  SUBJECT"), "{t}");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
        assert_eq!(percent_encode("svc-1_x.y~"), "svc-1_x.y~");
    }
}
