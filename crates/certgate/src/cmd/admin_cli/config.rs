//! `certgate export [--yaml]` and `certgate apply -f FILE [--dry-run]`: the declarative
//! configuration of SPEC §15 (`GET`/`PUT /api/v1/config`). The file is sent as it is;
//! every rule is the admin API's.

use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;

use super::client::{AdminClient, CliError};
use super::clients::print_dry_run;

/// `certgate export` options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Print YAML instead of JSON.
    #[arg(long)]
    pub yaml: bool,
}

/// `certgate apply` options.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The document (JSON or YAML: by the extension .json, .yaml or .yml, else by its
    /// first character); `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: String,
    /// Change nothing: print what would change and who would lose or gain access.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `certgate export`: the document, JSON (indented) or YAML as the API wrote it.
pub async fn run_export(client: &AdminClient, args: ExportArgs) -> Result<ExitCode, CliError> {
    if args.yaml {
        let answer = client.get_as("/config", "application/yaml").await?;
        print!("{}", answer.body);
        if !answer.body.ends_with('\n') {
            println!();
        }
        return Ok(ExitCode::SUCCESS);
    }
    let doc = client.get("/config").await?.json()?;
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| CliError::Other(format!("cannot print the document: {e}")))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The media type of a document: by extension, else JSON when it starts with `{`.
fn media_type(file: &str, text: &[u8]) -> &'static str {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return "application/json";
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return "application/yaml";
    }
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "application/json",
        _ => "application/yaml",
    }
}

/// Runs `certgate apply`.
pub async fn run_apply(
    client: &AdminClient,
    json: bool,
    args: ApplyArgs,
) -> Result<ExitCode, CliError> {
    let mut text = Vec::new();
    let read = if args.file == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::read(&args.file).map(|t| text = t)
    };
    read.map_err(|e| CliError::Input(format!("cannot read {}: {e}", args.file)))?;
    let path = if args.dry_run {
        "/config?dry_run=true"
    } else {
        "/config"
    };
    let answer = client
        .put_raw(path, media_type(&args.file, &text), text)
        .await?;
    if json {
        answer.print_raw();
        return Ok(ExitCode::SUCCESS);
    }
    let body = answer.json()?;
    print_changes(&body, args.dry_run);
    if args.dry_run {
        print_dry_run(&body);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per change (`created  api:orders`), or a sentence when there is none.
fn print_changes(body: &Value, dry_run: bool) {
    let mut lines = Vec::new();
    for key in ["created", "updated", "deleted", "deactivated"] {
        for item in body
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            lines.push(format!("{key:<12} {}", item.as_str().unwrap_or_default()));
        }
    }
    if lines.is_empty() {
        println!("No change: the store already equals the document.");
        return;
    }
    let verb = if dry_run { "Would change" } else { "Changed" };
    println!("{verb} ({}):", lines.len());
    for l in lines {
        println!("  {l}");
    }
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn the_media_type_follows_the_extension_then_the_first_character() {
        assert_eq!(media_type("a.JSON", b"x: 1"), "application/json");
        assert_eq!(media_type("a.yml", b"{}"), "application/yaml");
        assert_eq!(media_type("a.yaml", b"{}"), "application/yaml");
        assert_eq!(media_type("-", b"  \n{\"apis\": []}"), "application/json");
        assert_eq!(media_type("conf", b"apis: []"), "application/yaml");
    }
}
