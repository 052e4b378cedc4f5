//! `certgate gateway show|set` and `certgate truststore status|recover`.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::client::{AdminClient, CliError};
use super::pem::{read_pem_file, split_pem_blocks};
use super::render::{block, dn_list, items, strings, text, yes_no};
use super::trust::trust_table;
use super::{
    GatewayCmd, GatewaySetArgs, HeaderFormatArg, ModeArg, TruststoreCmd, ValidationFailureArg,
};

/// Runs one `gateway` subcommand.
pub async fn run(client: &AdminClient, json: bool, cmd: GatewayCmd) -> Result<ExitCode, CliError> {
    match cmd {
        GatewayCmd::Show => {
            let answer = client.get("/gateway").await?;
            if json {
                answer.print_raw();
            } else {
                print!("{}", gateway_view(&answer.json()?));
            }
        }
        GatewayCmd::Set(args) => {
            let body = set_body(&args)?;
            if body.is_empty() {
                return Err(CliError::Input(
                    "nothing to change: give at least one setting (see `certgate gateway set --help`)"
                        .to_owned(),
                ));
            }
            let answer = client
                .put("/gateway/client-cert-auth", &Value::Object(body))
                .await?;
            if json {
                answer.print_raw();
            } else {
                println!("Gateway client certificate settings:");
                print!("{}", settings_view(&answer.json()?));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one `truststore` subcommand.
pub async fn run_truststore(
    client: &AdminClient,
    json: bool,
    cmd: TruststoreCmd,
) -> Result<ExitCode, CliError> {
    let answer = match cmd {
        TruststoreCmd::Status => client.get("/truststore").await?,
        TruststoreCmd::Recover => client.post("/truststore/recover", None).await?,
    };
    if json {
        answer.print_raw();
    } else {
        let status = answer.json()?;
        if matches!(cmd, TruststoreCmd::Recover) {
            println!("Trust store rebuilt from the store.");
        }
        print!("{}", truststore_view(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The PUT body of `gateway set`: only the options given (files read here, before sending).
pub fn set_body(a: &GatewaySetArgs) -> Result<Map<String, Value>, CliError> {
    let mut body = Map::new();
    if let Some(m) = a.mode {
        let m = match m {
            ModeArg::None => "none",
            ModeArg::Mtls => "mtls",
            ModeArg::Header => "header",
        };
        body.insert("mode".into(), json!(m));
    }
    if let Some(r) = a.required {
        body.insert("required".into(), json!(r));
    }
    if let Some(h) = &a.header_name {
        body.insert("header_name".into(), json!(h));
    }
    if let Some(f) = a.header_format {
        let f = match f {
            HeaderFormatArg::Auto => "auto",
            HeaderFormatArg::Pem => "pem",
            HeaderFormatArg::UrlEncodedPem => "url_encoded_pem",
            HeaderFormatArg::Base64Der => "base64_der",
            HeaderFormatArg::Xfcc => "xfcc",
        };
        body.insert("header_format".into(), json!(f));
    }
    if a.no_trusted_proxies {
        body.insert("trusted_proxies".into(), json!([]));
    } else if !a.trusted_proxy.is_empty() {
        body.insert("trusted_proxies".into(), json!(a.trusted_proxy));
    }
    if let Some(v) = a.validation_failure {
        let v = match v {
            ValidationFailureArg::Handshake => "handshake",
            ValidationFailureArg::Http => "http",
        };
        body.insert("validation_failure".into(), json!(v));
    }
    if a.no_crls {
        body.insert("crls".into(), json!([]));
    } else if !a.crl_file.is_empty() {
        let mut crls = Vec::new();
        for f in &a.crl_file {
            crls.extend(split_pem_blocks(&read_pem_file(f, "X509 CRL")?));
        }
        body.insert("crls".into(), json!(crls));
    }
    if let Some(v) = a.forward_identity {
        body.insert("forward_identity".into(), json!(v));
    }
    if let Some(v) = a.send_ca_names {
        body.insert("send_ca_names".into(), json!(v));
    }
    if a.no_forward_formats || !a.forward_format.is_empty() {
        body.insert("forward_formats".into(), json!(a.forward_format));
    }
    if let Some(v) = a.sni_host_check {
        body.insert("sni_host_check".into(), json!(v));
    }
    if let Some(v) = &a.revocation_failure {
        body.insert("revocation_failure".into(), json!(v));
    }
    if let Some(v) = &a.revocation {
        body.insert("revocation".into(), json!(v));
    }
    if a.no_revocation_fetch_hosts || !a.revocation_fetch_host.is_empty() {
        body.insert(
            "revocation_fetch_hosts".into(),
            json!(a.revocation_fetch_host),
        );
    }
    if let Some(v) = a.revocation_fetch_timeout_ms {
        body.insert("revocation_fetch_timeout_ms".into(), json!(v));
    }
    Ok(body)
}

/// The §2 settings as a `key: value` block.
pub fn settings_view(s: &Value) -> String {
    block(0, &settings_pairs(s))
}

fn settings_pairs(s: &Value) -> Vec<(&'static str, String)> {
    let proxies = strings(s, "trusted_proxies");
    let proxies = if proxies.is_empty() {
        "any peer".to_owned()
    } else {
        proxies.join("\n")
    };
    vec![
        ("mode", text(s, "mode")),
        ("required", yes_no(s, "required")),
        ("header name", text(s, "header_name")),
        ("header format", text(s, "header_format")),
        ("trusted proxies", proxies),
        (
            "trusted DNs",
            dn_list(&strings(s, "trusted_dns"), "none (no DN restriction)"),
        ),
        ("validation failure", text(s, "validation_failure")),
        ("CRLs", items(s, "crls").len().to_string()),
        ("forward identity", yes_no(s, "forward_identity")),
        ("send CA names", yes_no(s, "send_ca_names")),
        ("forward formats", strings(s, "forward_formats").join(", ")),
        ("SNI host check", yes_no(s, "sni_host_check")),
        ("revocation failure", text(s, "revocation_failure")),
        ("revocation", text(s, "revocation")),
        (
            "fetch hosts",
            match strings(s, "revocation_fetch_hosts") {
                hosts if hosts.is_empty() => "none (no fetch)".to_owned(),
                hosts => hosts.join("\n"),
            },
        ),
        (
            "fetch timeout",
            s.get("revocation_fetch_timeout_ms")
                .and_then(Value::as_u64)
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
        ),
    ]
}

/// `truststore status` as a block.
pub fn truststore_view(t: &Value) -> String {
    block(
        0,
        &[
            ("status", text(t, "status")),
            ("entries", text(t, "entries")),
            ("sha256", text(t, "sha256")),
            ("built at", text(t, "built_at")),
        ],
    )
}

/// `gateway show`: settings, trust table, trust store and warnings.
pub fn gateway_view(g: &Value) -> String {
    let mut pairs = vec![("SSL enabled", yes_no(g, "ssl_enabled"))];
    pairs.extend(settings_pairs(
        g.get("client_cert_auth").unwrap_or(&Value::Null),
    ));
    let mut out = block(0, &pairs);
    out.push_str("\nTrusted certificates:\n");
    out.push_str(&trust_table(
        g.get("trusted_certificates").unwrap_or(&Value::Null),
    ));
    out.push_str("\nTrust store:\n");
    let ts = truststore_view(g.get("truststore").unwrap_or(&Value::Null));
    for line in ts.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    let warnings = items(g, "warnings");
    if warnings.is_empty() {
        out.push_str("\nWarnings: none\n");
    } else {
        out.push_str("\nWarnings:\n");
        for w in warnings {
            out.push_str(&format!(
                "  WARNING {}: {}\n",
                text(w, "code"),
                text(w, "message")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> GatewaySetArgs {
        GatewaySetArgs::default()
    }

    #[test]
    fn set_sends_only_given_fields() {
        let mut a = args();
        a.mode = Some(ModeArg::Header);
        a.header_name = Some("X-SSL-Client-Cert".into());
        a.header_format = Some(HeaderFormatArg::UrlEncodedPem);
        a.trusted_proxy = vec!["10.0.0.0/8".into(), "::1/128".into()];
        assert_eq!(
            Value::Object(set_body(&a).unwrap()),
            json!({"mode": "header", "header_name": "X-SSL-Client-Cert",
                   "header_format": "url_encoded_pem", "trusted_proxies": ["10.0.0.0/8", "::1/128"]})
        );
        let mut a = args();
        a.required = Some(false);
        a.no_trusted_proxies = true;
        a.no_crls = true;
        a.validation_failure = Some(ValidationFailureArg::Http);
        a.forward_identity = Some(false);
        a.send_ca_names = Some(true);
        assert_eq!(
            Value::Object(set_body(&a).unwrap()),
            json!({"required": false, "trusted_proxies": [], "crls": [],
                   "validation_failure": "http", "forward_identity": false, "send_ca_names": true})
        );
    }

    #[test]
    fn crl_files_are_split_into_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("crls.pem");
        std::fs::write(
            &p,
            "-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n-----BEGIN X509 CRL-----\nBB==\n-----END X509 CRL-----\n",
        )
        .unwrap();
        let mut a = args();
        a.crl_file = vec![p];
        let body = set_body(&a).unwrap();
        assert_eq!(body["crls"].as_array().unwrap().len(), 2);
        let mut a = args();
        a.crl_file = vec![dir.path().join("nope.pem")];
        assert_eq!(set_body(&a).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn gateway_view_lists_warnings_and_status() {
        let g = json!({
            "ssl_enabled": true,
            "client_cert_auth": {"mode": "mtls", "required": false, "header_name": null,
                "header_format": "auto", "trusted_proxies": [], "trusted_dns": [],
                "validation_failure": "handshake", "crls": [], "forward_identity": true,
                "send_ca_names": false},
            "trusted_certificates": [],
            "truststore": {"status": "ok", "entries": 0, "sha256": "ab", "built_at": "2026-01-01T00:00:00Z"},
            "warnings": [{"code": "mtls_without_trusted_certificates", "message": "No certificate is trusted."}]
        });
        let v = gateway_view(&g);
        assert!(
            v.starts_with("SSL enabled:         yes\nmode:                mtls\n"),
            "{v}"
        );
        assert!(v.contains("trusted proxies:     any peer\n"), "{v}");
        assert!(
            v.contains("\nTrusted certificates:\nNo trusted certificates.\n"),
            "{v}"
        );
        assert!(
            v.contains("\nTrust store:\n  status:    ok\n  entries:   0\n"),
            "{v}"
        );
        assert!(v.ends_with(
            "\nWarnings:\n  WARNING mtls_without_trusted_certificates: No certificate is trusted.\n"
        ), "{v}");
    }
}
