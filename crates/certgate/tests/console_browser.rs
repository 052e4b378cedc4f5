//! The web console in a real browser (SPEC §11): headless Chromium from Debian's packages,
//! driven over WebDriver, against a real `certgate serve` (its proxy listener in front of a
//! real echo upstream, curl with a real client certificate). The test acts as an operator:
//! it signs in, switches the auth type, trusts a certificate from the lookup, upgrades a
//! pinned version, reads expiry indicators, reads a refused DN pattern's error, tests a
//! certificate against the list, overrides an API and checks with curl that the change is
//! live, and deletes with confirmation. Screenshots of every page go to the directory
//! printed at the start; `CERTGATE_UPDATE_SCREENSHOT=1` also copies the Gateway page to
//! docs/console-gateway.png.

mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use webdriver::{xpath_literal, Browser, El};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const TOKEN: &str = "console-test-token-0123456789abcdef";
const ENTER: &str = "\u{E007}";

/// Fills a data dir's store before the node starts.
type Prepare = dyn Fn(PathBuf) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A `certgate serve` child, killed on drop.
struct Node {
    child: Child,
    proxy: String,
    admin: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Node {
    /// Starts a node on 127.0.0.1 (ports 0) with SSL and a self-signed server certificate;
    /// `prepare` may fill the store first.
    async fn start(prepare: Option<&Prepare>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(
            path.join("certgate.toml"),
            "data_dir = \"data\"\n[listener]\naddress = \"127.0.0.1:0\"\nssl = true\n[admin]\naddress = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        if let Some(p) = prepare {
            std::fs::create_dir_all(path.join("data")).unwrap();
            p(path.join("data")).await;
        }
        let mut child = certgate_testkit::command(BIN)
            .args(["serve", "--config", "certgate.toml"])
            .current_dir(&path)
            .env("CERTGATE_ADMIN_TOKEN", TOKEN)
            .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn certgate");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("proxy on") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("node started");
        let mut urls = line.split_whitespace().filter(|w| w.starts_with("http"));
        let proxy = urls.next().unwrap().trim_end_matches(',').to_owned();
        let admin = urls.next().unwrap().trim_end_matches(',').to_owned();
        Node {
            child,
            proxy,
            admin,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
            dir: path,
        }
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.admin))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.api(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.api(reqwest::Method::POST, path, Some(body)).await;
        assert!(s == 200 || s == 201, "{path}: {s} {v}");
        v
    }

