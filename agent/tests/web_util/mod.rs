//! Helpers of the web dashboard's process tests (`web.rs`): an HTTP client, password hashes,
//! polling the API, raw requests and `check-config` runs.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `meshmon web-password` with `password` on stdin: the hash line.
pub fn hash_line(password: &str) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .arg("web-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run web-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("web-password");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A hash of `password` with argon2's smallest costs: the node checks a password with the
/// hash's own parameters, and this debug build on a loaded 2-core machine takes seconds for
/// the default ones (19 MiB, 2 passes) that `meshmon web-password` writes.
pub fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::PasswordHasher as _;
    let params = argon2::Params::new(64, 1, 1, None).expect("params");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .expect("hash")
        .to_string()
}

/// Polls `url` until `ok` holds for its JSON, within `within`.
pub async fn wait_json(
    http: &reqwest::Client,
    url: &str,
    within: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < within {
        if let Ok(r) = http.get(url).send().await
            && let Ok(v) = r.json::<Value>().await
        {
            if ok(&v) {
                return v;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url}: not as wanted within {within:?}; last: {last}");
}

pub fn hosts_of(v: &Value) -> Vec<String> {
    let mut h: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["host"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    h.sort();
    h
}

/// Sends raw bytes and returns what comes back (up to the close or 2 s).
pub fn raw(port: u16, bytes: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code and body of a POST.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = http.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("post");
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, r.text().await.unwrap_or_default(), h)
}

/// `meshmon check-config` on a config with `[web]` `body`: exit code and stderr.
pub fn check_config(dir: &Path, body: &str) -> (i32, String) {
    let path = dir.join("c.toml");
    std::fs::write(&path, format!("[node]\ndashboard = true\n{body}")).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("check-config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
