//! The web dashboard in a real browser: a 3-node mesh of real `meshmon` processes, the
//! dashboard node serving `[web]` on 127.0.0.1, and Debian's `chromium` headless driven
//! through `chromedriver` (agent/tests/browser). The fleet page lists the three hosts and a
//! value on it changes without a reload within 3 s (server-sent events); the host page draws
//! uPlot charts with data points (read from uPlot and from the canvas's pixels) and zooms
//! by a drag selection; alerts, checks, mesh and the public status page show their data;
//! and no page logs a JavaScript error. Screenshots of every page are saved under
//! `<target>/web-screenshots/`.
//!
//! Needs `apt-get install chromium chromium-driver` (CI installs them); without them each test
//! says so and passes, except under `CI=true`, where it fails.
#![cfg(feature = "web")]

mod browser;
mod common;

use browser::Browser;
use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `<target>/web-screenshots`, beside the test binaries.
fn shots_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("web-screenshots")
}

/// `window.__meshmonErrors` (the pages' own collector) must be empty, and so must the
/// browser console's errors (level SEVERE), where chromedriver offers its log.
async fn no_errors(b: &Browser, page: &str) {
    let errors = b
        .exec("return window.__meshmonErrors || ['no collector: common.js did not run'];")
        .await
        .expect("read errors");
    assert_eq!(errors, json!([]), "{page}: JavaScript errors");
    if let Some(log) = b.console().await {
        let severe: Vec<&String> = log.iter().filter(|l| l.starts_with("SEVERE")).collect();
        assert!(severe.is_empty(), "{page}: console errors {severe:?}");
    }
}

