//! `certgate quickstart` as a newcomer meets it (issue 10): commands that work from any
//! directory, a second run that refuses while one runs, keeps its state after one stopped
//! (`--reset` starts afresh), private keys only their owner can read, and Ctrl-C that logs
//! its shutdown like `serve`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{command, curl_status, sh, Proc};

const FREE_PORTS: [&str; 5] = ["quickstart", "--port", "0", "--admin-port", "0"];

/// The printed curl commands (200, 401, 403) and the admin example.
struct Printed {
    lines: Vec<String>,
}

impl Printed {
    fn curls(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("curl "))
            .map(String::as_str)
            .collect()
    }

    fn admin_example(&self) -> &str {
        self.lines
            .iter()
            .find(|l| l.ends_with(" gateway show"))
            .expect("admin example printed")
    }

    /// The admin API URL of the admin example (`CERTGATE_ADMIN_URL=…`).
    fn admin_url(&self) -> String {
        let ex = self.admin_example();
        let rest = ex
            .strip_prefix("CERTGATE_ADMIN_URL=")
            .expect("admin example starts with CERTGATE_ADMIN_URL=");
        rest.split_whitespace().next().unwrap().to_owned()
    }

    /// The proxy port of the printed curl commands.
    fn proxy_port(&self) -> String {
        let url = self.curls()[0].rsplit(' ').next().unwrap().to_owned();
        let after = url.strip_prefix("https://localhost:").unwrap();
        after.split('/').next().unwrap().to_owned()
    }
}

fn start(cwd: &Path, extra: &[&str]) -> (Proc, Printed) {
    let mut args = FREE_PORTS.to_vec();
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, cwd);
    let lines = p.read_until("Press Ctrl-C");
    (p, Printed { lines })
}

fn stop_with_ctrl_c(mut p: Proc) -> String {
    p.signal("INT");
    let st = p.wait();
    assert!(st.success(), "exit after SIGINT: {st:?}\n{}", p.stderr());
    p.stderr()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn admin_get(printed: &Printed, token: &str, path: &str) -> serde_json::Value {
    let (ok, body) = sh(
        &format!(
            "curl -sf --max-time 20 -H 'Authorization: Bearer {token}' {}{path}",
            printed.admin_url()
        ),
        "",
        Path::new("/"),
    );
    assert!(ok, "GET {path} failed");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn printed_commands_use_absolute_paths_and_work_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (p, printed) = start(dir.path(), &[]);
    let qs = std::fs::canonicalize(dir.path().join("certgate-quickstart")).unwrap();
    let curls = printed.curls();
    assert_eq!(curls.len(), 3, "{:#?}", printed.lines);
    for c in &curls {
        assert!(
            c.contains(&format!("--cacert {}/ca.pem", qs.display())),
            "not absolute: {c}"
        );
    }
    // Pasted in another directory they give the same answers.
    let elsewhere = tempfile::tempdir().unwrap();
    let got: Vec<String> = curls
        .iter()
        .map(|c| curl_status(c, elsewhere.path()))
        .collect();
    assert_eq!(got, ["200", "401", "403"], "{curls:#?}");

    // The admin example names the binary by its full path and works as printed.
    let example = printed.admin_example();
    assert!(
        example.contains(&format!(" {} gateway show", common::BIN)),
        "{example}"
    );
    let (ok, out) = sh(example, "", elsewhere.path());
    assert!(ok, "admin example failed: {example}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("mode:") && l.ends_with("mtls")),
        "{out}"
    );
    stop_with_ctrl_c(p);
}

#[test]
fn ctrl_c_logs_a_shutdown_line_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = start(dir.path(), &[]);
    let err = stop_with_ctrl_c(p);
    assert!(
        err.lines()
            .any(|l| l.contains("shutting down: draining in-flight requests")),
        "{err}"
    );
    // The pid file goes with the process.
    assert!(!dir
        .path()
        .join("certgate-quickstart/quickstart.pid")
        .exists());
}

#[test]
fn demo_private_keys_and_the_token_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = start(dir.path(), &[]);
    let qs = dir.path().join("certgate-quickstart");
    for f in [
        "server.key",
        "client.key",
        "intruder.key",
        "data/admin-token",
    ] {
        let mode = std::fs::metadata(qs.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}: {mode:o}");
    }
    stop_with_ctrl_c(p);
}

