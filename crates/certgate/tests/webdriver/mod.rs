//! A small W3C WebDriver client over reqwest, enough for the console's browser tests:
//! chromedriver on 127.0.0.1 (its own port 0, read back from its output) driving headless
//! Chromium with a fresh profile. (The WebDriver crates pull in an ICU segmenter and a second
//! http stack; these twenty commands are plain JSON over HTTP.)

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A browser session; chromedriver (and with it Chromium) is killed on drop.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
    pub shots: PathBuf,
}

/// A found element.
#[derive(Clone, Debug)]
pub struct El(pub Value);

impl El {
    fn id(&self) -> &str {
        self.0[ELEMENT].as_str().unwrap_or("")
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with the performance log on.
    pub async fn start(shots: &Path) -> Browser {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: the console's browser tests need Debian's {pkg}: \
                 apt-get install -y chromium chromium-driver (scripts/test.sh installs them)"
            );
        }
        let mut driver = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromedriver did not say its port within 30 s");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--no-proxy-server", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        }}});
        let resp = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers");
        let v: Value = resp.json().await.unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        std::fs::create_dir_all(shots).unwrap();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver,
            _profile: profile,
            shots: shots.to_path_buf(),
        }
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .unwrap()
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Runs a script (`arguments` are `args`; elements as [`El`] values).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs an async script: its last argument is the callback.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Polls `script` until it returns something truthy; answers that value.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy = !(v.is_null()
                || v == json!(false)
                || v == json!("")
                || v == json!(0)
                || v == json!([]));
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText", vec![]).await;
                let console: Vec<Value> = self.log("browser").await;
                panic!(
                    "waited {WAIT:?} for {what}; the page reads:\n{}\nbrowser console: {console:#?}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// All elements matching an XPath, now.
    pub async fn find_all(&self, xpath: &str) -> Vec<El> {
        let v = self
            .post("/elements", json!({"using": "xpath", "value": xpath}))
            .await;
        v.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(El)
            .collect()
    }

    /// The first element matching an XPath, waiting for it to appear (and be displayed).
    pub async fn find(&self, xpath: &str) -> El {
        let v = self
            .wait_js(
                &format!("an element {xpath}"),
                "const r = document.evaluate(arguments[0], document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);\
                 for (let i = 0; i < r.snapshotLength; i++) { const e = r.snapshotItem(i); if (e.getClientRects().length) return e; }\
                 return null;",
                vec![json!(xpath)],
            )
            .await;
        El(v)
    }

    /// A button (or link) by its visible text or aria-label.
    pub async fn button(&self, name: &str) -> El {
        let q = xpath_literal(name);
        self.find(&format!(
            "//*[(self::button or self::a) and (normalize-space()={q} or @aria-label={q})]"
        ))
        .await
    }

    /// The control a `<label>` with exactly this text is bound to (`for`), or that a
    /// fieldset legend names.
    pub async fn field(&self, label: &str) -> El {
        let v = self
            .wait_js(
                &format!("a control labelled {label:?}"),
                "for (const l of document.querySelectorAll('label')) {\
                   if (l.textContent.trim() === arguments[0] && l.control && l.control.getClientRects().length) return l.control; }\
                 return null;",
                vec![json!(label)],
            )
            .await;
        El(v)
    }

    /// Clicks an element.
    pub async fn click(&self, el: &El) {
        self.post(&format!("/element/{}/click", el.id()), json!({}))
            .await;
    }

    /// Types into an element.
    pub async fn type_text(&self, el: &El, text: &str) {
        self.post(
            &format!("/element/{}/value", el.id()),
            json!({"text": text}),
        )
        .await;
    }

    /// Empties an input.
    pub async fn clear(&self, el: &El) {
        self.post(&format!("/element/{}/clear", el.id()), json!({}))
            .await;
    }

    /// Pastes a long text (a PEM) into a field, as a paste would: value and an input event.
    pub async fn paste(&self, el: &El, text: &str) {
        self.js(
            "arguments[0].focus(); arguments[0].value = arguments[1];\
             arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            vec![el.0.clone(), json!(text)],
        )
        .await;
    }

    /// An element's visible text.
    pub async fn text(&self, el: &El) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{}/text", el.id()),
            None,
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    /// The page's visible text.
    pub async fn body_text(&self) -> String {
        self.js("return document.body.innerText", vec![])
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until the page's visible text contains `needle`.
    pub async fn wait_text(&self, needle: &str) {
        self.wait_js(
            &format!("the text {needle:?}"),
            "return document.body.innerText.includes(arguments[0])",
            vec![json!(needle)],
        )
        .await;
    }

    /// Presses keys on the focused element (WebDriver key codes such as "\u{E007}" for Enter).
    pub async fn keys(&self, el: &El, keys: &str) {
        self.type_text(el, keys).await;
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a PNG screenshot of the viewport as `<shots>/<name>.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", None)
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The entries of a Chromium log ("performance", "browser") since the last read.
    pub async fn log(&self, kind: &str) -> Vec<Value> {
        let v = match self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": kind})),
            )
            .await
        {
            Ok(v) => v,
            Err(_) => self.post("/log", json!({"type": kind})).await,
        };
        v.as_array().cloned().unwrap_or_default()
    }

    /// The URLs of every request the page made since the last read (performance log).
    pub async fn requested_urls(&self) -> Vec<String> {
        let mut urls = Vec::new();
        for e in self.log("performance").await {
            let Ok(m) = serde_json::from_str::<Value>(e["message"].as_str().unwrap_or("")) else {
                continue;
            };
            if m["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(u) = m["message"]["params"]["request"]["url"].as_str() {
                    urls.push(u.to_owned());
                }
            }
        }
        urls
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the WebDriver session first so chromedriver closes Chromium, then stop it.
        let url = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let c = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .ok()?;
                c.delete(url).send().await.ok()
            })
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An XPath string literal for `s`.
pub fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!(
            "concat({})",
            s.split('\'')
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", \"'\", ")
        )
    }
}
