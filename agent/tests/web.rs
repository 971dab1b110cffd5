//! The web dashboard at the HTTP level, with real `meshmon` processes on 127.0.0.1: the API
//! lists a 3-node mesh, server-sent events arrive within about a second of a frame, writes
//! need a login and the CSRF token, logins are rate-limited, bad requests get a 4xx and the
//! node keeps running, the asset route never leaves its fixed list, no endpoint reveals the
//! mesh key, webhook URLs or the password hash, the public status page shows a check going
//! down, and config errors name the fix. (The pages in a browser: `web_browser.rs`.)
#![cfg(feature = "web")]

mod common;
mod web_util;

use common::*;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};
use web_util::*;

const PASSWORD: &str = "correct horse battery";
const WEBHOOK: &str = "https://hooks.example.invalid/T000/B000/SECRETWEBHOOKTOKEN";
const QUIET: &str = "[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n";

struct Mesh {
    _agents: Vec<Agent>,
    base: String,
    port: u16,
    key: String,
    hash: String,
    config: std::path::PathBuf,
}

fn start_mesh(dir: &Path) -> Mesh {
    let port = free_port();
    let hash = cheap_hash(PASSWORD);
    let pass = dir.join("web.pass");
    std::fs::write(&pass, format!("{hash}\n")).expect("write hash");
    let (key_path, _) = key_file(dir, "mesh.key");
    let key = std::fs::read_to_string(&key_path)
        .expect("key")
        .trim()
        .to_owned();
    let mut specs = line(&["dash", "w1", "w2"]);
    for s in &mut specs {
        s.key = Some(key_path.clone());
        s.extra = QUIET.into();
    }
    specs[0].extra = format!(
        "dashboard = true\n{QUIET}[store]\npath = \"{}\"\n[notify]\nwebhooks = [\"{WEBHOOK}\"]\n\
         [web]\nlisten = \"127.0.0.1:{port}\"\npassword_file = \"{}\"\n",
        dir.join("store.db").display(),
        pass.display()
    );
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir, s)).collect();
    let config = agents[0].config.clone();
    Mesh {
        _agents: agents,
        base: format!("http://127.0.0.1:{port}"),
        port,
        key,
        hash,
        config,
    }
}