async fn shot(b: &Browser, name: &str) {
    let path = shots_dir().join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Polls the fleet API until it lists `n` hosts as up.
async fn wait_fleet(base: &str, n: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = http.get(format!("{base}/api/v1/fleet")).send().await
            && let Ok(rows) = r.json::<Vec<Value>>().await
        {
            if rows.iter().filter(|r| r["status"] == "up").count() == n {
                return;
            }
            last = format!("{rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the fleet API did not list {n} hosts up within 30 s: {last}");
}

const HOSTS_ON_PAGE: &str = "const rows = [...document.querySelectorAll('#view tbody tr[data-host]')]; \
     return rows.length === 3 ? rows.map((r) => r.dataset.host).sort() : null;";

/// The CPU chart of the host page: uPlot's point count and how many canvas pixels have the
/// first series' colour (#0284c7), i.e. the line really drawn.
const CPU_CHART: &str = "const box = document.querySelector('.chart[data-metric=\"cpu.usage_pct\"]'); \
     if (!box || !window.__meshmonCharts) return null; \
     const u = window.__meshmonCharts.find((p) => box.contains(p.root)); \
     const c = box.querySelector('canvas'); if (!u || !c) return null; \
     const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let line = 0; \
     for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 2) < 40 && Math.abs(d[i + 1] - 132) < 40 && Math.abs(d[i + 2] - 199) < 40 && d[i + 3] > 128) line++; \
     return u.data[0].length >= 2 && line > 20 ? { points: u.data[0].length, line, first: u.data[0][0] } : null;";

#[tokio::test]
async fn the_pages_show_a_live_three_node_mesh_in_chromium() {
    let Some((chromium, driver)) = browser::installed_or_skip() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let web_port = free_port();
    let base = format!("http://127.0.0.1:{web_port}");
    let quiet = "[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n";
    let (svc_url, svc) = serve_ok().await;
    let mut specs = ring(&["dash", "w1", "w2"]);
    specs[0].extra = format!(
        "dashboard = true\n{quiet}[store]\npath = \"{}\"\n\
         [web]\nlisten = \"127.0.0.1:{web_port}\"\npublic_status = true\ntitle = \"browser test\"\n\
         [[check]]\nname = \"web\"\nurl = \"{base}/api/v1/session\"\ninterval = \"2s\"\ntimeout = \"2s\"\n\
         [[check]]\nname = \"svc\"\nurl = \"{svc_url}\"\ninterval = \"1s\"\ntimeout = \"1s\"\n",
        dir.path().join("store.db").display()
    );
    for s in &mut specs[1..] {
        s.extra = quiet.into();
    }
    let _agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    wait_fleet(&base, 3).await;
    let b = Browser::start(&chromium, &driver)
        .await
        .expect("start chromium");
    let wait = Duration::from_secs(15);

    // Fleet: all three hosts, then a live change without a reload.
    b.goto(&format!("{base}/#/fleet"))
        .await
        .expect("open fleet");
    let hosts = b.wait_for(HOSTS_ON_PAGE, wait).await.expect("fleet rows");
    assert_eq!(hosts, json!(["dash", "w1", "w2"]));
    let seen = "return document.querySelector('tr[data-host=\"w2\"]').dataset.lastSeen;";
    let before = b
        .exec(&format!("window.__marker = 'same page'; {seen}"))
        .await
        .expect("read");
    let t = Instant::now();
    let changed = format!(
        "const now = (function () {{ {seen} }})(); \
         return window.__marker === 'same page' && now !== {before} ? now : null;"
    );
    b.wait_for(&changed, Duration::from_secs(3))
        .await
        .expect("a value changes without a reload within 3 s");
    eprintln!("fleet: w2's last seen changed live after {:?}", t.elapsed());
    let cpu = b
        .exec(
            "return document.querySelector('tr[data-host=\"w1\"] td:nth-child(3) .v').textContent;",
        )
        .await
        .expect("cpu cell");
    assert!(
        cpu.as_str().is_some_and(|s| s.ends_with('%')),
        "cpu cell {cpu}"
    );
    shot(&b, "fleet").await;
    no_errors(&b, "fleet").await;

    // Host: charts with data points, the stats table, then a drag-to-zoom.
    b.goto(&format!("{base}/#/host/w1"))
        .await
        .expect("open host");
    let chart = b.wait_for(CPU_CHART, wait).await.expect("cpu chart drawn");
    eprintln!("host: cpu chart {chart}");
    b.wait_for(
        "return document.querySelectorAll('#stats-table tbody tr').length > 5;",
        wait,
    )
    .await
    .expect("stats table");
    // The 5-minute range follows the present (fetched every 5 s): wait for 8 points, then a
    // drag selection over the middle half makes the range that span, fetched again for it.
    b.exec("document.querySelector('button[data-range=\"5m\"]').click(); return true;")
        .await
        .expect("5m");
    let eight = format!(
        "const c = (function () {{ {CPU_CHART} }})(); return c && c.points >= 8 ? c : null;"
    );
    b.wait_for(&eight, Duration::from_secs(30))
        .await
        .expect("5m chart with 8 points");
    let zoom = "const u = window.__meshmonCharts[0]; const w = u.bbox.width / devicePixelRatio; \
         window.__zoomFrom = u.posToVal(w / 4, 'x'); \
         u.setSelect({ left: w / 4, width: w / 2, top: 0, height: 10 }, true); return window.__zoomFrom;";
    b.exec(zoom).await.expect("select");
    let zoomed = format!(
        "if (!document.getElementById('zoom').textContent.startsWith('zoomed')) return null; \
         const c = (function () {{ {CPU_CHART} }})(); \
         return c && c.first >= window.__zoomFrom - 1 ? c : null;"
    );
    let chart = b.wait_for(&zoomed, wait).await.expect("zoomed chart drawn");
    eprintln!("host: zoomed cpu chart {chart}");
    shot(&b, "host").await;
    no_errors(&b, "host").await;

    // Alerts: no password configured, so read-only, no write buttons.
    b.goto(&format!("{base}/#/alerts"))
        .await
        .expect("open alerts");
    b.wait_for("return document.querySelector('#view h2') !== null && !document.body.textContent.includes('Loading');", wait)
        .await
        .expect("alerts page");
    let buttons = b
        .exec("return [document.body.textContent.includes('Read-only'), document.querySelectorAll('button.ack, form#silence').length];")
        .await
        .expect("alerts");
    assert_eq!(
        buttons,
        json!([true, 0]),
        "without a password the alerts page is read-only"
    );
    shot(&b, "alerts").await;
    no_errors(&b, "alerts").await;

    // Checks: the dashboard node's check of its own web server, up, with a 90-day bar.
    b.goto(&format!("{base}/#/checks"))
        .await
        .expect("open checks");
    let check = b
        .wait_for("const r = document.querySelector('#checks tbody tr:last-child'); \
             return document.querySelectorAll('#checks tbody tr').length === 2 ? [r.cells[0].textContent, r.cells[2].textContent, r.querySelectorAll('.bar i').length] : null;", Duration::from_secs(30))
        .await
        .expect("checks table");
    assert_eq!(check, json!(["web", "up", 90]));
    shot(&b, "checks").await;
    no_errors(&b, "checks").await;

    // Mesh: the node's links and the three hosts by hop distance.
    b.goto(&format!("{base}/#/mesh")).await.expect("open mesh");
    b.wait_for("return document.querySelectorAll('#mesh-hosts tbody tr').length === 3 && document.querySelectorAll('#links tbody tr').length >= 1;", wait)
        .await
        .expect("mesh tables");
    shot(&b, "mesh").await;
    no_errors(&b, "mesh").await;

    // The public status page (a page of its own).
    b.goto(&format!("{base}/status"))
        .await
        .expect("open status");
    let status = b
        .wait_for(
            "const h = document.querySelectorAll('#status-hosts tbody tr').length; \
             const c = document.querySelectorAll('#status-checks tbody tr').length; \
             return h === 3 && c === 2 ? [h, c] : null;",
            wait,
        )
        .await
        .expect("status tables");
    eprintln!("status: {status}");
    let svc_state = "return document.querySelector('#status-checks tr[data-check=\"svc\"] .badge').textContent;";
    assert_eq!(b.exec(svc_state).await.expect("svc"), json!("up"));
    shot(&b, "status").await;
    no_errors(&b, "status").await;

    // The checked service stops: the status page (loaded again, as a visitor would) shows it
    // down.
    svc.abort();
    let t = Instant::now();
    loop {
        b.goto(&format!("{base}/status"))
            .await
            .expect("reload status");
        let state = b
            .wait_for(
                &format!(
                    "return document.querySelector('#status-checks') ? \
                     (function () {{ {svc_state} }})() : null;"
                ),
                wait,
            )
            .await
            .expect("status page");
        if state == json!("down") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "svc still {state} 30 s after its server stopped"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "status: svc shown down {:?} after its server stopped",
        t.elapsed()
    );
    let overall = b
        .exec("return document.querySelector('#overall').textContent;")
        .await
        .expect("overall");
    assert_eq!(overall, json!("Some systems are down"));
    shot(&b, "status-down").await;
    no_errors(&b, "status (down)").await;
}

/// A tiny HTTP service on 127.0.0.1 answering every request with `200 ok`, for a check to
/// watch; abort the task to stop it (its listener closes with it).
async fn serve_ok() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/health", l.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = c.read(&mut buf).await;
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = c.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, task)
}

