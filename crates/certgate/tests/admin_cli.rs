//! The admin CLI (`certgate cert|trust|dn|api|gateway|truststore`) against the real admin API.
//!
//! Each test starts `certgate_admin::serve` in-process on 127.0.0.1:0 over a SQLite file in a
//! tempdir, then runs the real `certgate` binary and checks what an operator sees: stdout,
//! stderr, exit status, and the state read back through the CLI's `--json` output.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

const TOKEN: &str = "test-admin-token-0123456789";

/// A running admin API with its data dir; stops when dropped.
struct Admin {
    url: String,
    dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    rt: tokio::runtime::Runtime,
}

impl Admin {
    fn start(ssl_enabled: bool) -> Admin {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let data_dir = dir.path().to_path_buf();
        let url = rt.block_on(async move {
            let db = data_dir.join("certgate.db");
            let store = certgate_store::Store::open(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            store.set_ssl_enabled(ssl_enabled).await.unwrap();
            let ts = certgate_store::TrustStore::open(&data_dir, true);
            ts.start(&store.load_config().await.unwrap(), false);
            let state = certgate_admin::AdminState::new(
                store,
                Arc::new(ts),
                TOKEN.to_owned(),
                certgate_admin::noop_reload(),
                None,
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(certgate_admin::serve(listener, state, async move {
                let _ = rx.await;
            }));
            format!("http://{addr}")
        });
        Admin {
            url,
            dir,
            shutdown: Some(tx),
            rt,
        }
    }

    /// Runs `certgate ARGS --admin URL --token TOKEN` (options after the subcommand).
    fn cli(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &self.url, "--token", TOKEN]);
        run(&all, &[])
    }

    /// Runs `certgate --json ARGS …` and parses stdout; the command must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = self.cli(&all);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {:?}", r.stdout))
    }

    /// Writes a file in the data dir and returns its path.
    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Let the server task see the signal before the runtime is torn down.
        self.rt.block_on(tokio::task::yield_now());
    }
}