#[tokio::test]
async fn a_three_node_mesh_through_the_api_with_logins_limits_and_no_secrets() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let m = start_mesh(dir.path());
    let http = client();
    let three = vec!["dash".to_owned(), "w1".to_owned(), "w2".to_owned()];
    let hosts = wait_json(
        &http,
        &format!("{}/api/v1/hosts", m.base),
        Duration::from_secs(30),
        |v| hosts_of(v) == three,
    )
    .await;
    assert_eq!(
        hosts.as_array().map(|a| a
            .iter()
            .all(|r| r.get("last_seen").is_some() && r.get("clock_offset_ms").is_some())),
        Some(true),
        "the CLI's host fields: {hosts}"
    );
    let fleet = wait_json(
        &http,
        &format!("{}/api/v1/fleet", m.base),
        Duration::from_secs(15),
        |v| {
            hosts_of(v) == three
                && v.as_array()
                    .is_some_and(|a| a.iter().all(|r| r["cpu_pct"].is_number()))
        },
    )
    .await;
    for row in fleet.as_array().expect("rows") {
        for f in [
            "status",
            "mem_pct",
            "disk_worst_pct",
            "net_rx_bytes_per_s",
            "gpu_pct",
            "alerts",
            "spark",
        ] {
            assert!(row.get(f).is_some(), "fleet row lacks {f}: {row}");
        }
    }

    // Server-sent events: a fleet event arrives within about a second (frames are 1 s apart).
    let mut sse = http
        .get(format!("{}/api/v1/events", m.base))
        .send()
        .await
        .expect("events");
    assert_eq!(
        sse.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    // Each fleet event's `last_seen` is when the node received the frame: the lag to here is
    // the frame's way from the node's mesh to this client.
    let t = Instant::now();
    let mut buf = String::new();
    let mut lags = Vec::new();
    while t.elapsed() < Duration::from_secs(4) {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), sse.chunk()).await
        {
            let now = meshmon_dashboard::time::now_ms();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("event: fleet\ndata: ") {
                    let row: Value = serde_json::from_str(data.trim()).expect("fleet json");
                    assert!(
                        row.get("spark").is_none() && row.get("cpu_pct").is_some(),
                        "{row}"
                    );
                    let seen = row["last_seen"]
                        .as_str()
                        .and_then(meshmon_dashboard::time::parse_rfc3339)
                        .expect("last_seen");
                    lags.push(now - seen);
                }
            }
        }
    }
    lags.sort_unstable();
    eprintln!(
        "{} fleet events in 4 s; frame-to-client lag ms: {lags:?}",
        lags.len()
    );
    assert!(
        lags.len() >= 6,
        "three hosts, one frame a second each: {lags:?}"
    );
    assert!(
        lags[lags.len() / 2] < 1000,
        "median lag over a second: {lags:?}"
    );
    drop(sse);

    // Writes without a login are refused, and so are logins with the wrong password.
    let silence = r#"{"rule":"*","host":"w1","for":"1h","comment":"web test"}"#;
    let url = |p: &str| format!("{}{p}", m.base);
    for (path, body) in [("/api/v1/silences", silence), ("/api/v1/alerts/1/ack", "")] {
        let (status, text, _) = post(&http, &url(path), &[], body).await;
        assert_eq!(status, 401, "{path} without login: {text}");
    }
    for _ in 0..5 {
        let (status, text, _) =
            post(&http, &url("/api/v1/login"), &[], r#"{"password":"wrong"}"#).await;
        assert_eq!(status, 401, "{text}");
    }
    let (status, _, headers) = post(
        &http,
        &url("/api/v1/login"),
        &[],
        format!(r#"{{"password":"{PASSWORD}"}}"#),
    )
    .await;
    assert_eq!(
        status, 429,
        "the sixth try within a minute is rate-limited, even a right one"
    );
    assert!(headers.get("retry-after").is_some());

    // From another client address (through a proxy on loopback): the right password works.
    let xff = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Forwarded-Proto", "https"),
    ];
    let (status, body, headers) = post(
        &http,
        &url("/api/v1/login"),
        &xff,
        format!(r#"{{"password":"{PASSWORD}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let session = cookie.split(';').next().expect("pair").to_owned();
    let csrf: Value = serde_json::from_str(&body).expect("json");
    let csrf = csrf["csrf"].as_str().expect("csrf").to_owned();
    let with = |extra: &'static [(&'static str, &'static str)]| {
        let mut h = vec![("Cookie", session.as_str())];
        h.extend_from_slice(extra);
        h
    };
    let (status, text, _) = post(&http, &url("/api/v1/silences"), &with(&[]), silence).await;
    assert_eq!(status, 403, "a write without the CSRF token: {text}");
    let mut ok = with(&[]);
    ok.push(("X-CSRF-Token", csrf.as_str()));
    let mut cross = ok.clone();
    cross.push(("Origin", "https://evil.example"));
    let (status, text, _) = post(&http, &url("/api/v1/silences"), &cross, silence).await;
    assert_eq!(status, 403, "a cross-origin write: {text}");
    let (status, text, _) = post(&http, &url("/api/v1/silences"), &ok, silence).await;
    assert_eq!(status, 200, "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["alerts", "silences", "--config"])
        .arg(&m.config)
        .output()
        .expect("silences");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("w1") && listed.contains("web test"),
        "{listed}"
    );
    let (status, text, _) = post(&http, &url("/api/v1/alerts/999999/ack"), &ok, "").await;
    assert_eq!(status, 404, "{text}");

    // Bad input: 4xx, and the node keeps running.
    // A 1 MiB body is refused from its Content-Length: 413, or, when the server closes the
    // connection while the client is still sending (the unread rest resets it), no answer.
    // Its own client: the refused connection must not be the one the next request takes.
    let big = vec![b'x'; 1 << 20];
    let mut req = reqwest::Client::new()
        .post(url("/api/v1/silences"))
        .body(big);
    for (k, v) in &ok {
        req = req.header(*k, *v);
    }
    match req.send().await {
        Ok(r) => {
            assert_eq!(r.status().as_u16(), 413, "a 1 MiB body");
            let close = r.headers().get("connection").and_then(|v| v.to_str().ok());
            assert_eq!(close, Some("close"), "a 413 closes its connection");
        }
        Err(e) => eprintln!("a 1 MiB body: connection closed before it was sent whole ({e})"),
    }
    for body in ["{", "[]", r#"{"for":"soon"}"#, r#"{"for":"1h","extra":1}"#] {
        let (status, text, _) = post(&http, &url("/api/v1/silences"), &ok, body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains("\"error\""), "{text}");
    }
    let (status, _, _) = post(&http, &url("/api/v1/alerts/abc/ack"), &ok, "").await;
    assert_eq!(status, 400);
    for (path, want) in [
        ("/api/v1/series?host=dash", 400),
        (
            "/api/v1/series?host=dash&metric=cpu.usage_pct&since=yesterday",
            400,
        ),
        ("/api/v1/series?host=dash&metric=cpu%7Bx", 400),
        ("/api/v1/series?host=no-such-host&metric=cpu.usage_pct", 404),
        ("/api/v1/series?host=%00bad&metric=cpu.usage_pct", 400),
        ("/api/v1/stats?host=dash&bogus=1", 400),
        ("/api/v1/alerts?all=maybe", 400),
        ("/api/v1/checks/uptime?days=100000", 400),
        ("/api/v1/hosts?%zz", 400),
        ("/api/v1/nothing", 404),
        ("/assets/../Cargo.toml", 404),
        ("/assets/%2e%2e/Cargo.toml", 404),
        ("/assets/..%2f..%2fCargo.toml", 404),
        ("/assets/%2e%2e%2fsrc%2fmain.rs", 404),
        ("/assets/app.js%00", 404),
        ("/assets/", 404),
        ("/status", 404),
        ("/api/v1/status", 404),
    ] {
        let r = http.get(url(path)).send().await.expect("get");
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
    let garbage = raw(m.port, b"NONSENSE\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = raw(m.port, huge.as_bytes());
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // No endpoint reveals the mesh key, the webhook URL or the password hash.
    let secret_of_hash = m.hash.rsplit('$').next().expect("hash part").to_owned();
    for path in [
        "/",
        "/assets/app.js",
        "/api/v1/hosts",
        "/api/v1/fleet",
        "/api/v1/mesh",
        "/api/v1/session",
        "/api/v1/alerts?all=1&since=7d",
        "/api/v1/checks",
        "/api/v1/checks/uptime?days=2",
        "/api/v1/stats?host=dash",
        "/api/v1/series?host=dash&metric=cpu.usage_pct&since=7d",
    ] {
        let r = http
            .get(url(path))
            .header("Cookie", session.as_str())
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let h = format!("{:?}", r.headers());
        for must in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
            "x-frame-options",
        ] {
            assert!(h.contains(must), "{path} lacks {must}");
        }
        let body = r.text().await.expect("body");
        for secret in [
            m.key.as_str(),
            "SECRETWEBHOOKTOKEN",
            "hooks.example",
            m.hash.as_str(),
            secret_of_hash.as_str(),
        ] {
            assert!(!body.contains(secret), "{path} reveals a secret");
        }
    }
    let r = http
        .get(url("/api/v1/session"))
        .send()
        .await
        .expect("session");
    assert_eq!(r.status().as_u16(), 200, "the node still answers");
    let mut agents = m._agents;
    assert!(agents[0].alive(), "the dashboard node still runs");
}

#[tokio::test]
async fn the_public_status_page_shows_a_check_going_down() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let service = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let service_port = service.local_addr().expect("addr").port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    service.set_nonblocking(true).expect("nonblocking");
    let server = std::thread::spawn(move || {
        while !s.load(std::sync::atomic::Ordering::SeqCst) {
            match service.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut buf = [0u8; 2048];
                    let _ = c.read(&mut buf);
                    let _ = c.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let port = free_port();
    let mut spec = Spec::new("solo");
    spec.extra = format!(
        "dashboard = true\n{QUIET}[store]\npath = \"{}\"\nflush_interval = \"1s\"\n\
         [web]\nlisten = \"127.0.0.1:{port}\"\npublic_status = true\ntitle = \"Status test\"\n\
         [[check]]\nname = \"shop\"\nurl = \"http://127.0.0.1:{service_port}/\"\ninterval = \"500ms\"\ntimeout = \"1s\"\n",
        dir.path().join("store.db").display()
    );
    let _agent = Agent::start(dir.path(), &spec);
    let http = client();
    let status_url = format!("http://127.0.0.1:{port}/api/v1/status");
    let up = |want: bool| {
        move |v: &Value| {
            v["checks"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["check"] == "shop"))
                .is_some_and(|c| c["up"] == want)
        }
    };
    // The check comes from the store, the hosts from the mesh status the live task reads once
    // a second: right after the start, one may show before the other.
    let listed = |v: &Value| v["hosts"].as_array().is_some_and(|h| !h.is_empty());
    let v = wait_json(&http, &status_url, Duration::from_secs(30), |v: &Value| {
        up(true)(v) && listed(v)
    })
    .await;
    assert_eq!(v["title"], "Status test");
    assert_eq!(v["hosts"], json!([{"host": "solo", "up": true}]));
    let check = &v["checks"][0];
    assert_eq!(check["days"].as_array().map(Vec::len), Some(90));
    let text = v.to_string();
    for leak in ["127.0.0.1", "cpu", "version", "tags", "uptime_s"] {
        assert!(
            !text.contains(leak),
            "the public status reveals '{leak}': {text}"
        );
    }
    let page = http
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let uptime: Value = http
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/checks/uptime?days=3"
        ))
        .send()
        .await
        .expect("uptime")
        .json()
        .await
        .expect("json");
    let row = &uptime[0];
    assert_eq!(
        (&row["check"], &row["host"]),
        (&json!("shop"), &json!("solo")),
        "{uptime}"
    );
    let days = row["days"].as_array().expect("days");
    assert_eq!(days.len(), 3);
    assert!(
        days[2]["uptime_pct"].as_f64().is_some_and(|u| u > 0.0),
        "today: {uptime}"
    );
    assert_eq!(days[0]["uptime_pct"], Value::Null, "no data two days ago");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().expect("server thread");
    let t = Instant::now();
    wait_json(&http, &status_url, Duration::from_secs(30), up(false)).await;
    eprintln!(
        "the check showed down {:?} after its server stopped",
        t.elapsed()
    );
    // Without a password_file, logins and writes are off.
    let (status, text, _) = post(
        &http,
        &format!("http://127.0.0.1:{port}/api/v1/login"),
        &[],
        r#"{"password":"x"}"#,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("web-password"), "{text}");
}

#[test]
fn web_config_errors_say_how_to_fix_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = hash_line("a password");
    assert!(
        line.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{line}"
    );
    let good = dir.path().join("good.pass");
    std::fs::write(&good, format!("{line}\n")).expect("write");
    let (code, err) = check_config(
        dir.path(),
        &format!(
            "[web]\nlisten = \"0.0.0.0:8080\"\npassword_file = \"{}\"\n",
            good.display()
        ),
    );
    assert_eq!(code, 0, "a public listen with a password file: {err}");
    let (code, err) = check_config(dir.path(), "[web]\nlisten = \"0.0.0.0:8080\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("c.toml: web.listen: '0.0.0.0:8080' is not a loopback address"),
        "{err}"
    );
    assert!(err.contains("meshmon web-password"), "{err}");
    let plain = dir.path().join("plain.pass");
    std::fs::write(&plain, "hunter2\n").expect("write");
    let (code, err) = check_config(
        dir.path(),
        &format!(
            "[web]\nlisten = \"0.0.0.0:8080\"\npassword_file = \"{}\"\n",
            plain.display()
        ),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("web.password_file") && err.contains("not the password"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the error shows the file's content: {err}"
    );
    let (code, err) = check_config(dir.path(), "[web]\nlisten = \"here\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("web.listen: 'here' is not an address"),
        "{err}"
    );
    let (code, err) = check_config(
        dir.path(),
        "[web]\nlisten = \"127.0.0.1:8080\"\ncolour = 1\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("colour"), "{err}");
    let (code, err) = check_config(dir.path(), "[web]\nlisten = \"127.0.0.1:8080\"\n");
    assert_eq!(code, 0, "{err}");
}
