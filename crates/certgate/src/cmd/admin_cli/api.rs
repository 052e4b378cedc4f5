//! `certgate api create|list|show|delete|override|inherit`: deployed APIs and their client
//! certificate overrides.
//!
//! `api override` changes only the fields it is given: it reads the current override
//! (`GET /apis/{id}/client-cert-auth`), applies the options and PUTs the result, so
//! `--required true` after `--dn …` keeps the DN override. `--inherit-required` and
//! `--inherit-dns` drop one field; when nothing is left the override is deleted.
//! `api show --json` prints the API's object with the client-cert-auth answer added under
//! `client_cert_auth`.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::client::{AdminClient, CliError};
use super::clients::print_dry_run_answer;
use super::render::{array, block, dn_list, plural, scalar, strings, table, text};
use super::ApiCmd;

/// Runs one `api` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: ApiCmd) -> Result<ExitCode, CliError> {
    match cmd {
        ApiCmd::Create {
            name,
            base_path,
            upstream,
        } => {
            let answer = client
                .post(
                    "/apis",
                    Some(&json!({"name": name, "base_path": base_path, "upstream": upstream})),
                )
                .await?;
            if json {
                answer.print_raw();
            } else {
                let a = answer.json()?;
                println!(
                    "Created API {} ({}): {} -> {}",
                    text(&a, "id"),
                    text(&a, "name"),
                    text(&a, "base_path"),
                    text(&a, "upstream")
                );
            }
        }
        ApiCmd::List => {
            let answer = client.get("/apis").await?;
            if json {
                answer.print_raw();
            } else {
                print!("{}", api_table(&answer.json()?));
            }
        }
        ApiCmd::Show { id } => {
            let api = client.get(&format!("/apis/{id}")).await?.json()?;
            let auth = client
                .get(&format!("/apis/{id}/client-cert-auth"))
                .await?
                .json()?;
            if json {
                let mut combined = api;
                if let Value::Object(m) = &mut combined {
                    m.insert("client_cert_auth".into(), auth);
                }
                println!("{combined}");
            } else {
                print!(
                    "{}",
                    block(
                        0,
                        &[
                            ("id", text(&api, "id")),
                            ("name", text(&api, "name")),
                            ("base path", text(&api, "base_path")),
                            ("upstream", text(&api, "upstream")),
                        ],
                    )
                );
                print!("{}", auth_view(&auth));
            }
        }
        ApiCmd::Delete { id } => {
            let answer = client.delete(&format!("/apis/{id}")).await?;
            if json {
                answer.print_raw();
            } else {
                println!("Deleted API {id}.");
            }
        }
        ApiCmd::Override {
            id,
            required,
            dn,
            no_dn_restriction,
            inherit_required,
            inherit_dns,
            dry_run,
        } => {
            let change = OverrideChange {
                required,
                dns: dn,
                no_dn_restriction,
                inherit_required,
                inherit_dns,
            };
            if change.is_empty() {
                return Err(CliError::Input(
                    "nothing to change: give --required, --dn, --no-dn-restriction, \
                     --inherit-required or --inherit-dns (or use `certgate api inherit`)"
                        .to_owned(),
                ));
            }
            let path = format!("/apis/{id}/client-cert-auth");
            let now = client.get(&path).await?.json()?;
            let body = change.apply(now.get("override"));
            if dry_run {
                let dry = format!("{path}?dry_run=true");
                let answer = if body.is_empty() {
                    client.delete(&dry).await?
                } else {
                    client.put(&dry, &Value::Object(body)).await?
                };
                print_dry_run_answer(&answer, json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let answer = if body.is_empty() {
                client.delete(&path).await?
            } else {
                client.put(&path, &Value::Object(body)).await?
            };
            if json {
                answer.print_raw();
            } else {
                let after = client.get(&path).await?.json()?;
                println!("Client certificate settings of API {id}:");
                print!("{}", auth_view(&after));
            }
        }
        ApiCmd::Inherit { id, dry_run: true } => {
            let answer = client
                .delete(&format!("/apis/{id}/client-cert-auth?dry_run=true"))
                .await?;
            print_dry_run_answer(&answer, json)?;
        }
        ApiCmd::Inherit { id, .. } => {
            let path = format!("/apis/{id}/client-cert-auth");
            let answer = client.delete(&path).await?;
            if json {
                answer.print_raw();
            } else {
                println!("API {id} now inherits every client certificate setting of the gateway.");
                let after = client.get(&path).await?.json()?;
                print!("{}", auth_view(&after));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The options of `api override`.
#[derive(Debug, Default)]
pub struct OverrideChange {
    /// `--required`.
    pub required: Option<bool>,
    /// `--dn`, repeated.
    pub dns: Vec<String>,
    /// `--no-dn-restriction`.
    pub no_dn_restriction: bool,
    /// `--inherit-required`.
    pub inherit_required: bool,
    /// `--inherit-dns`.
    pub inherit_dns: bool,
}

impl OverrideChange {
    /// True when no option was given.
    pub fn is_empty(&self) -> bool {
        self.required.is_none()
            && self.dns.is_empty()
            && !self.no_dn_restriction
            && !self.inherit_required
            && !self.inherit_dns
    }

    /// The PUT body: the current override with these changes; `null` fields are left out
    /// (absent inherits). An empty map means nothing is overridden any more.
    pub fn apply(&self, current: Option<&Value>) -> Map<String, Value> {
        let current = current.filter(|v| v.is_object());
        let keep = |key: &str| {
            current
                .and_then(|c| c.get(key))
                .filter(|v| !v.is_null())
                .cloned()
        };
        let required = if self.inherit_required {
            None
        } else {
            self.required.map(Value::Bool).or_else(|| keep("required"))
        };
        let dns = if self.inherit_dns {
            None
        } else if self.no_dn_restriction {
            Some(json!([]))
        } else if !self.dns.is_empty() {
            Some(json!(self.dns))
        } else {
            keep("trusted_dns")
        };
        let mut body = Map::new();
        if let Some(r) = required {
            body.insert("required".into(), r);
        }
        if let Some(d) = dns {
            body.insert("trusted_dns".into(), d);
        }
        body
    }
}

/// A one-cell summary of an API's override, for `api list`.
pub fn override_summary(o: Option<&Value>) -> String {
    let Some(o) = o.filter(|v| v.is_object()) else {
        return "inherits".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(r) = o.get("required").filter(|v| !v.is_null()) {
        parts.push(format!("required={}", scalar(Some(r))));
    }
    if let Some(d) = o.get("trusted_dns").and_then(Value::as_array) {
        if d.is_empty() {
            parts.push("no DN restriction".to_owned());
        } else {
            parts.push(plural(d.len(), "DN pattern", "DN patterns"));
        }
    }
    if parts.is_empty() {
        "inherits".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `api list`.
pub fn api_table(list: &Value) -> String {
    let apis = array(list);
    if apis.is_empty() {
        return "No APIs.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = apis
        .iter()
        .map(|a| {
            vec![
                text(a, "id"),
                text(a, "name"),
                text(a, "base_path"),
                text(a, "upstream"),
                override_summary(a.get("override")),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "BASE PATH",
            "UPSTREAM",
            "CLIENT CERT OVERRIDE",
        ],
        &rows,
    )
}

/// The `{"override", "effective"}` answer of `GET /apis/{id}/client-cert-auth`.
pub fn auth_view(auth: &Value) -> String {
    let o = auth.get("override").filter(|v| v.is_object());
    let mut out = String::new();
    match o {
        None => out.push_str("override:   none (inherits the gateway's settings)\n"),
        Some(o) => {
            out.push_str("override:\n");
            let required = match o.get("required") {
                Some(Value::Bool(b)) => b.to_string(),
                _ => "inherited".to_owned(),
            };
            let dns = match o.get("trusted_dns") {
                Some(Value::Array(_)) => {
                    dn_list(&strings(o, "trusted_dns"), "none (no DN restriction)")
                }
                _ => "inherited".to_owned(),
            };
            out.push_str(&block(2, &[("required", required), ("trusted DNs", dns)]));
        }
    }
    let e = auth.get("effective").cloned().unwrap_or(Value::Null);
    out.push_str("effective:\n");
    out.push_str(&block(
        2,
        &[
            ("mode", text(&e, "mode")),
            ("required", text(&e, "required")),
            (
                "trusted DNs",
                dn_list(&strings(&e, "trusted_dns"), "none (no DN restriction)"),
            ),
        ],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_merges_with_current() {
        let cur = json!({"required": null, "trusted_dns": ["CN=a"]});
        let c = OverrideChange {
            required: Some(true),
            ..Default::default()
        };
        assert_eq!(
            Value::Object(c.apply(Some(&cur))),
            json!({"required": true, "trusted_dns": ["CN=a"]})
        );
        let c = OverrideChange {
            no_dn_restriction: true,
            ..Default::default()
        };
        assert_eq!(Value::Object(c.apply(None)), json!({"trusted_dns": []}));
        let c = OverrideChange {
            dns: vec!["CN=x".into(), "CN=y".into()],
            inherit_required: true,
            ..Default::default()
        };
        assert_eq!(
            Value::Object(c.apply(Some(&json!({"required": false})))),
            json!({"trusted_dns": ["CN=x", "CN=y"]})
        );
        let c = OverrideChange {
            inherit_dns: true,
            ..Default::default()
        };
        assert!(c.apply(Some(&json!({"trusted_dns": ["CN=a"]}))).is_empty());
        assert!(OverrideChange::default().is_empty());
        assert!(!c.is_empty());
    }

    #[test]
    fn summaries() {
        assert_eq!(override_summary(None), "inherits");
        assert_eq!(override_summary(Some(&Value::Null)), "inherits");
        assert_eq!(
            override_summary(Some(&json!({"required": true, "trusted_dns": []}))),
            "required=true, no DN restriction"
        );
        assert_eq!(
            override_summary(Some(&json!({"required": null, "trusted_dns": ["a", "b"]}))),
            "2 DN patterns"
        );
    }

    #[test]
    fn auth_view_shows_override_and_effective() {
        let v = auth_view(&json!({
            "override": {"required": true, "trusted_dns": null},
            "effective": {"mode": "mtls", "required": true, "trusted_dns": ["CN=*,O=Acme", "CN=b"]}
        }));
        assert_eq!(
            v,
            "override:\n  required:     true\n  trusted DNs:  inherited\n\
             effective:\n  mode:         mtls\n  required:     true\n  trusted DNs:  CN=*,O=Acme\n                CN=b\n"
        );
        let v = auth_view(&json!({
            "override": null,
            "effective": {"mode": "none", "required": false, "trusted_dns": []}
        }));
        assert!(
            v.starts_with("override:   none (inherits the gateway's settings)\n"),
            "{v}"
        );
        assert!(
            v.ends_with("  trusted DNs:  none (no DN restriction)\n"),
            "{v}"
        );
    }
}
