//! A small WebDriver client for the browser tests: starts Debian's `chromedriver`, which
//! starts `chromium` headless with a fresh profile, and speaks the W3C WebDriver protocol to it
//! over HTTP on 127.0.0.1 with reqwest (already in the tree). Navigation, running JavaScript,
//! waiting for a condition, screenshots and the browser's console log.
//!
//! Why not the fantoccini crate: 0.22 pulls in native-tls/openssl by default and the
//! `webdriver` crate (with ICU text segmentation) for the handful of JSON calls these tests
//! make; each call here is one request with a JSON body.
//!
//! Not here: what the pages should show (agent/tests/web_browser.rs).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The chromium flags that work on this kind of machine (as root, without a GPU or network).
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// Debian's chromium and chromedriver, when both are installed.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|p| p.exists());
    let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])?;
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?;
    Some((chromium, driver))
}

/// [`installed`], or `None` after printing why the test is skipped; under `CI=true` (CI
/// installs them) their absence fails the test instead.
pub fn installed_or_skip() -> Option<(PathBuf, PathBuf)> {
    let found = installed();
    if found.is_none() {
        let why =
            "chromium or chromedriver not installed (apt-get install chromium chromium-driver)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
    }
    found
}

/// One browser session; chromedriver and chromium are stopped when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session of headless chromium.
    pub async fn start(chromium: &Path, driver: &Path) -> Result<Browser, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let mut cmd = Command::new(driver);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn chromedriver: {e}"))?;
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let mut b = Browser {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| format!("http client: {e}"))?,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            driver: child,
            _profile: profile,
        };
        let start = Instant::now();
        loop {
            let ready = b.http.get(format!("{}/status", b.base)).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = b.call("POST", "/session", Some(caps)).await?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?
            .to_owned();
        Ok(b)
    }

    /// One WebDriver command; returns its `value`, or the error it carries.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body.unwrap_or(json!({}))),
        };
        let res = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status();
        let v: Value = res
            .json()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// Runs `script` (a function body: `return …;`) in the page and returns its value.
    pub async fn exec(&self, script: &str) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Runs `script` every 100 ms until it returns something other than null/false, or
    /// `timeout` passes (then the error names the script and its last value).
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> Result<Value, String> {
        let start = Instant::now();
        loop {
            let v = self.exec(script).await?;
            if !(v.is_null() || v == json!(false)) {
                return Ok(v);
            }
            if start.elapsed() > timeout {
                return Err(format!("waited {timeout:?} for `{script}`: last {v}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) -> Result<(), String> {
        use base64::Engine as _;
        let v = self.call("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The browser console's entries since the last call (chromedriver's log endpoint), as
    /// `LEVEL message` lines; `None` when this chromedriver does not offer it.
    pub async fn console(&self) -> Option<Vec<String>> {
        let v = self
            .call("POST", "/se/log", Some(json!({ "type": "browser" })))
            .await
            .ok()?;
        Some(
            v.as_array()?
                .iter()
                .map(|e| format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"]))
                .collect(),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver runs in a process group of its own, with chromium under it.
        if let Some(pid) = rustix::process::Pid::from_raw(self.driver.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.driver.wait();
    }
}