#[test]
fn a_second_quickstart_in_the_same_directory_refuses_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (first, printed) = start(dir.path(), &[]);
    let qs = dir.path().join("certgate-quickstart");
    let ca = read(&qs.join("ca.pem"));
    let token = read(&qs.join("data/admin-token"));

    for extra in [&[][..], &["--reset"][..]] {
        let mut args = FREE_PORTS.to_vec();
        args.extend_from_slice(extra);
        let out = common::output(command(&args, dir.path()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains(&format!(
                "a quickstart is already running in certgate-quickstart (pid {})",
                first.pid()
            )),
            "{extra:?}: {err}"
        );
        assert_eq!(read(&qs.join("ca.pem")), ca);
        assert_eq!(read(&qs.join("data/admin-token")), token);
        assert_eq!(
            read(&qs.join("quickstart.pid")).trim(),
            first.pid().to_string()
        );
    }
    // The first one still serves.
    assert_eq!(curl_status(printed.curls()[0], dir.path()), "200");
    stop_with_ctrl_c(first);
}

#[test]
fn a_second_quickstart_on_a_taken_port_refuses_before_making_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (first, printed) = start(dir.path(), &[]);
    let other = tempfile::tempdir().unwrap();
    let proxy_port = printed.proxy_port();
    let admin_port = printed.admin_url().rsplit(':').next().unwrap().to_owned();
    for (flag, port, free_flag) in [
        ("--port", proxy_port.as_str(), "--admin-port"),
        ("--admin-port", admin_port.as_str(), "--port"),
    ] {
        let out = common::output(command(
            &["quickstart", flag, port, free_flag, "0"],
            other.path(),
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("127.0.0.1:{port} is not free")) && err.contains(flag),
            "{err}"
        );
        assert!(
            !other.path().join("certgate-quickstart").exists(),
            "made its directory although it refused"
        );
    }
    stop_with_ctrl_c(first);
}

#[test]
fn a_later_run_reuses_pki_token_and_configuration_and_reset_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let qs = dir.path().join("certgate-quickstart");
    let (first, printed) = start(dir.path(), &[]);
    assert!(
        printed.lines[0].starts_with("certgate quickstart: made a new demo PKI"),
        "{:#?}",
        printed.lines
    );
    let ca = read(&qs.join("ca.pem"));
    let client_key = read(&qs.join("client.key"));
    let token = read(&qs.join("data/admin-token")).trim().to_owned();
    // A change made through the admin API while it runs.
    let (ok, _) = sh(
        &format!(
            "curl -sf --max-time 20 -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
             -d '{{\"name\":\"kept\",\"base_path\":\"/kept\",\"upstream\":\"http://127.0.0.1:9\"}}' {}/api/v1/apis",
            printed.admin_url()
        ),
        "",
        dir.path(),
    );
    assert!(ok, "POST /api/v1/apis");
    stop_with_ctrl_c(first);

    let (second, printed) = start(dir.path(), &[]);
    let abs = std::fs::canonicalize(&qs).unwrap();
    assert_eq!(
        printed.lines[0],
        format!(
            "certgate quickstart: reusing the demo PKI, admin token and configuration kept in {} (--reset starts afresh)",
            abs.display()
        )
    );
    assert_eq!(read(&qs.join("ca.pem")), ca);
    assert_eq!(read(&qs.join("client.key")), client_key);
    assert_eq!(read(&qs.join("data/admin-token")).trim(), token);
    let names = |apis: &serde_json::Value| -> Vec<String> {
        apis.as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let apis = admin_get(&printed, &token, "/api/v1/apis");
    assert_eq!(names(&apis), ["echo", "kept"]);
    // The kept echo API reaches this run's echo upstream: the printed commands still work.
    let got: Vec<String> = printed
        .curls()
        .iter()
        .map(|c| curl_status(c, dir.path()))
        .collect();
    assert_eq!(got, ["200", "401", "403"]);
    stop_with_ctrl_c(second);

    let (third, printed) = start(dir.path(), &["--reset"]);
    assert!(
        printed.lines[0].starts_with("certgate quickstart: made a new demo PKI"),
        "{:#?}",
        printed.lines
    );
    assert_ne!(read(&qs.join("ca.pem")), ca);
    let new_token = read(&qs.join("data/admin-token")).trim().to_owned();
    assert_ne!(new_token, token);
    let apis = admin_get(&printed, &new_token, "/api/v1/apis");
    assert_eq!(names(&apis), ["echo"]);
    let got: Vec<String> = printed
        .curls()
        .iter()
        .map(|c| curl_status(c, dir.path()))
        .collect();
    assert_eq!(got, ["200", "401", "403"]);
    stop_with_ctrl_c(third);
}