/// A password file for `[web]`: the hash `meshmon web-password` prints for `password`.
fn password_file(dir: &std::path::Path, password: &str) -> PathBuf {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .arg("web-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run meshmon web-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("web-password");
    assert!(out.status.success(), "meshmon web-password failed");
    let path = dir.join("web.pass");
    std::fs::write(&path, &out.stdout).expect("write password file");
    path
}

/// The login form's JavaScript: types `pw` and submits.
fn login(pw: &str) -> String {
    format!(
        "document.getElementById('password').value = {}; \
         document.querySelector('form#login button').click(); return true;",
        json!(pw)
    )
}

#[tokio::test]
async fn logged_in_the_alerts_page_acknowledges_and_silences() {
    let Some((chromium, driver)) = browser::installed_or_skip() else {
        return;
    };
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let pass = password_file(dir.path(), "correct horse");
    let web_port = free_port();
    let base = format!("http://127.0.0.1:{web_port}");
    let mut spec = Spec::new("dash");
    // A rule that fires at once on every host: something to acknowledge.
    spec.extra = format!(
        "dashboard = true\n[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n\
         [store]\npath = \"{}\"\n[web]\nlisten = \"127.0.0.1:{web_port}\"\npassword_file = \"{}\"\n\
         [[alert]]\nname = \"cpu-any\"\nmetric = \"cpu.usage_pct\"\nop = \">=\"\nthreshold = 0\n\
         for = \"1s\"\nseverity = \"critical\"\n",
        dir.path().join("store.db").display(),
        pass.display()
    );
    let _node = Agent::start(dir.path(), &spec);
    wait_fleet(&base, 1).await;
    let b = Browser::start(&chromium, &driver)
        .await
        .expect("start chromium");
    let wait = Duration::from_secs(20);

    // Logged out: a login form, no write buttons.
    b.goto(&format!("{base}/#/alerts"))
        .await
        .expect("open alerts");
    b.wait_for(
        "return document.querySelector('form#login') !== null \
         && document.querySelectorAll('button.ack, form#silence').length === 0;",
        wait,
    )
    .await
    .expect("login form without buttons");
    // A wrong password is refused on the page.
    b.exec(&login("wrong")).await.expect("submit");
    let refused = b
        .wait_for(
            "const e = document.querySelector('form#login .error'); \
             return e && e.textContent !== '' ? e.textContent : null;",
            wait,
        )
        .await
        .expect("wrong password refused");
    eprintln!("alerts: wrong password: {refused}");
    // The refused request is the only console error (the browser logs the 401 itself).
    if let Some(log) = b.console().await {
        let severe: Vec<&String> = log.iter().filter(|l| l.starts_with("SEVERE")).collect();
        assert!(
            severe.len() == 1 && severe[0].contains("401"),
            "console: {log:?}"
        );
    }
    b.exec(&login("correct horse")).await.expect("submit");
    b.wait_for(
        "return document.querySelector('form#silence') !== null \
         && document.querySelector('button.ack') !== null;",
        wait,
    )
    .await
    .expect("logged in: the silence form and an Acknowledge button");
    shot(&b, "alerts-logged-in").await;

    // Acknowledge the firing alert: its row then says so.
    b.exec("document.querySelector('button.ack').click(); return true;")
        .await
        .expect("ack");
    b.wait_for(
        "const t = document.querySelector('#view table'); \
         const rows = t ? [...t.tBodies[0].rows] : []; \
         return rows.length > 0 && rows.every((r) => r.cells[8].textContent === 'yes');",
        wait,
    )
    .await
    .expect("acknowledged");
    // Silence the rule through the form.
    b.exec(
        "const f = document.querySelector('form#silence'); f.rule.value = 'cpu-any'; \
         f.host.value = 'dash'; f.for.value = '1h'; f.comment.value = 'browser test'; \
         f.querySelector('button').click(); return true;",
    )
    .await
    .expect("silence");
    let msg = b
        .wait_for(
            "const t = document.querySelector('form#silence span').textContent; \
             return t.startsWith('Silenced') ? t : null;",
            wait,
        )
        .await
        .expect("silenced");
    eprintln!("alerts: {msg}");
    shot(&b, "alerts-acknowledged").await;
    no_errors(&b, "alerts (logged in)").await;
}
