//! End-to-end tests of the binary's `serve` and `quickstart`: real processes, real TLS,
//! real curl, a real SQLite file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

/// A child process killed on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Proc {
        let mut cmd = certgate_testkit::command(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.env_remove("CERTGATE_ADMIN_TOKEN")
            .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn certgate");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// Reads stdout lines until one satisfies `stop` (bounded: 60 s).
    fn read_until(&self, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no expected output; got so far: {out:#?}"));
            let done = stop(&line);
            out.push(line);
            if done {
                return out;
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        certgate_testkit::command("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        for _ in 0..300 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("certgate did not exit within 30 s of SIGTERM");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one printed curl command with `-s -o /dev/null -w %{http_code}` added.
fn curl_status(cmdline: &str, cwd: &Path) -> String {
    let args: Vec<&str> = cmdline.split_whitespace().skip(1).collect();
    let out = certgate_testkit::command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(&args)
        .current_dir(cwd)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn quickstart_prints_curl_commands_that_give_200_401_403() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(
        &["quickstart", "--port", "0", "--admin-port", "0"],
        dir.path(),
        &[],
    );
    let out = p.read_until(|l| l.contains("Press Ctrl-C"));
    let curls: Vec<&String> = out.iter().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(curls.len(), 3, "{out:#?}");
    assert_eq!(curl_status(curls[0], dir.path()), "200", "{}", curls[0]);
    assert_eq!(curl_status(curls[1], dir.path()), "401", "{}", curls[1]);
    assert_eq!(curl_status(curls[2], dir.path()), "403", "{}", curls[2]);

    // The 200 shows the forwarded identity at the echo upstream.
    let args: Vec<&str> = curls[0].split_whitespace().skip(1).collect();
    let body = certgate_testkit::command("curl")
        .args(["-s", "--max-time", "20"])
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&body.stdout).expect("echo JSON");
    assert_eq!(echo["path"], "/hello");
    assert_eq!(
        echo["headers"]["x-client-cert-subject"],
        "CN=demo-client,O=certgate-quickstart"
    );
    assert!(echo["headers"]["x-client-cert-fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    assert!(p.terminate().success());
    // A second run re-creates its own directory.
    let p2 = Proc::spawn(
        &["quickstart", "--port", "0", "--admin-port", "0"],
        dir.path(),
        &[],
    );
    p2.read_until(|l| l.contains("Press Ctrl-C"));
    assert!(p2.terminate().success());
}

#[test]
fn quickstart_refuses_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    let out = certgate_testkit::command(BIN)
        .args([
            "quickstart",
            "--dir",
            "mine",
            "--port",
            "0",
            "--admin-port",
            "0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not made by quickstart"));
    assert!(dir.path().join("mine").exists());
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("certgate.toml");
    std::fs::write(
        &path,
        format!("data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n{extra}"),
    )
    .unwrap();
    path
}

fn addresses(out: &[String]) -> (String, String) {
    let line = out
        .iter()
        .find(|l| l.contains("proxy on"))
        .expect("address line");
    // certgate: proxy on https://127.0.0.1:P, admin API on http://127.0.0.1:Q
    let mut urls = line.split_whitespace().filter(|w| w.starts_with("http"));
    let proxy = urls.next().unwrap().trim_end_matches(',').to_owned();
    let admin = urls.next().unwrap().to_owned();
    (proxy, admin)
}

fn admin_curl(admin: &str, token: &str, args: &[&str]) -> (String, String) {
    let out = certgate_testkit::command("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args(args.iter().map(|a| a.replace("{admin}", admin)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

#[test]
fn serve_makes_a_token_once_keeps_state_across_restarts_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();

    let p = Proc::spawn(&["serve", "--config", cfg], dir.path(), &[]);
    let out = p.read_until(|l| l.contains("proxy on"));
    let token_line = out
        .iter()
        .find(|l| l.contains("admin token"))
        .expect("token printed on first start");
    let token = token_line.rsplit(' ').next().unwrap().to_owned();
    let token_file = dir.path().join("data/admin-token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The self-signed server certificate was made in the data dir.
    assert!(dir.path().join("data/server-selfsigned.pem").exists());

    let (proxy, admin) = addresses(&out);
    assert!(proxy.starts_with("https://"));
    let (status, _) = admin_curl(&admin, "wrong-token-wrong-token", &["{admin}/api/v1/apis"]);
    assert_eq!(status, "401");
    let (status, body) = admin_curl(
        &admin,
        &token,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"orders","base_path":"/orders","upstream":"http://127.0.0.1:9"}"#,
            "{admin}/api/v1/apis",
        ],
    );
    assert_eq!(status, "201", "{body}");
    // The proxy serves it at once: the closed upstream port gives the exact 502.
    let out502 = certgate_testkit::command("curl")
        .args(["-sk", "--max-time", "20", &format!("{proxy}/orders/1")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out502.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"code": 502, "message": "The upstream service could not be reached."})
    );
    assert!(p.terminate().success());

    // Restart: same token (not printed again), same APIs.
    let p = Proc::spawn(&["serve", "--config", cfg], dir.path(), &[]);
    let out = p.read_until(|l| l.contains("proxy on"));
    assert!(
        !out.iter().any(|l| l.contains("admin token")),
        "token printed again: {out:#?}"
    );
    let (_, admin) = addresses(&out);
    let (status, body) = admin_curl(&admin, &token, &["{admin}/api/v1/apis"]);
    assert_eq!(status, "200");
    let apis: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(apis[0]["name"], "orders");
    let (status, body) = admin_curl(&admin, &token, &["{admin}/readyz"]);
    assert_eq!(status, "200", "{body}");
    assert!(p.terminate().success());
}

#[test]
fn serve_refuses_a_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[truststore]\nauto_recovr = true\n");
    let out = certgate_testkit::command(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auto_recovr"), "{err}");
}

#[test]
fn env_token_and_force_recovery_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let token = "env-token-0123456789abcdef";
    let p = Proc::spawn(
        &["serve", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[
            ("CERTGATE_ADMIN_TOKEN", token),
            ("CERTGATE_TRUSTSTORE_FORCE_RECOVERY", "true"),
        ],
    );
    let out = p.read_until(|l| l.contains("proxy on"));
    assert!(!out.iter().any(|l| l.contains("admin token")));
    assert!(!dir.path().join("data/admin-token").exists());
    let (_, admin) = addresses(&out);
    let (status, body) = admin_curl(&admin, token, &["{admin}/api/v1/truststore"]);
    assert_eq!(status, "200");
    let ts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ts["status"], "ok");
    assert!(p.terminate().success());
}