/// The outcome of one CLI run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a clean admin environment plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = certgate_testkit::command(env!("CARGO_BIN_EXE_certgate"));
    cmd.args(args)
        .env_remove("CERTGATE_ADMIN_URL")
        .env_remove("CERTGATE_ADMIN_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A self-signed CA certificate `CN=<cn>,O=Acme` valid from yesterday for `days` days
/// (negative: already expired). Returns its PEM.
fn ca_pem(cn: &str, days: i64) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let now = OffsetDateTime::now_utc();
    if days >= 0 {
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(days);
    } else {
        params.not_before = now - Duration::days(400);
        params.not_after = now + Duration::days(days);
    }
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn readme_workflow_import_trust_dn_api_override_inherit() {
    let admin = Admin::start(true);
    let ca = admin.file("ca.pem", ca_pem("Acme Root CA", 3650).as_bytes());

    // Import the CA.
    let r = admin.cli(&[
        "cert",
        "add",
        "--name",
        "acme-root",
        "--file",
        path_str(&ca),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Created certificate component 1 (acme-root), version 1.\n"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("  subject:      CN=Acme Root CA,O=Acme\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("  CA:           yes\n"), "{r:?}");

    let r = admin.cli(&["cert", "list"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(
        lines[0].starts_with("ID  NAME       ACTIVE  LATEST  SUBJECT"),
        "{r:?}"
    );
    assert!(
        lines[1].starts_with("1   acme-root  yes     1       CN=Acme Root CA,O=Acme"),
        "{r:?}"
    );

    // Trust it.
    let r = admin.cli(&["trust", "add", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Trusted certificate 1 (acme-root) at version 1.\n"),
        "{r:?}"
    );
    let r = admin.cli(&["trust", "list"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(
        lines[0].starts_with("ID  NAME       VERSION  UPDATE  SUBJECT"),
        "{r:?}"
    );
    assert!(
        lines[1].starts_with("1   acme-root  1/1      -       CN=Acme Root CA,O=Acme"),
        "{r:?}"
    );
    assert!(lines[1].ends_with("  ok"), "{r:?}");
    let rows = admin.json(&["trust", "list"]);
    assert_eq!(rows[0]["certificate_id"], 1);
    assert_eq!(rows[0]["expiry_status"], "ok");

    // Restrict the gateway to DN patterns, turn on mtls.
    let r = admin.cli(&["dn", "add", "CN=*,O=Acme", "**,OU=Payments,**"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "The gateway has 2 trusted DN patterns:\n  CN=*,O=Acme\n  **,OU=Payments,**\n"
    );
    let r = admin.cli(&["dn", "list"]);
    assert_eq!(r.stdout, "CN=*,O=Acme\n**,OU=Payments,**\n", "{r:?}");
    let r = admin.cli(&["gateway", "set", "--mode", "mtls", "--required", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\nmode:                mtls\n"), "{r:?}");
    assert!(r.stdout.contains("\nrequired:            yes\n"), "{r:?}");

    // Deploy an API, override it, then inherit again.
    let r = admin.cli(&[
        "api",
        "create",
        "--name",
        "orders",
        "--base-path",
        "/orders",
        "--upstream",
        "http://127.0.0.1:9/v1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "Created API 1 (orders): /orders -> http://127.0.0.1:9/v1\n"
    );
    let r = admin.cli(&["api", "list"]);
    assert!(r.stdout.contains("1   orders  /orders"), "{r:?}");
    assert!(
        r.stdout.lines().nth(1).unwrap().ends_with("inherits"),
        "{r:?}"
    );

    let r = admin.cli(&[
        "api",
        "override",
        "1",
        "--required",
        "false",
        "--dn",
        "CN=partner,**",
        "--dn",
        "CN=other,O=Acme",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "Client certificate settings of API 1:\n\
         override:\n  required:     false\n  trusted DNs:  CN=partner,**\n                CN=other,O=Acme\n\
         effective:\n  mode:         mtls\n  required:     false\n  trusted DNs:  CN=partner,**\n                CN=other,O=Acme\n"
    );
    let shown = admin.json(&["api", "show", "1"]);
    assert_eq!(shown["name"], "orders");
    assert_eq!(
        shown["client_cert_auth"]["effective"]["trusted_dns"],
        serde_json::json!(["CN=partner,**", "CN=other,O=Acme"])
    );
    let r = admin.cli(&["api", "list"]);
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("required=false, 2 DN patterns"),
        "{r:?}"
    );

    // Changing only the DN part keeps the `required` override.
    let r = admin.cli(&["api", "override", "1", "--no-dn-restriction"]);
    assert_eq!(r.code, 0, "{r:?}");
    let auth = admin.json(&["api", "show", "1"])["client_cert_auth"].clone();
    assert_eq!(auth["override"]["required"], false);
    assert_eq!(auth["override"]["trusted_dns"], serde_json::json!([]));
    assert_eq!(auth["effective"]["trusted_dns"], serde_json::json!([]));

    let r = admin.cli(&["api", "show", "1"]);
    assert_eq!(
        r.stdout,
        "id:         1\nname:       orders\nbase path:  /orders\nupstream:   http://127.0.0.1:9/v1\n\
         override:\n  required:     false\n  trusted DNs:  none (no DN restriction)\n\
         effective:\n  mode:         mtls\n  required:     false\n  trusted DNs:  none (no DN restriction)\n"
    );

    let r = admin.cli(&["api", "inherit", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(
            "API 1 now inherits every client certificate setting of the gateway.\n\
             override:   none (inherits the gateway's settings)\n"
        ),
        "{r:?}"
    );
    let auth = admin.json(&["api", "show", "1"])["client_cert_auth"].clone();
    assert_eq!(auth["override"], Value::Null);
    assert_eq!(auth["effective"]["required"], true);
    assert_eq!(
        auth["effective"]["trusted_dns"],
        serde_json::json!(["CN=*,O=Acme", "**,OU=Payments,**"])
    );

    // Dropping the last overridden field removes the override.
    let r = admin.cli(&["api", "override", "1", "--required", "false"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("override:\n  required:     false\n  trusted DNs:  inherited\n"),
        "{r:?}"
    );
    let r = admin.cli(&["api", "override", "1", "--inherit-required"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("\noverride:   none (inherits the gateway's settings)\n"),
        "{r:?}"
    );
    let auth = admin.json(&["api", "show", "1"])["client_cert_auth"].clone();
    assert_eq!(auth["override"], Value::Null);

    // The whole picture, and the trust store.
    let r = admin.cli(&["gateway", "show"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("SSL enabled:         yes\nmode:                mtls\n"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("trusted DNs:         CN=*,O=Acme\n                     **,OU=Payments,**\n"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("\nTrusted certificates:\nID  NAME"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("\nTrust store:\n  status:    ok\n  entries:   1\n"),
        "{r:?}"
    );
    assert!(r.stdout.ends_with("\nWarnings: none\n"), "{r:?}");
    let g = admin.json(&["gateway", "show"]);
    assert_eq!(g["client_cert_auth"]["mode"], "mtls");
    assert_eq!(g["truststore"]["status"], "ok");

    let r = admin.cli(&["truststore", "status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("status:    ok\nentries:   1\nsha256:    "),
        "{r:?}"
    );
    let r = admin.cli(&["truststore", "recover"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Trust store rebuilt from the store.\nstatus:    ok\nentries:   1\n"),
        "{r:?}"
    );
    let t = admin.json(&["truststore", "status"]);
    assert_eq!(t["status"], "ok");
    assert_eq!(t["entries"], 1);

    // Remove the API and the patterns.
    let r = admin.cli(&["api", "delete", "1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Deleted API 1.\n"),
        "{r:?}"
    );
    assert_eq!(admin.json(&["api", "list"]), serde_json::json!([]));
    let r = admin.cli(&["dn", "remove", "CN=*,O=Acme"]);
    assert_eq!(
        r.stdout,
        "The gateway has 1 trusted DN pattern:\n  **,OU=Payments,**\n"
    );
    let r = admin.cli(&["dn", "clear"]);
    assert_eq!(
        r.stdout,
        "No trusted DN patterns: a certificate's subject DN is not restricted.\n"
    );
    assert_eq!(admin.json(&["dn", "list"]), serde_json::json!([]));
}

#[test]
fn versions_upgrade_expiry_flags_and_pem() {
    let admin = Admin::start(true);
    let v1 = ca_pem("Acme Root CA", 30);
    let v2 = ca_pem("Acme Root CA G2", 3650);
    let f1 = admin.file("v1.pem", v1.as_bytes());
    let f2 = admin.file("v2.pem", v2.as_bytes());

    assert_eq!(
        admin
            .cli(&["cert", "add", "--name", "root", "--file", path_str(&f1)])
            .code,
        0
    );
    let r = admin.cli(&["trust", "add", "1", "--version", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("  expiry:          EXPIRING SOON\n"),
        "{r:?}"
    );

    let r = admin.cli(&["cert", "new-version", "1", "--file", path_str(&f2)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Created version 2 of certificate component 1.\nversion 2\n  subject:      CN=Acme Root CA G2,O=Acme\n"),
        "{r:?}"
    );

    let r = admin.cli(&["trust", "list"]);
    let row = r.stdout.lines().nth(1).unwrap().to_owned();
    assert!(
        row.starts_with("1   root  1/2      update available  CN=Acme Root CA,O=Acme"),
        "{r:?}"
    );
    assert!(row.ends_with("EXPIRING SOON"), "{r:?}");
    let r = admin.cli(&["gateway", "show"]);
    assert!(
        r.stdout
            .contains("  WARNING trusted_certificate_update_available: "),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("  WARNING trusted_certificate_expiring: "),
        "{r:?}"
    );

    let r = admin.cli(&["trust", "upgrade", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Trusted certificate 1 (root) now pinned at version 2.\n  version:         2/2\n  update:          -\n  subject:         CN=Acme Root CA G2,O=Acme\n"),
        "{r:?}"
    );
    let rows = admin.json(&["trust", "list"]);
    assert_eq!(rows[0]["version"], 2);
    assert_eq!(rows[0]["update_available"], false);
    assert_eq!(rows[0]["expiry_status"], "ok");

    // The stored PEM comes back exactly.
    assert_eq!(admin.cli(&["cert", "show", "1", "--pem"]).stdout, v2);
    assert_eq!(
        admin
            .cli(&["cert", "show", "1", "--pem", "--version", "1"])
            .stdout,
        v1
    );
    let c = admin.json(&["cert", "show", "1"]);
    assert_eq!(c["latest_version"], 2);
    assert_eq!(c["versions"].as_array().unwrap().len(), 2);
    let r = admin.cli(&["cert", "show", "1"]);
    assert!(
        r.stdout
            .starts_with("id:              1\nname:            root\nactive:          yes\nlatest version:  2\n\nversion 1\n"),
        "{r:?}"
    );

    // An expired certificate can be imported but neither looked up nor trusted.
    let expired = admin.file("expired.pem", ca_pem("Old CA", -5).as_bytes());
    let r = admin.cli(&["cert", "add", "--name", "old", "--file", path_str(&expired)]);
    assert_eq!(r.code, 0, "{r:?}");
    let lookup = admin.json(&["cert", "list", "--lookup"]);
    let names: Vec<&str> = lookup
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root"]);
    let r = admin.cli(&["trust", "add", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 422)\n"), "{r:?}");
    assert_eq!(admin.json(&["trust", "list"]).as_array().unwrap().len(), 1);

    // Deactivation is refused while trusted, then works.
    let r = admin.cli(&["cert", "delete", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 409)\n"), "{r:?}");
    let r = admin.cli(&["trust", "remove", "1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Removed certificate 1 from the trust table.\n")
    );
    assert_eq!(
        admin.cli(&["trust", "list"]).stdout,
        "No trusted certificates.\n"
    );
    let r = admin.cli(&["cert", "delete", "1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Deactivated certificate component 1.\n")
    );
    assert_eq!(
        admin.cli(&["cert", "list", "--lookup"]).stdout,
        "No certificate components.\n"
    );
    assert_eq!(admin.json(&["cert", "list"])[0]["active"], false);
    let r = admin.cli(&["cert", "list"]);
    assert!(r.stdout.contains("\n1   root  no      2 "), "{r:?}");
}

#[test]
fn api_errors_are_printed_with_code_and_status() {
    let admin = Admin::start(false);
    let ca = admin.file("ca.pem", ca_pem("Acme Root CA", 365).as_bytes());
    assert_eq!(
        admin
            .cli(&["cert", "add", "--name", "root", "--file", path_str(&ca)])
            .code,
        0
    );

    // Trusting while SSL is off.
    let r = admin.cli(&["trust", "add", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "error: Certificates can be added only when SSL is enabled. (ssl_disabled, HTTP 409)\n"
    );
    assert_eq!(r.stdout, "");
    assert_eq!(admin.json(&["trust", "list"]), serde_json::json!([]));

    // mtls while SSL is off.
    let r = admin.cli(&["gateway", "set", "--mode", "mtls"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with("(ssl_disabled, HTTP 409)\n"), "{r:?}");

    // A bad pattern: the API's message with the position; nothing changed.
    assert_eq!(admin.cli(&["dn", "add", "CN=a"]).code, 0);
    let r = admin.cli(&["dn", "add", "CN=a,,O=b"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "error: invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN (invalid_dn_pattern, HTTP 422)\n"
    );
    assert_eq!(admin.json(&["dn", "list"]), serde_json::json!(["CN=a"]));
    let r = admin.cli(&[
        "api",
        "create",
        "--name",
        "a",
        "--base-path",
        "/a",
        "--upstream",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = admin.cli(&["api", "override", "1", "--dn", "CN=x,,"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: invalid DN pattern \"CN=x,,\" at position "),
        "{r:?}"
    );
    assert!(
        r.stderr.ends_with("(invalid_dn_pattern, HTTP 422)\n"),
        "{r:?}"
    );

    // Removing a pattern that is not there changes nothing and sends nothing.
    let r = admin.cli(&["dn", "remove", "CN=zzz"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: \"CN=zzz\" is not in the gateway's trusted DN list"),
        "{r:?}"
    );

    // Unknown ids.
    let r = admin.cli(&["api", "show", "99"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 404)\n"), "{r:?}");
    let r = admin.cli(&["cert", "show", "42"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 404)\n"), "{r:?}");

    // A duplicate base path.
    let r = admin.cli(&[
        "api",
        "create",
        "--name",
        "b",
        "--base-path",
        "/a",
        "--upstream",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 422)\n"), "{r:?}");

    // A file that is not a certificate: named in the user's words, nothing sent (exit 2).
    let junk = admin.file(
        "junk.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let r = admin.cli(&["cert", "add", "--name", "junk", "--file", path_str(&junk)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr,
        format!(
            "error: {} is not a PEM certificate (the block does not hold an X.509 certificate)\n",
            junk.display()
        )
    );

    // A wrong token.
    let r = run(
        &["cert", "list", "--admin", &admin.url, "--token", "wrong"],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(r.stderr.ends_with("(unauthorized, HTTP 401)\n"), "{r:?}");
}

#[test]
fn local_errors_exit_2_before_sending_and_unreachable_node_exits_1() {
    // A port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");

    // No token: exit 2 with advice, and no connection attempt (that would be exit 1).
    let r = run(&["truststore", "status", "--admin", &url], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: no admin token: pass --token TOKEN or set CERTGATE_ADMIN_TOKEN"),
        "{r:?}"
    );

    // Unreachable: exit 1, naming the URL.
    let r = run(
        &["truststore", "status", "--admin", &url, "--token", "t"],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "error: cannot reach the admin API at {url}/api/v1/truststore: "
        )),
        "{r:?}"
    );

    // Unreadable file: exit 2 before sending (the node is unreachable anyway).
    let r = run(
        &[
            "cert",
            "add",
            "--name",
            "x",
            "--file",
            "/nonexistent/ca.pem",
            "--admin",
            &url,
            "--token",
            "t",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: cannot read /nonexistent/ca.pem: "),
        "{r:?}"
    );

    // Nothing to change.
    let r = run(&["gateway", "set", "--admin", &url, "--token", "t"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("error: nothing to change"), "{r:?}");
    let r = run(
        &["api", "override", "1", "--admin", &url, "--token", "t"],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");

    // Usage errors (clap): exit 2.
    let r = run(&["cert", "show", "abc", "--token", "t"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["gateway", "set", "--mode", "bogus", "--token", "t"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(
        &[
            "api",
            "override",
            "1",
            "--dn",
            "CN=a",
            "--no-dn-restriction",
            "--token",
            "t",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["dn", "test", "CN=a", "--token", "t"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(
        &[
            "truststore",
            "status",
            "--admin",
            "not a url",
            "--token",
            "t",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: invalid admin API URL \"not a url\""),
        "{r:?}"
    );
}

#[test]
fn options_work_before_after_and_from_env() {
    let admin = Admin::start(true);
    // Before the subcommand.
    let r = run(
        &[
            "--admin", &admin.url, "--token", TOKEN, "--json", "api", "list",
        ],
        &[],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "[]\n"), "{r:?}");
    // Between group and subcommand, and after.
    let r = run(
        &[
            "api", "--json", "list", "--token", TOKEN, "--admin", &admin.url,
        ],
        &[],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "[]\n"), "{r:?}");
    // From the environment.
    let r = run(
        &["api", "list"],
        &[
            ("CERTGATE_ADMIN_URL", &admin.url),
            ("CERTGATE_ADMIN_TOKEN", TOKEN),
        ],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "No APIs.\n"), "{r:?}");
    // A flag beats the environment.
    let r = run(
        &["api", "list", "--token", "wrong"],
        &[
            ("CERTGATE_ADMIN_URL", &admin.url),
            ("CERTGATE_ADMIN_TOKEN", TOKEN),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with("HTTP 401)\n"), "{r:?}");
}

#[test]
fn dn_test_uses_the_api_matcher() {
    let admin = Admin::start(true);
    let r = admin.cli(&[
        "dn",
        "test",
        "--dn",
        "cn=localhost, o=Boomi",
        "**,O=Other,**",
        "**,O=Boomi,**",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "dn: CN=localhost,O=Boomi\nmatch: **,O=Boomi,**\n");

    let r = admin.cli(&["dn", "test", "--dn", "CN=localhost,O=Boomi", "CN=*"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (1, "dn: CN=localhost,O=Boomi\nno match\n"),
        "{r:?}"
    );

    let ca = admin.file("ca.pem", ca_pem("Acme Root CA", 365).as_bytes());
    let r = admin.cli(&["dn", "test", "--cert", path_str(&ca), "CN=Acme*,O=acme"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "dn: CN=Acme Root CA,O=Acme\nmatch: CN=Acme*,O=acme\n"
    );

    let v = admin.json(&["dn", "test", "--dn", "CN=a", "CN=a"]);
    assert_eq!(v["matched"], true);
    assert_eq!(v["pattern"], "CN=a");
    assert_eq!(v["dn"], "CN=a");

    let r = admin.cli(&["dn", "test", "--dn", "CN=a", "CN=a,,O=b"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "error: invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN (invalid_dn_pattern, HTTP 422)\n"
    );
    // Testing changes nothing.
    assert_eq!(admin.json(&["dn", "list"]), serde_json::json!([]));
}

#[test]
fn gateway_set_header_mode_shows_warnings() {
    let admin = Admin::start(true);
    let r = admin.cli(&[
        "gateway",
        "set",
        "--mode",
        "header",
        "--header-name",
        "X-SSL-Client-Cert",
        "--header-format",
        "url_encoded_pem",
        "--forward-identity",
        "false",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Gateway client certificate settings:\nmode:                header\n"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("\nheader name:         X-SSL-Client-Cert\n"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("\nheader format:       url_encoded_pem\n"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("\ntrusted proxies:     any peer\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("\nforward identity:    no\n"), "{r:?}");

    let r = admin.cli(&["gateway", "show"]);
    assert!(
        r.stdout.contains("  WARNING header_source_unrestricted: "),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("  WARNING header_mode_without_trust_table: "),
        "{r:?}"
    );

    let r = admin.cli(&[
        "gateway",
        "set",
        "--trusted-proxy",
        "10.0.0.0/8",
        "--trusted-proxy",
        "::1/128",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("\ntrusted proxies:     10.0.0.0/8\n                     ::1/128\n"),
        "{r:?}"
    );
    let g = admin.json(&["gateway", "show"]);
    assert_eq!(g["client_cert_auth"]["mode"], "header");
    assert_eq!(g["client_cert_auth"]["header_name"], "X-SSL-Client-Cert");
    assert_eq!(g["client_cert_auth"]["forward_identity"], false);
    let codes: Vec<&str> = g["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(!codes.contains(&"header_source_unrestricted"), "{codes:?}");
    assert!(
        codes.contains(&"header_mode_without_trust_table"),
        "{codes:?}"
    );

    let r = admin.cli(&["gateway", "set", "--trusted-proxy", "not-a-cidr"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with(", HTTP 422)\n"), "{r:?}");

    let r = admin.cli(&["gateway", "set", "--no-trusted-proxies", "--mode", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
    let g = admin.json(&["gateway", "show"]);
    assert_eq!(
        g["client_cert_auth"]["trusted_proxies"],
        serde_json::json!([])
    );
    assert_eq!(g["client_cert_auth"]["mode"], "none");
    // Untouched settings kept their value.
    assert_eq!(g["client_cert_auth"]["header_format"], "url_encoded_pem");

    let r = admin.cli(&[
        "gateway",
        "set",
        "--validation-failure",
        "http",
        "--send-ca-names",
        "true",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\nvalidation failure:  http\n"), "{r:?}");
    assert!(r.stdout.contains("\nsend CA names:       yes\n"), "{r:?}");

    // The SPEC §16 fields.
    let r = admin.cli(&[
        "gateway",
        "set",
        "--revocation",
        "ocsp",
        "--revocation-fetch-host",
        "ocsp.example.com",
        "--revocation-fetch-host",
        "127.0.0.0/8",
        "--revocation-fetch-timeout-ms",
        "1500",
        "--revocation-failure",
        "soft",
        "--forward-format",
        "xfcc",
        "--forward-format",
        "rfc9440",
        "--sni-host-check",
        "false",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\nrevocation:          ocsp\n"), "{r:?}");
    assert!(
        r.stdout.contains(
            "\nfetch hosts:         ocsp.example.com\n                     127.0.0.0/8\n"
        ),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("\nfetch timeout:       1500 ms\n"),
        "{r:?}"
    );
    let g = admin.json(&["gateway", "show"]);
    let s = &g["client_cert_auth"];
    assert_eq!(s["revocation"], "ocsp");
    assert_eq!(
        s["revocation_fetch_hosts"],
        serde_json::json!(["ocsp.example.com", "127.0.0.0/8"])
    );
    assert_eq!(s["revocation_fetch_timeout_ms"], 1500);
    assert_eq!(s["revocation_failure"], "soft");
    assert_eq!(s["forward_formats"], serde_json::json!(["xfcc", "rfc9440"]));
    assert_eq!(s["sni_host_check"], false);
    let r = admin.cli(&[
        "gateway",
        "set",
        "--no-revocation-fetch-hosts",
        "--revocation",
        "crl",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("\nfetch hosts:         none (no fetch)\n"),
        "{r:?}"
    );
    let r = admin.cli(&["gateway", "set", "--revocation", "carrier-pigeon"]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// A CA (DER) and two CRLs it signed (PEM text, DER bytes).
fn ca_der_and_crls() -> (Vec<u8>, String, Vec<u8>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "DER CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::new(params, key);
    let now = OffsetDateTime::now_utc();
    let crl = |n: u8| {
        rcgen::CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(7),
            crl_number: rcgen::SerialNumber::from(vec![n]),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(vec![0x42, n]),
                revocation_time: now - Duration::hours(2),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
    };
    let (a, b) = (crl(1), crl(2));
    (
        cert.der().to_vec(),
        a.pem().unwrap() + &b.pem().unwrap(),
        crl(3).der().to_vec(),
    )
}

#[test]
fn der_files_and_crl_files_are_sent_as_pem() {
    let admin = Admin::start(true);
    let (ca_der, crls_pem, crl_der) = ca_der_and_crls();
    let ca = admin.file("ca.der", &ca_der);
    let c = admin.json(&["cert", "add", "--name", "der-ca", "--file", path_str(&ca)]);
    assert_eq!(c["id"], 1);
    assert_eq!(c["versions"][0]["subject"], "CN=DER CA");

    let r = admin.cli(&["dn", "test", "--cert", path_str(&ca), "CN=der ca"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "dn: CN=DER CA\nmatch: CN=der ca\n"),
        "{r:?}"
    );

    // Two CRLs in one PEM file plus one DER file: three entries.
    let pem_file = admin.file("crls.pem", crls_pem.as_bytes());
    let der_file = admin.file("crl.der", &crl_der);
    let r = admin.cli(&[
        "gateway",
        "set",
        "--crl-file",
        path_str(&pem_file),
        "--crl-file",
        path_str(&der_file),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\nCRLs:                3\n"), "{r:?}");
    let g = admin.json(&["gateway", "show"]);
    let crls = g["client_cert_auth"]["crls"].as_array().unwrap();
    assert_eq!(crls.len(), 3);
    assert!(crls[2]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN X509 CRL-----\n"));

    // A certificate is not a CRL: the API refuses it and nothing changes.
    let r = admin.cli(&["gateway", "set", "--crl-file", path_str(&ca)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.ends_with("(invalid_crl, HTTP 422)\n"), "{r:?}");
    assert_eq!(
        admin.json(&["gateway", "show"])["client_cert_auth"]["crls"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let r = admin.cli(&["gateway", "set", "--no-crls"]);
    assert!(r.stdout.contains("\nCRLs:                0\n"), "{r:?}");
}

#[test]
fn audit_lists_the_writes_newest_first_and_pages_back() {
    let admin = Admin::start(false);
    let ca = admin.file("ca.pem", ca_pem("Acme Root CA", 365).as_bytes());
    assert_eq!(
        admin
            .cli(&["cert", "add", "--name", "root", "--file", path_str(&ca)])
            .code,
        0
    );
    assert_eq!(admin.cli(&["dn", "add", "CN=a"]).code, 0);

    let all = admin.json(&["audit"]);
    let actions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client_cert_auth.update", "certificate.create"]);
    assert_eq!(all[1]["target"], "certificate:root");
    assert_eq!(all[1]["actor"], "token");

    // The table: a header and one line per record, newest first.
    let r = admin.cli(&["audit", "--limit", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].starts_with("ID"), "{r:?}");
    assert!(
        lines[0].contains("ACTION") && lines[0].contains("TARGET"),
        "{r:?}"
    );
    assert!(
        lines[1].contains("client_cert_auth.update") && lines[1].contains("token"),
        "{r:?}"
    );

    let newest = all[0]["id"].to_string();
    let older = admin.json(&["audit", "--before", &newest]);
    assert_eq!(older, serde_json::json!([all[1].clone()]));

    let r = admin.cli(&["audit", "--limit", "1001"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "error: limit must be between 1 and 1000. (limit_exceeded, HTTP 422)\n"
    );
}
