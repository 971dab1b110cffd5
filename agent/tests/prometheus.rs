//! The Prometheus endpoint of real `meshmon agent`s: two agents on 127.0.0.1, each with an
//! endpoint; the body checked with `promtool check metrics` (exit 0, no output), and a real
//! `prometheus` (Debian's package) scraping both every 2 s. Traffic flows through a veth pair
//! whose far end sits in a network namespace the test creates (and removes): Prometheus'
//! `rate()` of the exported byte counter must match the average of meshmon's own
//! `net.rx_bytes_per_s` in the dashboard's store over the same 30 s, within 10 %.
//! Creating the namespace needs root (CI runs as root).

mod common;

use common::prom::*;
use common::*;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A veth pair: `host` in this namespace, its peer in a namespace of its own, with link-local
/// addresses, and a sender in that namespace pushing UDP to `host` at a steady rate. Dropping
/// it stops the sender and removes the namespace (which removes the pair).
struct Veth {
    host: String,
    netns: String,
    sender: Option<Killed>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {} (this test creates a network namespace and needs root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Veth {
    fn new() -> Veth {
        let id = std::process::id() % 100_000;
        let v = Veth {
            host: format!("mmv{id}"),
            netns: format!("meshmon-test-{id}"),
            sender: None,
        };
        let peer = format!("mmp{id}");
        ip(&["netns", "add", &v.netns]);
        ip(&[
            "link", "add", &v.host, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &v.netns]);
        ip(&["addr", "add", "169.254.213.1/30", "dev", &v.host]);
        ip(&["link", "set", &v.host, "up"]);
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &v.netns, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        ns(&["addr", "add", "169.254.213.2/30", "dev", &peer]);
        ns(&["link", "set", &peer, "up"]);
        v
    }

    /// Sends `bytes_per_s` of UDP payload to the host end, paced against the clock.
    fn send(&mut self, bytes_per_s: u32) {
        let script = format!(
            "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nd=b'x'*1000\nt0=time.monotonic();n=0\nwhile True:\n  due=int((time.monotonic()-t0)*{bytes_per_s}/1000)\n  while n<due:\n    s.sendto(d,('169.254.213.1',9));n+=1\n  time.sleep(0.002)\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "python3", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the traffic sender");
        self.sender = Some(Killed(child));
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.sender = None;
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .stderr(Stdio::null())
            .status();
    }
}

fn promtool_check(body: &str) {
    let promtool = which("promtool").unwrap_or_else(|| {
        panic!("'promtool' not found in PATH: install Debian's 'prometheus' package (.ci/run does)")
    });
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
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({:?}):\n{report}\n--- body ---\n{body}",
        out.status.code()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn two_endpoints_pass_promtool_and_rate_of_the_counter_matches_meshmon() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut veth = Veth::new();
    let iface = veth.host.clone();
    let ports = [free_port(), free_port()];
    let mut specs = line(&["p1", "p2"]);
    specs[0].extra = format!(
        "dashboard = true\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n[collect]\ndocker_dir = \"\"\nsmartctl = \"\"\n[export]\nprometheus_listen = \"127.0.0.1:{}\"\n",
        dir.path().join("store.db").display(),
        ports[0]
    );
    specs[1].extra = format!("[export]\nprometheus_listen = \"127.0.0.1:{}\"\n", ports[1]);
    let _agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    veth.send(400_000);

    // Both hosts' CPU usage, with host labels, once the mesh has converged; the counters of
    // the veth with their type.
    let rx = format!("meshmon_network_receive_bytes_total{{host=\"p1\",iface=\"{iface}\"}} ");
    for port in ports {
        let deadline = Instant::now() + Duration::from_secs(15);
        let body = loop {
            if let Some((status, body)) = get(port, "/metrics")
                && status.contains(" 200 ")
                && body.contains("meshmon_cpu_usage_ratio{host=\"p1\"}")
                && body.contains("meshmon_cpu_usage_ratio{host=\"p2\"}")
                && body.contains(&rx)
            {
                break body;
            }
            assert!(
                Instant::now() < deadline,
                "both hosts not in /metrics of :{port} within 15 s; last: {:?}",
                get(port, "/metrics")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for want in [
            "# TYPE meshmon_cpu_usage_ratio gauge\n",
            "# TYPE meshmon_network_receive_bytes_total counter\n",
            "# TYPE meshmon_network_transmit_packets_total counter\n",
            "# TYPE meshmon_mesh_frames_received_total counter\n",
            "# TYPE meshmon_mesh_auth_failures_total counter\n",
            "# TYPE meshmon_host_uptime_seconds gauge\n",
            "# TYPE meshmon_filesystem_inodes gauge\n",
            "meshmon_up{host=\"p2\"} 1\n",
            "meshmon_node_frames_dropped_total ",
        ] {
            assert!(body.contains(want), "{want:?} missing from:\n{body}");
        }
        promtool_check(&body);
    }
    let (status, _) = get(ports[0], "/").expect("answer to /");
    assert!(status.contains(" 404 "), "{status}");

    // A real Prometheus scrapes both endpoints every 2 s and answers for both hosts.
    let web_port = free_port();
    let _prom = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\nscrape_configs:\n  - job_name: meshmon\n    static_configs:\n      - targets: ['127.0.0.1:{}', '127.0.0.1:{}']\n",
            ports[0], ports[1]
        ),
        web_port,
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get(web_port, "/api/v1/query?query=meshmon_cpu_usage_ratio");
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

    // 35 s more of scrapes, so that the window is all scraped (else rate() extrapolates
    // from the first scrape only half an interval back), then rate() over 30 s ending 2 s
    // ago (the store flushes every second) against meshmon's own rates.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let now = unix_now();
    let at = now - 2; // the store flushes every second
    let query = format!(
        "rate(meshmon_network_receive_bytes_total{{host=\"p1\",iface=\"{iface}\",instance=\"127.0.0.1:{}\"}}[30s])",
        ports[1]
    );
    let rate = prom_value(web_port, &query, at).unwrap_or_else(|| {
        panic!(
            "no single answer to {query}: {:?}",
            get(
                web_port,
                "/api/v1/query?query=meshmon_network_receive_bytes_total"
            )
        )
    });
    let cfg = dir.path().join("p1.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["query", "series", "--host", "p1", "--metric"])
        .arg(format!("net.rx_bytes_per_s{{iface=\"{iface}\"}}"))
        .args(["--since", &rfc3339(at - 30), "--until", &rfc3339(at)])
        .args(["--format", "json", "--config"])
        .arg(&cfg)
        .output()
        .expect("run meshmon query");
    assert!(
        out.status.success(),
        "query series: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let values: Vec<f64> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    assert!(
        values.len() >= 25,
        "meshmon has {} rates in 30 s: {rows}",
        values.len()
    );
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    eprintln!(
        "rate() {rate:.0} B/s, meshmon's mean of {} rates {mean:.0} B/s",
        values.len()
    );
    assert!(mean > 100_000.0, "traffic did not flow: mean {mean:.0} B/s");
    assert!(
        (rate - mean).abs() <= 0.10 * mean,
        "rate() {rate:.0} B/s vs meshmon's mean {mean:.0} B/s: more than 10 % apart"
    );
}
