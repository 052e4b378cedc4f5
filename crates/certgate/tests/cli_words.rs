//! Help and errors in the user's words (issue 10, points 5 and 6): each command's help lists
//! only the options it uses, no `[env: X=]` for an unset variable, a wrong certificate file
//! is named as such, a configuration that names a missing file exits 2 without leaving a
//! token behind, and `serve` says where it listens.

mod common;

use std::path::Path;
use std::process::Output;

use common::{command, Proc};

fn run(args: &[&str], cwd: &Path) -> Output {
    common::output(command(args, cwd))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn serve_and_quickstart_help_list_only_their_own_options() {
    let cwd = Path::new("/");
    let serve = text(&run(&["serve", "--help"], cwd).stdout);
    assert!(
        serve.contains("Usage: certgate serve [--config FILE]"),
        "{serve}"
    );
    assert!(serve.contains("--config <FILE>"), "{serve}");
    let quickstart = text(&run(&["quickstart", "--help"], cwd).stdout);
    for flag in ["--dir", "--port", "--admin-port", "--reset"] {
        assert!(quickstart.contains(flag), "{flag}: {quickstart}");
    }
    for (name, help) in [("serve", &serve), ("quickstart", &quickstart)] {
        for flag in ["--admin", "--token", "--json"] {
            assert!(
                !help.contains(&format!("{flag} ")) && !help.contains(&format!("{flag}\n")),
                "{name} --help lists {flag}:\n{help}"
            );
        }
    }
    // serve's help says what it exposes by default.
    assert!(
        serve.contains("0.0.0.0:8443") && serve.contains("127.0.0.1:9090"),
        "{serve}"
    );
}

#[test]
fn serve_and_quickstart_refuse_the_admin_client_options() {
    let dir = tempfile::tempdir().unwrap();
    // After the subcommand: not an option of serve (clap's usage error, exit 2).
    let out = run(&["serve", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unexpected argument '--json'"),
        "{}",
        text(&out.stderr)
    );
    // Before it: refused in words, and nothing is started or made.
    let cfg = write_config(dir.path(), "");
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    for args in [
        &["serve", "--config", cfg.as_str()][..],
        &["quickstart", "--port", "0", "--admin-port", "0"][..],
    ] {
        let mut all = vec!["--token", "0123456789abcdef0123"];
        all.extend_from_slice(args);
        let out = run(&all, dir.path());
        let cmd = args[0];
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert_eq!(
            text(&out.stderr),
            "certgate: --admin, --token and --json apply to the admin subcommands only \
             (cert, trust, dn, api, gateway, truststore)\n"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}

#[test]
fn admin_help_names_the_variables_without_an_empty_value() {
    let cwd = Path::new("/");
    for args in [&["api", "list", "--help"][..], &["--help"][..]] {
        let help = text(&run(args, cwd).stdout);
        assert!(!help.contains("[env:"), "{args:?}: {help}");
        assert!(
            help.contains("CERTGATE_ADMIN_URL") && help.contains("CERTGATE_ADMIN_TOKEN"),
            "{args:?}: {help}"
        );
        assert!(help.contains("--admin <URL>"), "{args:?}: {help}");
    }
    // A set token never shows in help.
    let mut cmd = command(&["api", "list", "--help"], cwd);
    cmd.env("CERTGATE_ADMIN_TOKEN", "secret-token-value-123");
    let help = text(&common::output(cmd).stdout);
    assert!(!help.contains("secret-token-value-123"), "{help}");
}

#[test]
fn cert_add_with_a_file_that_is_not_a_certificate_says_so_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "notes.txt",
            b"just some notes\n",
            "no -----BEGIN CERTIFICATE----- line, and not a DER certificate either",
        ),
        (
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "it holds no -----BEGIN CERTIFICATE----- block",
        ),
        (
            "bad64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "its base64 text does not decode",
        ),
        (
            "notx509.pem",
            b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
            "the block does not hold an X.509 certificate",
        ),
    ];
    for (name, contents, why) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, contents).unwrap();
        let f = f.to_str().unwrap();
        // An admin URL where nothing listens: had anything been sent, the error would say so.
        for args in [
            &["cert", "add", "--name", "x", "--file", f][..],
            &["cert", "new-version", "1", "--file", f][..],
        ] {
            let mut all = args.to_vec();
            all.extend([
                "--admin",
                "http://127.0.0.1:9",
                "--token",
                "t0123456789abcdef",
            ]);
            let out = run(&all, dir.path());
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert_eq!(
                text(&out.stderr),
                format!("error: {f} is not a PEM certificate ({why})\n"),
                "{args:?}"
            );
        }
    }
}

fn write_config(dir: &Path, listener_extra: &str) -> String {
    let path = dir.join("certgate.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\n{listener_extra}\n\
             [admin]\naddress = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_missing_server_certificate_exits_2_and_leaves_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "certificate = \"missing.pem\"\nprivate_key = \"missing.key\"",
    );
    let out = run(&["serve", "--config", &cfg], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "listener.certificate: cannot read {}",
            dir.path().join("missing.pem").display()
        )),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
    assert!(!dir.path().join("data/admin-token").exists());

    // A certificate that is there but the key is not: the same.
    std::fs::write(
        dir.path().join("missing.pem"),
        b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = run(&["serve", "--config", &cfg], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!dir.path().join("data/admin-token").exists());
}

#[test]
fn a_port_in_use_leaves_no_token_behind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let path = dir.path().join("certgate.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:{port}\"\n[admin]\naddress = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let out = run(&["serve", "--config", path.to_str().unwrap()], dir.path());
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("listener.address: cannot bind 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!dir.path().join("data/admin-token").exists());
}

#[test]
fn serve_logs_both_addresses_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let mut p = Proc::spawn(&["serve", "--config", &cfg], dir.path());
    let out = p.read_until("proxy on");
    let line = out.iter().find(|l| l.contains("proxy on")).unwrap();
    // certgate: proxy on https://127.0.0.1:P, admin API on http://127.0.0.1:Q
    let words: Vec<&str> = line.split_whitespace().collect();
    let proxy = words[3]
        .trim_end_matches(',')
        .trim_start_matches("https://");
    let admin = words[7].trim_start_matches("http://");
    assert!(
        line.starts_with("certgate: proxy on https://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains(", admin API on http://127.0.0.1:"), "{line}");

    let started: serde_json::Value = p
        .wait_stderr("certgate node started")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "certgate node started")
        .unwrap_or_else(|| panic!("no start line in the log: {}", p.stderr()));
    assert_eq!(started["fields"]["proxy"], proxy);
    assert_eq!(started["fields"]["admin"], admin);
    assert_eq!(started["fields"]["scheme"], "https");
    p.signal("TERM");
    assert!(p.wait().success());
    assert!(p.stderr().contains("shutting down"));
}