    /// curl to the proxy with a client certificate: the status code.
    fn curl(&self, path: &str, cert: Option<(&Path, &Path)>) -> String {
        let mut cmd = certgate_testkit::command("curl");
        cmd.args([
            "-skS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ]);
        if let Some((c, k)) = cert {
            cmd.arg("--cert").arg(c).arg("--key").arg(k);
        }
        let out = cmd
            .arg(format!("{}{path}", self.proxy))
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        if code == "000" {
            eprintln!("curl {path}: {}", String::from_utf8_lossy(&out.stderr));
        }
        code
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA: (PEM, key, params) named `CN=<cn>,O=Console Test`, valid from 1 day ago for `secs`.
fn ca(cn: &str, secs: i64, key: Option<&KeyPair>) -> (String, KeyPair, CertificateParams) {
    let key = key
        .map(|k| KeyPair::from_pem(&k.serialize_pem()).unwrap())
        .unwrap_or_else(|| KeyPair::generate().unwrap());
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Console Test");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::seconds(secs);
    let pem = p.self_signed(&key).unwrap().pem();
    (pem, key, p)
}

/// A client certificate `CN=<cn>,O=Example` signed by the CA; files written to `dir`.
fn client(
    dir: &Path,
    cn: &str,
    ca_params: &CertificateParams,
    ca_key: &KeyPair,
) -> (PathBuf, PathBuf, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Example");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = p.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.pem())
}

fn shots_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("console-screenshots").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    println!("screenshots: {}", dir.display());
    dir
}

/// Follows a navigation link and waits for the page to finish rendering.
async fn nav(b: &Browser, name: &str) {
    let before = renders(b).await;
    let link = b
        .find(&format!(
            "//nav//a[normalize-space()={}]",
            xpath_literal(name)
        ))
        .await;
    b.click(&link).await;
    wait_render(b, before).await;
}

async fn renders(b: &Browser) -> i64 {
    b.js(
        "return Number(document.getElementById('main').dataset.renders || 0)",
        vec![],
    )
    .await
    .as_i64()
    .unwrap_or(0)
}

async fn wait_render(b: &Browser, before: i64) {
    b.wait_js(
        "the page to render",
        "return Number(document.getElementById('main').dataset.renders || 0) > arguments[0]",
        vec![json!(before)],
    )
    .await;
}

async fn reload(b: &Browser) {
    b.js("location.reload()", vec![]).await;
    b.wait_js(
        "the reloaded page",
        "return document.readyState === 'complete' && (Number(document.getElementById('main').dataset.renders || 0) > 0 || !!document.querySelector('input[name=token]'))",
        vec![],
    )
    .await;
}

/// The trust table's row of `name`, as its cells' text.
async fn trust_row(b: &Browser, name: &str) -> Vec<String> {
    let v = b
        .js(
            "const t = document.querySelector('table[aria-label=\"Gateway Trusted Certificates\"]');\
             for (const tr of t.tBodies[0].rows) { if (tr.cells[0].textContent === arguments[0]) return [...tr.cells].map(c => c.innerText.trim()); }\
             return null;",
            vec![json!(name)],
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Every input, select and textarea on the page has a bound label (or an aria-label).
async fn assert_labelled(b: &Browser, page: &str) {
    let unlabelled = b
        .js(
            "return [...document.querySelectorAll('input, select, textarea')].filter(e => e.getClientRects().length)\
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML)",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
}

/// Clicks a button whose action needs confirmation; `confirm` picks Confirm or Cancel.
async fn confirm_dialog(b: &Browser, confirm: bool) -> String {
    b.wait_js(
        "the confirmation dialog",
        "return document.getElementById('confirm').open",
        vec![],
    )
    .await;
    let text = b
        .js(
            "return document.getElementById('confirm-text').textContent",
            vec![],
        )
        .await;
    let id = if confirm {
        "confirm-ok"
    } else {
        "confirm-cancel"
    };
    let el = El(b
        .js(&format!("return document.getElementById('{id}')"), vec![])
        .await);
    b.click(&el).await;
    b.wait_js(
        "the dialog to close",
        "return !document.getElementById('confirm').open",
        vec![],
    )
    .await;
    text.as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_manages_client_certificate_auth_in_the_console() {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let (stop_echo, echo_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(certgate_proxy::echo::serve_echo(echo, async {
        let _ = echo_rx.await;
    }));
    let node = Node::start(None).await;
    let shots = shots_dir("operator");
    let b = Browser::start(&shots).await;
    let pki = node.dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();

    // ------------------------------------------------------------ sign-in
    b.goto(&format!("{}/", node.admin)).await;
    b.wait_js(
        "the redirect to /console/",
        "return location.pathname === '/console/'",
        vec![],
    )
    .await;
    let token = b.field("Admin token").await;
    b.screenshot("01-sign-in").await;
    b.type_text(&token, "not-the-token").await;
    b.click(&b.button("Sign in").await).await;
    b.wait_text("The admin token is not valid.").await;
    assert!(
        b.js("return document.getElementById('nav').hidden", vec![])
            .await
            == json!(true)
    );
    // With the keyboard: type the token and press Enter.
    let token = b.field("Admin token").await;
    b.clear(&token).await;
    b.type_text(&token, TOKEN).await;
    b.keys(&token, ENTER).await;
    b.find("//h1[normalize-space()='Gateway']").await;
    for link in ["Gateway", "Certificates", "APIs", "Nodes", "Activity"] {
        b.find(&format!("//nav//a[normalize-space()='{link}']"))
            .await;
    }
    b.find("//button[normalize-space()='Sign out']").await;
    // A reload keeps the session (GET /console/session recovers the CSRF token).
    reload(&b).await;
    b.find("//h1[normalize-space()='Gateway']").await;
    for section in [
        "Gateway Trusted Certificates",
        "Gateway Trusted Distinguished Names",
        "Trust store",
    ] {
        b.find(&format!("//h2[normalize-space()='{section}']"))
            .await;
    }
    assert_labelled(&b, "Gateway").await;

    // ------------------------------------------------------------ auth type
    // Header mode without a header name: the API's refusal is shown, the choice kept.
    let header_radio = b.field("Client Certificate Header Authentication").await;
    b.click(&header_radio).await;
    b.field("Certificate Header Name").await;
    b.click(&b.button("Save").await).await;
    let err = b
        .wait_js(
            "the refusal",
            "const e = document.querySelector('.status.error'); return e && e.textContent",
            vec![],
        )
        .await;
    let err = err.as_str().unwrap().to_owned();
    let (status, expected) = node
        .api(
            reqwest::Method::PUT,
            "/gateway/client-cert-auth",
            Some(json!({"mode": "header", "required": false, "header_name": null, "header_format": "auto", "trusted_proxies": []})),
        )
        .await;
    assert_eq!(status, 422, "{expected}");
    assert_eq!(
        err,
        expected["error"]["message"].as_str().unwrap(),
        "the API's message, in words"
    );
    assert_eq!(
        b.js("return arguments[0].checked", vec![header_radio.0.clone()])
            .await,
        json!(true)
    );
    assert_eq!(
        node.get("/gateway").await["client_cert_auth"]["mode"],
        "none"
    );
    // mtls: Validation Failure shows, Save says Saved, the node has it.
    b.click(&b.field("Client Certificate Authentication").await)
        .await;
    b.field("Validation Failure").await;
    assert_eq!(b.js("return document.querySelector('label[for]') && [...document.querySelectorAll('label')].some(l => l.textContent === 'Certificate Header Name' && l.control.getClientRects().length)", vec![]).await, json!(false));
    b.click(&b.button("Save").await).await;
    b.wait_js(
        "Saved",
        "const e = document.querySelector('.status.ok'); return e && e.textContent === 'Saved'",
        vec![],
    )
    .await;
    assert_eq!(
        node.get("/gateway").await["client_cert_auth"]["mode"],
        "mtls"
    );
    // The warning of an mtls gateway without trusted certificates is shown.
    b.wait_js("the warning", "return !!document.querySelector('li.warning[data-code=mtls_without_trusted_certificates]')", vec![]).await;
    b.screenshot("02-gateway-mtls").await;

    // ------------------------------------------------------------ certificates
    let (ca_pem, ca_key, ca_params) = ca("Console Test CA", 400 * 86400, None);
    let (alice_crt, alice_key, alice_pem) = client(&pki, "alice", &ca_params, &ca_key);
    nav(&b, "Certificates").await;
    b.find("//h2[normalize-space()='Create New Certificate']")
        .await;
    b.type_text(&b.field("Name").await, "partner-ca").await;
    b.paste(&b.field("Certificate PEM").await, &ca_pem).await;
    assert_labelled(&b, "Certificates").await;
    let before = renders(&b).await;
    b.click(&b.button("Create").await).await;
    wait_render(&b, before).await;
    b.find("//h1[normalize-space()='partner-ca']").await;
    b.screenshot("03-certificate").await;
    let comps = node.get("/certificates").await;
    let ca_id = comps[0]["id"].as_i64().unwrap();

    // Trust it from the lookup.
    nav(&b, "Gateway").await;
    b.wait_text("0 / 1000").await;
    b.click(&b.button("Add Certificate").await).await;
    b.find("//a[normalize-space()='Create New Certificate']")
        .await;
    let search = b.field("Search certificates").await;
    b.type_text(&search, "partner").await;
    b.screenshot("04-lookup").await;
    b.click(&b.button("Add partner-ca").await).await;
    b.wait_js("the trusted row", "return !!document.querySelector('table[aria-label=\"Gateway Trusted Certificates\"] tr[data-id]')", vec![]).await;
    b.wait_text("1 / 1000").await;
    let row = trust_row(&b, "partner-ca").await;
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(row[1], "v1");
    let issued = b.js("return document.querySelector('table[aria-label=\"Gateway Trusted Certificates\"] tbody tr time').title", vec![]).await;
    assert!(
        issued.as_str().unwrap().ends_with('Z'),
        "full timestamp in title: {issued}"
    );
    assert_eq!(
        row[2],
        (today - time::Duration::days(1)).to_string(),
        "Issued On as YYYY-MM-DD"
    );
    assert_eq!(
        node.get("/gateway/trusted-certificates").await[0]["certificate_id"],
        ca_id
    );

    // The proxy admits alice now (mtls, trusted CA, no DN list yet).
    let orders = node.post("/apis", json!({"name": "orders", "base_path": "/orders", "upstream": format!("http://{echo_addr}")})).await;
    let orders_id = orders["id"].as_i64().unwrap();
    assert_eq!(
        node.curl("/orders/1", Some((&alice_crt, &alice_key))),
        "200"
    );

    // A new version: "Update available", then Upgrade.
    let (ca2_pem, _, _) = ca("Console Test CA", 500 * 86400, Some(&ca_key));
    b.goto(&format!("{}/console/#/certificates/{ca_id}", node.admin))
        .await;
    b.find("//h2[normalize-space()='Upload New Version']").await;
    b.paste(&b.field("Certificate PEM").await, &ca2_pem).await;
    b.click(&b.button("Upload New Version").await).await;
    b.wait_text("Saved: version v2 uploaded").await;
    b.find("//table//td[normalize-space()='v2']").await;
    nav(&b, "Gateway").await;
    let row = trust_row(&b, "partner-ca").await;
    assert_eq!(row[1], "v1 Update available", "{row:?}");
    b.wait_js("the warning", "return !!document.querySelector('li.warning[data-code=trusted_certificate_update_available]')", vec![]).await;
    b.click(&b.button("Upgrade partner-ca").await).await;
    b.wait_text("Saved: partner-ca now pinned at v2").await;
    assert_eq!(trust_row(&b, "partner-ca").await[1], "v2");
    assert!(b
        .find_all("//button[@aria-label='Upgrade partner-ca']")
        .await
        .is_empty());
    assert_eq!(
        node.get("/gateway/trusted-certificates").await[0]["version"],
        2
    );

    // Short-lived certificates: "Expiring soon" and "Expired".
    let (soon_pem, _, _) = ca("Soon CA", 30 * 86400, None);
    let (brief_pem, _, _) = ca("Brief CA", 10, None);
    for (name, pem) in [("soon-ca", &soon_pem), ("brief-ca", &brief_pem)] {
        let c = node
            .post("/certificates", json!({"name": name, "pem": pem}))
            .await;
        node.post(
            "/gateway/trusted-certificates",
            json!({"certificate_id": c["id"]}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let t = node.get("/gateway/trusted-certificates").await;
        if t.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "brief-ca" && r["expiry_status"] == "expired")
        {
            break;
        }
        assert!(Instant::now() < deadline, "brief-ca never expired: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reload(&b).await;
    b.wait_text("3 / 1000").await;
    let soon = trust_row(&b, "soon-ca").await;
    assert!(soon[3].ends_with("Expiring soon"), "{soon:?}");
    let brief = trust_row(&b, "brief-ca").await;
    assert!(brief[3].ends_with("Expired"), "{brief:?}");
    assert!(!trust_row(&b, "partner-ca").await[3].contains("Expir"));
    b.js("document.querySelector('table[aria-label=\"Gateway Trusted Certificates\"]').closest('section').scrollIntoView()", vec![]).await;
    b.screenshot("05-gateway-trusted").await;

    // View shows the certificate's details.
    b.click(&b.button("View partner-ca").await).await;
    b.wait_js(
        "the details",
        "return document.getElementById('info').open",
        vec![],
    )
    .await;
    let info = b
        .js("return document.getElementById('info').innerText", vec![])
        .await;
    let info = info.as_str().unwrap();
    assert!(
        info.contains("CN=Console Test CA,O=Console Test")
            && info.contains("sha256:")
            && info.contains("BEGIN CERTIFICATE"),
        "{info}"
    );
    b.click(&b.button("Close").await).await;

    // Delete asks first: Cancel keeps the row, Confirm removes it.
    b.click(&b.button("Delete brief-ca").await).await;
    let asked = confirm_dialog(&b, false).await;
    assert!(asked.contains("brief-ca"), "{asked}");
    assert_eq!(
        node.get("/gateway/trusted-certificates")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    b.click(&b.button("Delete brief-ca").await).await;
    confirm_dialog(&b, true).await;
    b.wait_text("2 / 1000").await;
    assert_eq!(
        node.get("/gateway/trusted-certificates")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // ------------------------------------------------------------ distinguished names
    b.type_text(&b.field("New pattern").await, "CN=a,,O=b")
        .await;
    b.click(&b.button("Add Pattern").await).await;
    b.wait_text("1 / 1000").await;
    b.click(&b.button("Save Distinguished Names").await).await;
    let field_error = b
        .wait_js(
            "the pattern's error",
            "const e = document.querySelector('.dn-list .field-error'); return e && e.textContent",
            vec![],
        )
        .await;
    let field_error = field_error.as_str().unwrap().to_owned();
    assert_eq!(
        field_error,
        "invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"
    );
    assert_eq!(
        b.js(
            "return document.querySelector('.dn-list input').getAttribute('aria-invalid')",
            vec![]
        )
        .await,
        "true"
    );
    assert_eq!(
        b.js(
            "return document.querySelector('.dn-list input').value",
            vec![]
        )
        .await,
        "CN=a,,O=b",
        "input kept"
    );
    assert_eq!(
        node.get("/gateway").await["client_cert_auth"]["trusted_dns"],
        json!([]),
        "nothing saved"
    );
    b.screenshot("06-dn-error").await;
    // Fix it in place, add a second, move it up, save.
    let first = b.field("Pattern 1").await;
    b.clear(&first).await;
    b.type_text(&first, "CN=alice,O=Example").await;
    b.type_text(&b.field("New pattern").await, "CN=*,O=Other")
        .await;
    b.keys(&b.field("New pattern").await, ENTER).await;
    b.wait_text("2 / 1000").await;
    b.click(&b.button("Move pattern 2 up").await).await;
    b.click(&b.button("Save Distinguished Names").await).await;
    b.wait_js(
        "Saved",
        "return [...document.querySelectorAll('.status.ok')].some(e => e.textContent === 'Saved')",
        vec![],
    )
    .await;
    assert_eq!(
        node.get("/gateway").await["client_cert_auth"]["trusted_dns"],
        json!(["CN=*,O=Other", "CN=alice,O=Example"])
    );
    // Test: alice's certificate matches the second pattern; another DN matches none.
    b.paste(&b.field("DN or certificate PEM").await, &alice_pem)
        .await;
    b.click(&b.button("Test").await).await;
    b.wait_text("CN=alice,O=Example").await;
    let result = b
        .js(
            "return document.querySelector('.test-result').innerText",
            vec![],
        )
        .await;
    assert!(
        result.as_str().unwrap().contains("Canonical DN")
            && b.find_all("//code[@class='match' and normalize-space()='CN=alice,O=Example']")
                .await
                .len()
                == 1,
        "{result}"
    );
    let subject = b.field("DN or certificate PEM").await;
    b.clear(&subject).await;
    b.type_text(&subject, "CN=bob,  O=Nowhere").await;
    b.click(&b.button("Test").await).await;
    b.find("//strong[normalize-space()='No match']").await;
    let result = b
        .js(
            "return document.querySelector('.test-result').innerText",
            vec![],
        )
        .await;
    assert!(
        result.as_str().unwrap().contains("CN=bob,O=Nowhere"),
        "canonical form: {result}"
    );
    assert_eq!(
        node.curl("/orders/1", Some((&alice_crt, &alice_key))),
        "200"
    );

    // Trust store: Recover.
    b.click(&b.button("Recover").await).await;
    b.wait_text("Recovered").await;
    b.screenshot("07-gateway").await;
    if std::env::var_os("CERTGATE_UPDATE_SCREENSHOT").is_some() {
        b.resize(1280, 1500).await;
        b.js("window.scrollTo(0, 0)", vec![]).await;
        let p = b.screenshot("gateway-for-readme").await;
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console-gateway.png");
        std::fs::copy(p, docs).unwrap();
        b.resize(1280, 800).await;
    }
    // Narrow screen: nothing wider than the viewport except scrollable tables.
    b.resize(390, 844).await;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways at 390 px: {overflow}"
    );
    b.screenshot("08-gateway-390px").await;
    b.resize(1280, 800).await;

    // ------------------------------------------------------------ APIs and the override
    nav(&b, "APIs").await;
    b.wait_text("orders").await;
    assert_eq!(
        b.js(
            "return document.querySelector('table[aria-label=APIs] tbody tr').cells[3].innerText",
            vec![]
        )
        .await,
        "Inherited"
    );
    // Create one through the form; a refused one keeps its input.
    b.type_text(&b.field("Name").await, "billing").await;
    b.type_text(&b.field("Base Path").await, "billing/").await;
    b.type_text(&b.field("Upstream").await, &format!("http://{echo_addr}"))
        .await;
    b.click(&b.button("Create API").await).await;
    let err = b
        .wait_js(
            "the refusal",
            "const e = document.querySelector('.status.error'); return e && e.textContent",
            vec![],
        )
        .await;
    assert!(!err.as_str().unwrap().is_empty());
    assert_eq!(
        b.js(
            "return arguments[0].value",
            vec![b.field("Base Path").await.0]
        )
        .await,
        "billing/"
    );
    let base = b.field("Base Path").await;
    b.clear(&base).await;
    b.type_text(&base, "/billing").await;
    let before = renders(&b).await;
    b.click(&b.button("Create API").await).await;
    wait_render(&b, before).await;
    b.find("//h1[normalize-space()='billing']").await;
    assert_eq!(node.get("/apis").await.as_array().unwrap().len(), 2);

    b.goto(&format!("{}/console/#/apis/{orders_id}", node.admin))
        .await;
    b.find("//h1[normalize-space()='orders']").await;
    b.wait_text("(the gateway's; read-only)").await;
    b.click(&b.button("Add API Client Certificate Auth").await)
        .await;
    let dn_mode = b.field("Gateway Trusted Distinguished Names").await;
    b.js(
        "arguments[0].value = 'set'; arguments[0].dispatchEvent(new Event('change'))",
        vec![dn_mode.0.clone()],
    )
    .await;
    let patterns = b.field("Patterns (one per line)").await;
    b.type_text(&patterns, "CN=bob,O=Example").await;
    assert_labelled(&b, "API").await;
    b.click(&b.button("Save Override").await).await;
    b.wait_js(
        "Saved",
        "const e = document.querySelector('.status.ok'); return e && e.textContent === 'Saved'",
        vec![],
    )
    .await;
    b.wait_text("CN=bob,O=Example").await;
    b.screenshot("09-api-override").await;
    // Live at once: alice no longer matches this API's list.
    assert_eq!(
        node.curl("/orders/1", Some((&alice_crt, &alice_key))),
        "403"
    );
    let auth = node
        .get(&format!("/apis/{orders_id}/client-cert-auth"))
        .await;
    assert_eq!(
        auth["effective"]["trusted_dns"],
        json!(["CN=bob,O=Example"])
    );
    assert_eq!(auth["effective"]["mode"], "mtls");
    // Remove Override, confirmed: inherited again, alice is back.
    b.click(&b.button("Remove Override").await).await;
    confirm_dialog(&b, true).await;
    b.find("//button[normalize-space()='Add API Client Certificate Auth']")
        .await;
    assert_eq!(
        node.get(&format!("/apis/{orders_id}/client-cert-auth"))
            .await["override"],
        Value::Null
    );
    assert_eq!(
        node.curl("/orders/1", Some((&alice_crt, &alice_key))),
        "200"
    );

    // A change made elsewhere shows on reload.
    node.post(
        "/certificates",
        json!({"name": "from-the-cli", "pem": soon_pem}),
    )
    .await;
    nav(&b, "Certificates").await;
    let before = renders(&b).await;
    b.click(&b.find("//a[normalize-space()='from-the-cli']").await)
        .await;
    wait_render(&b, before).await;
    // Deactivate, confirmed: the component is inactive.
    b.click(&b.button("Deactivate").await).await;
    let asked = confirm_dialog(&b, true).await;
    assert!(asked.contains("from-the-cli"), "{asked}");
    b.wait_text("Saved: deactivated").await;
    b.find("//h1//span[normalize-space()='Deactivated']").await;
    let comps = node.get("/certificates").await;
    let cli = comps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "from-the-cli")
        .unwrap()
        .clone();
    assert_eq!(cli["active"], false);
    // A trusted one is refused with the API's message, next to the button.
    b.goto(&format!("{}/console/#/certificates/{ca_id}", node.admin))
        .await;
    b.find("//h1[normalize-space()='partner-ca']").await;
    b.click(&b.button("Deactivate").await).await;
    confirm_dialog(&b, true).await;
    let err = b
        .wait_js(
            "the refusal",
            "const e = document.querySelector('.status.error'); return e && e.textContent",
            vec![],
        )
        .await;
    let (status, expected) = node
        .api(
            reqwest::Method::DELETE,
            &format!("/certificates/{ca_id}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{expected}");
    assert_eq!(
        err.as_str().unwrap(),
        expected["error"]["message"].as_str().unwrap()
    );
    assert_eq!(
        node.get(&format!("/certificates/{ca_id}")).await["active"],
        true
    );

    // Delete an API, confirmed.
    nav(&b, "APIs").await;
    b.click(&b.button("Delete billing").await).await;
    confirm_dialog(&b, true).await;
    b.wait_js(
        "the row to go",
        "return document.querySelectorAll('table[aria-label=APIs] tbody tr').length === 1",
        vec![],
    )
    .await;
    assert_eq!(node.get("/apis").await.as_array().unwrap().len(), 1);
    b.screenshot("10-apis").await;

    // ------------------------------------------------------------ nodes, activity
    nav(&b, "Nodes").await;
    let (nodes_status, _) = node.api(reqwest::Method::GET, "/cluster/nodes", None).await;
    if nodes_status == 404 {
        b.find("//h2[normalize-space()='This node only']").await;
    } else {
        b.find("//table[@aria-label='Nodes']").await;
    }
    b.screenshot("11-nodes").await;
    nav(&b, "Activity").await;
    b.find("//*[local-name()='svg' and @role='img']").await;
    b.wait_js(
        "the dn_mismatch denial of orders",
        "const t = document.querySelector('table[aria-label=\"Denials by reason and API\"]');\
         return t && [...t.tBodies[0].rows].some(r => r.cells[0].textContent === 'dn_mismatch' && r.cells[1].textContent === 'orders' && Number(r.cells[2].textContent) >= 1)",
        vec![],
    )
    .await;
    assert!(!b
        .find_all("//*[local-name()='rect' and contains(@class,'r-dn_mismatch')]")
        .await
        .is_empty());
    b.screenshot("12-activity").await;

    // ------------------------------------------------------------ the browser asked nothing but the node
    let urls = b.requested_urls().await;
    assert!(
        urls.iter().any(|u| u.ends_with("/console/app.js")),
        "{urls:#?}"
    );
    // chrome:// pages (the blank new-tab page before the first navigation) and data: URLs
    // are the browser's own, not network requests.
    let foreign: Vec<_> = urls
        .iter()
        .filter(|u| {
            !u.starts_with("chrome://")
                && !u.starts_with("chrome-untrusted://")
                && !u.starts_with("data:")
        })
        .filter(|u| !u.starts_with(&format!("{}/", node.admin)))
        .collect();
    assert!(foreign.is_empty(), "requests to other hosts: {foreign:#?}");
    let console_errors: Vec<_> = b
        .log("browser")
        .await
        .into_iter()
        .filter(|e| {
            e["level"] == "SEVERE"
                && !e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("the server responded with a status of")
        })
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors (CSP violations show here): {console_errors:#?}"
    );

    // Sign out: back to the sign-in form; the cookie no longer works.
    b.click(&b.button("Sign out").await).await;
    b.field("Admin token").await;
    reload(&b).await;
    b.field("Admin token").await;
    let _ = stop_echo.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_page_renders_1000_certificates_and_1000_patterns() {
    let prepare = |data: PathBuf| -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(async move {
            let store = certgate_store::Store::open(&format!(
                "sqlite://{}",
                data.join("certgate.db").display()
            ))
            .await
            .unwrap();
            store.set_ssl_enabled(true).await.unwrap();
            let (pem, _, _) = ca("Many CA", 200 * 86400, None);
            let now = OffsetDateTime::now_utc();
            for i in 0..1000 {
                let c = store
                    .create_component(&format!("ca-{i:04}"), &pem, now)
                    .await
                    .unwrap();
                store.add_trusted(c.id, None, now).await.unwrap();
            }
            let patch = certgate_store::views::ClientCertAuthPatch {
                trusted_dns: Some((0..1000).map(|i| format!("CN=user{i},OU=*,**")).collect()),
                ..Default::default()
            };
            store.update_client_cert_auth(&patch).await.unwrap();
            store.close().await;
        })
    };
    let node = Node::start(Some(&prepare)).await;
    let shots = shots_dir("thousand");
    let b = Browser::start(&shots).await;
    b.goto(&format!("{}/console/#/apis", node.admin)).await;
    let token = b.field("Admin token").await;
    b.type_text(&token, TOKEN).await;
    b.keys(&token, ENTER).await;
    b.find("//h1[normalize-space()='APIs']").await;
    let mut times = Vec::new();
    let mut api_times = Vec::new();
    for _ in 0..5 {
        // From another page to the Gateway page, until both tables are in the DOM and painted.
        let ms = b
            .js_async(
                "const done = arguments[arguments.length - 1];\
                 const main = document.getElementById('main');\
                 const t0 = performance.now();\
                 main.addEventListener('certgate:rendered', () => requestAnimationFrame(() => setTimeout(() => done({\
                   ms: performance.now() - t0,\
                   rows: document.querySelectorAll('table[aria-label=\"Gateway Trusted Certificates\"] tbody tr').length,\
                   patterns: document.querySelectorAll('.dn-list li').length,\
                   api_ms: performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/v1/gateway')).map(e => e.duration).pop()}))), {once: true});\
                 performance.clearResourceTimings();\
                 document.querySelector('nav a[href=\"#/gateway\"]').click();",
                vec![],
            )
            .await;
        assert_eq!(ms["rows"], 1000, "{ms}");
        assert_eq!(ms["patterns"], 1000, "{ms}");
        times.push(ms["ms"].as_f64().unwrap());
        api_times.push(ms["api_ms"].as_f64().unwrap_or(f64::NAN));
        nav(&b, "APIs").await;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("console render, Gateway page with 1000 trusted certificates and 1000 patterns: {times:.0?} ms (navigation click to painted tables), of which GET /api/v1/gateway {api_times:.0?} ms; load average {}", load.trim());
    nav(&b, "Gateway").await;
    b.wait_text("1000 / 1000").await;
    b.screenshot("gateway-1000").await;
}
