//! The Prometheus endpoint of a real `meshmon agent`: two agents on 127.0.0.1, the endpoint
//! scraped with a plain GET, the body checked with `promtool check metrics`, and a real
//! `prometheus` (Debian's package) scraping it once and answering a query for both hosts.

mod common;

use common::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A plain HTTP/1.1 GET; returns (status line, body).
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.to_owned();
    Some((status, body.to_owned()))
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

/// Kills the child on every path out of the test.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_prometheus(dir: &Path, target_port: u16, web_port: u16) -> Killed {
    let prom = which("prometheus").unwrap_or_else(|| {
        panic!(
            "'prometheus' not found in PATH: install Debian's 'prometheus' package (.ci/run does)"
        )
    });
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: meshmon\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new(prom)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn prometheus");
    Killed(child)
}

#[tokio::test(flavor = "current_thread")]
async fn two_agents_are_scraped_by_promtool_and_prometheus() {
    let _serial = serial();
    let promtool = which("promtool").unwrap_or_else(|| {
        panic!("'promtool' not found in PATH: install Debian's 'prometheus' package (.ci/run does)")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let mut specs = line(&["p1", "p2"]);
    specs[0].extra = format!("[export]\nprometheus_listen = \"127.0.0.1:{metrics_port}\"\n");
    let _agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();

    // Both hosts' CPU usage, with host labels, once the mesh has converged.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some((status, body)) = get(metrics_port, "/metrics")
            && status.contains(" 200 ")
            && body.contains("meshmon_cpu_usage_pct{host=\"p1\"}")
            && body.contains("meshmon_cpu_usage_pct{host=\"p2\"}")
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "both hosts not in /metrics within 10 s; last: {:?}",
            get(metrics_port, "/metrics")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body.contains("# TYPE meshmon_cpu_usage_pct gauge\n"),
        "{body}"
    );
    assert!(body.contains("meshmon_up{host=\"p2\"} 1\n"), "{body}");
    assert!(
        body.contains("meshmon_node_frames_dropped_total "),
        "{body}"
    );
    let (status, _) = get(metrics_port, "/").expect("answer to /");
    assert!(status.contains(" 404 "), "{status}");

    // promtool reads the body on stdin and reports problems on stderr.
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = check.wait_with_output().expect("promtool");
    // Exit 3 is promtool's "lint problems" (the text parsed fine). The only ones accepted are
    // naming-style hints that come from keeping meshmon's own metric names
    // (`net.rx_bytes_per_s`, `disk.inodes_total`); a parse error or any other problem fails.
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let style_only = out.status.code() == Some(3)
        && report.lines().filter(|l| !l.trim().is_empty()).all(|l| {
            l.contains("should not contain abbreviated units")
                || l.contains("non-counter metrics should not have \"_total\" suffix")
        });
    assert!(
        out.status.success() || style_only,
        "promtool check metrics failed ({:?}):\n{report}\n--- body ---\n{body}",
        out.status.code()
    );

    // A real Prometheus scrapes the endpoint and answers a query for both hosts.
    let web_port = free_port();
    let _prom = start_prometheus(dir.path(), metrics_port, web_port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get(web_port, "/api/v1/query?query=meshmon_cpu_usage_pct");
        if let Some((_, body)) = &answer
            && body.contains("\"host\":\"p1\"")
            && body.contains("\"host\":\"p2\"")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not return both hosts within 20 s; last: {answer:?}; log: {}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
