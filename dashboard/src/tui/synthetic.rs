//! A deterministic synthetic fleet for snapshot tests and the benchmark: hosts with CPU,
//! memory, disks, network, GPUs, checks, systemd units, SMART data and containers, fed through
//! [`App::update`] exactly as live frames would be (Status, HostInfo, SeriesTable, Samples).
//! Values are smooth functions of host index and time, so every run draws the same screen.

use super::alerts::{Alert, AlertState, Severity};
use super::app::App;
use super::event::AppEvent;
use meshmon_proto::payload::{HostInfo, HostStatus, LinkStatus, Status};
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Flags, Header, Kind, Payload, SeriesKey};

/// The fixed "now" of snapshots: 2026-01-01T12:00:00Z.
pub const NOW_MS: i64 = 1_767_268_800_000;

const ROLES: [&str; 6] = ["web", "db", "cache", "gpu", "build", "edge"];

/// Name of synthetic host `i` (0-based): `web-01`, `db-02`, ...
pub fn host_name(i: usize) -> String {
    format!("{}-{:02}", ROLES[i % ROLES.len()], i + 1)
}

fn wave(i: usize, t: i64, period_s: f64, lo: f64, hi: f64) -> f64 {
    let x = (t as f64 / 1000.0) / period_s + i as f64 * 1.7;
    lo + (hi - lo) * (0.5 + 0.5 * x.sin())
}

fn lab(name: &str, k: &str, v: &str) -> SeriesKey {
    SeriesKey::custom(name, vec![(k.to_owned(), v.to_owned())])
}

/// The metric values of host `i` at `t` (ms).
pub fn values(i: usize, t: i64) -> Vec<(SeriesKey, f64)> {
    let plain = |n: &str| SeriesKey::custom(n, Vec::new());
    let gib = 1024.0 * 1024.0 * 1024.0;
    let total = [8.0, 16.0, 32.0, 64.0][i % 4] * gib;
    let mem = wave(i, t, 300.0, 30.0, 70.0) + (i % 3) as f64 * 8.0;
    let root = 35.0 + (i * 13 % 60) as f64;
    let mut v = vec![
        (
            plain("cpu.usage_pct"),
            wave(i, t, 45.0, 5.0, 60.0) + (i % 5) as f64 * 7.0,
        ),
        (plain("cpu.load1"), wave(i, t, 90.0, 0.2, 4.0)),
        (plain("mem.used_pct"), mem),
        (plain("mem.used_bytes"), (total * mem / 100.0).round()),
        (plain("mem.total_bytes"), total),
        (plain("swap.used_bytes"), (i % 3) as f64 * 0.25 * gib),
        (plain("swap.total_bytes"), 2.0 * gib),
        (
            plain("host.uptime_s"),
            86_400.0 * (i % 9 + 1) as f64 + 3_700.0 * i as f64,
        ),
        (lab("disk.used_pct", "mount", "/"), root),
        (lab("disk.used_bytes", "mount", "/"), (root * 5.0e9).round()),
        (lab("disk.total_bytes", "mount", "/"), 500.0e9),
        (
            lab("disk.inodes_used_pct", "mount", "/"),
            (root / 3.0).round(),
        ),
        (
            lab("net.rx_bytes_per_s", "iface", "eth0"),
            wave(i, t, 30.0, 1e4, 8e6).round(),
        ),
        (
            lab("net.tx_bytes_per_s", "iface", "eth0"),
            wave(i, t, 40.0, 1e4, 2e6).round(),
        ),
    ];
    if i % 2 == 1 {
        let data = 60.0 + (i * 7 % 39) as f64;
        v.push((lab("disk.used_pct", "mount", "/data"), data));
        v.push((
            lab("disk.used_bytes", "mount", "/data"),
            (data * 4.0e10).round(),
        ));
        v.push((lab("disk.total_bytes", "mount", "/data"), 4.0e12));
        v.push((lab("disk.inodes_used_pct", "mount", "/data"), 4.0));
    }
    if i % ROLES.len() == 3 {
        for g in 0..2 {
            let gs = g.to_string();
            v.push((
                lab("gpu.util_pct", "gpu", &gs),
                wave(i + g, t, 60.0, 10.0, 99.0).round(),
            ));
            v.push((lab("gpu.temp_c", "gpu", &gs), 70.0 + g as f64));
        }
    }
    if i < 3 {
        let name = ["gitea", "grafana", "wiki"][i];
        let down = i == 2;
        v.push((lab("check.up", "check", name), if down { 0.0 } else { 1.0 }));
        v.push((
            lab("check.latency_ms", "check", name),
            40.0 + 11.0 * i as f64,
        ));
        v.push((
            lab("check.status", "check", name),
            if down { 503.0 } else { 200.0 },
        ));
        v.push((
            lab("check.cert_days_left", "check", name),
            [64.0, 12.0, 3.0][i],
        ));
        v.push((
            lab("systemd.active", "unit", "nginx.service"),
            if i == 1 { 0.0 } else { 1.0 },
        ));
        v.push((
            lab("systemd.mem_bytes", "unit", "nginx.service"),
            48.0 * 1024.0 * 1024.0,
        ));
        v.push((lab("systemd.cpu_pct", "unit", "nginx.service"), 1.5));
        let dev = "nvme0n1";
        v.push((
            lab("smart.passed", "device", dev),
            if i == 1 { 0.0 } else { 1.0 },
        ));
        v.push((
            lab("smart.percentage_used", "device", dev),
            12.0 + 30.0 * i as f64,
        ));
        v.push((lab("smart.temp_c", "device", dev), 38.0 + i as f64));
        v.push((
            lab("smart.media_errors", "device", dev),
            if i == 1 { 3.0 } else { 0.0 },
        ));
        v.push((
            lab("smart.power_on_hours", "device", dev),
            8_760.0 + 1_000.0 * i as f64,
        ));
    }
    containers(i, t, &mut v);
    if i >= 12 {
        // Processes (hosts 12 and up only, so the older snapshots stay as they were).
        let procs = [
            ("postgres", 38.0, 2.1 * gib, Some((8.0e6, 2.5e6))),
            ("java", 12.5, 3.4 * gib, None),
            ("nginx", 3.2, 180.0e6, Some((0.0, 40_000.0))),
            ("kthreads", 0.6, 0.0, None),
            ("backup.py", 55.0, 90.0e6, Some((30.0e6, 0.0))),
            ("other", 4.4, 610.0e6, Some((1_000.0, 2_000.0))),
        ];
        for (name, cpu, mem, io) in procs {
            v.push((lab("proc.cpu_pct", "name", name), cpu));
            v.push((lab("proc.mem_bytes", "name", name), mem));
            if let Some((r, w)) = io {
                v.push((lab("proc.io_read_bytes_per_s", "name", name), r));
                v.push((lab("proc.io_write_bytes_per_s", "name", name), w));
            }
        }
        v.push((lab("proc.count", "name", "nginx"), 5.0));
    }
    v
}

/// Containers on hosts 4 and 6 (`build-05`, `web-07`): busy, idle, unhealthy, restarting and
/// stopped ones.
fn containers(i: usize, t: i64, v: &mut Vec<(SeriesKey, f64)>) {
    // name, image, cpu %, memory MiB, healthy, restarts
    type Spec = (&'static str, &'static str, f64, f64, Option<f64>, f64);
    let list: &[Spec] = match i {
        4 => &[
            (
                "ci-runner",
                "gitlab/gitlab-runner:v17.5",
                92.0,
                1200.0,
                Some(1.0),
                0.0,
            ),
            ("registry", "registry:2", 0.4, 38.0, None, 0.0),
            ("postgres", "postgres:16", 3.5, 410.0, Some(1.0), 0.0),
        ],
        6 => &[
            ("nginx", "nginx:1.27", 1.2, 24.0, Some(1.0), 0.0),
            ("app", "ghcr.io/acme/app:2.3.1", 14.0, 640.0, Some(0.0), 3.0),
            ("old-job", "busybox:1.36", 0.0, 0.0, None, 0.0),
        ],
        _ => return,
    };
    let mib = 1024.0 * 1024.0;
    for (k, (name, image, cpu, mem, healthy, restarts)) in list.iter().enumerate() {
        let running = *mem > 0.0;
        let key = |m: &str| lab(m, "container", name);
        let state = if running { "running" } else { "exited" };
        let info = vec![
            ("container".to_owned(), (*name).to_owned()),
            ("image".to_owned(), (*image).to_owned()),
            ("state".to_owned(), state.to_owned()),
        ];
        v.push((SeriesKey::custom("container.info", info), 1.0));
        v.push((key("container.running"), f64::from(u8::from(running))));
        v.push((key("container.restarts"), *restarts));
        if let Some(h) = healthy {
            v.push((key("container.healthy"), *h));
        }
        if !running {
            continue;
        }
        v.push((key("container.cpu_pct"), *cpu));
        v.push((key("container.mem_bytes"), (mem * mib).round()));
        if k == 0 {
            v.push((key("container.mem_limit_bytes"), 2048.0 * mib));
        }
        let net = wave(i + k, t, 20.0, 1e3, 4e6).round();
        v.push((key("container.net_rx_bytes_per_s"), net));
        v.push((key("container.net_tx_bytes_per_s"), (net / 3.0).round()));
        v.push((key("container.blkio_read_bytes_per_s"), 4096.0 * k as f64));
        v.push((
            key("container.blkio_write_bytes_per_s"),
            65_536.0 * (k + 1) as f64,
        ));
    }
}

/// How long ago host `i` was last heard: host 3 is down, host 5 stale, the rest up.
fn silent_ms(i: usize) -> i64 {
    match i {
        3 => 5 * 60_000,
        5 => 20_000,
        _ => 400 + (i as i64 * 97) % 600,
    }
}

/// The node's status at `now`: every host, and links to hosts 1, 2 and 4 (the one to
/// host 4 still connecting, the one to host 2 with authentication failures).
pub fn status(hosts: usize, now: i64, tick: u64) -> Status {
    let hs = (0..hosts)
        .map(|i| HostStatus {
            name: host_name(i),
            boot_id: 1,
            last_seen_ms: (now - silent_ms(i)) as u64,
            hops: if i == 0 { 0 } else { 1 + (i % 3) as u8 },
            frames: 1_000 + i as u64 * 31 + tick * 3,
            version: "0.1.0".into(),
            os: "Debian GNU/Linux 13".into(),
            tags: tags(i),
            interval_ms: 1000,
            dashboard: i == 0,
            ..HostStatus::default()
        })
        .collect();
    let link = |i: usize, state: &str, rtt: Option<u64>, auth: u64| LinkStatus {
        peer: if state == "up" {
            host_name(i)
        } else {
            String::new()
        },
        addr: format!("10.0.0.{}:6130", i + 1),
        direction: "out".into(),
        state: state.into(),
        role: "node".into(),
        rtt_us: rtt,
        frames_in: if state == "up" {
            5_000 + tick * (20 + i as u64)
        } else {
            0
        },
        frames_out: if state == "up" { 4_000 + tick * 18 } else { 0 },
        dropped: if i == 2 { 7 } else { 0 },
        auth_failures: auth,
        clock_offset_ms: None,
    };
    let links = [
        link(1, "up", Some(240), 0),
        link(2, "up", Some(1_310), 3),
        link(4, "connecting", None, 0),
    ];
    Status {
        node: host_name(0),
        hosts: hs,
        links: links
            .into_iter()
            .filter(|l| hosts > 4 || l.state == "up")
            .collect(),
        frames_dropped: 7,
        auth_failures: 3,
        dashboard: true,
        ..Status::default()
    }
}

fn tags(i: usize) -> Vec<String> {
    let env = if i % 4 == 3 { "staging" } else { "prod" };
    vec![ROLES[i % ROLES.len()].to_owned(), env.to_owned()]
}

fn header(i: usize, kind: Kind, seq: u64, ts: i64) -> Header {
    Header {
        kind,
        flags: Flags::default(),
        origin: host_name(i),
        boot_id: 1,
        seq,
        ts_ms: ts as u64,
    }
}

/// Feeds `app` a fleet of `hosts` hosts with `history_s` seconds of samples ending at
/// `now`, then sets the clock to `now`.
pub fn populate(app: &mut App, hosts: usize, now: i64, history_s: i64) {
    let mut encoders: Vec<SampleEncoder> = (0..hosts).map(|_| SampleEncoder::new()).collect();
    for i in 0..hosts {
        let info = HostInfo {
            os: "Debian GNU/Linux 13".into(),
            kernel: "6.12.48-amd64".into(),
            arch: "x86_64".into(),
            version: "0.1.0".into(),
            tags: tags(i),
            interval_ms: 1000,
            boot_time_s: 1_766_000_000,
            cores: [4, 8, 16, 32][i % 4],
            dashboard: i == 0,
        };
        app.update(AppEvent::Frame {
            header: header(i, Kind::HostInfo, 1, now - history_s * 1000),
            payload: Payload::HostInfo(info),
            replay: false,
        });
    }
    let start = now - history_s * 1000;
    let mut seq = 2;
    for s in 0..=history_s {
        let t = start + s * 1000;
        for (i, enc) in encoders.iter_mut().enumerate() {
            // A down host stopped sending; so did a stale one, more recently.
            if t > now - silent_ms(i) {
                continue;
            }
            for p in enc.encode(&values(i, t)) {
                let kind = p.kind();
                app.update(AppEvent::Frame {
                    header: header(i, kind, seq, t),
                    payload: p,
                    replay: false,
                });
            }
        }
        seq += 2;
    }
    app.update(AppEvent::Tick { now_ms: now - 1000 });
    app.update(AppEvent::Status(status(hosts, now - 1000, 0)));
    app.update(AppEvent::Tick { now_ms: now });
    app.update(AppEvent::Status(status(hosts, now, 1)));
}

/// The [`alerts`] and a host-down held by a maintenance window, with the windows in force: a
/// recurring one from the config and a one-off one.
pub fn alerts_in_maintenance(now: i64) -> (Vec<Alert>, Vec<super::alerts::ActiveWindow>) {
    let mut list = alerts(now);
    list.push(Alert {
        id: 5,
        rule: "host-down".into(),
        host: host_name(3),
        state: AlertState::Pending,
        severity: Severity::Critical,
        started_ms: now - 300_000,
        ended_ms: None,
        value: f64::NAN,
        acked: false,
        silenced_until_ms: None,
        maintenance: true,
    });
    let windows = vec![
        super::alerts::ActiveWindow {
            source: "config".into(),
            hosts: "db*".into(),
            rules: "*".into(),
            when: "sat,sun 02:00-04:00 Europe/Berlin".into(),
            comment: String::new(),
        },
        super::alerts::ActiveWindow {
            source: "4".into(),
            hosts: host_name(3),
            rules: "*".into(),
            when: "until 2026-11-30T14:00:00Z".into(),
            comment: "kernel upgrade".into(),
        },
    ];
    (list, windows)
}

/// A few alerts: two firing (one acknowledged), one pending, one resolved.
pub fn alerts(now: i64) -> Vec<Alert> {
    let a = |id, rule: &str, host: usize, state, severity, ago_s: i64, value| Alert {
        id,
        rule: rule.into(),
        host: host_name(host),
        state,
        severity,
        started_ms: now - ago_s * 1000,
        ended_ms: (state == AlertState::Resolved).then_some(now - 60_000),
        value,
        acked: id == 2,
        silenced_until_ms: None,
        maintenance: false,
    };
    vec![
        a(
            1,
            "disk-full",
            1,
            AlertState::Firing,
            Severity::Critical,
            1_800,
            97.0,
        ),
        a(
            2,
            "cpu-hot",
            4,
            AlertState::Firing,
            Severity::Warning,
            420,
            93.5,
        ),
        a(
            3,
            "mem-high",
            2,
            AlertState::Pending,
            Severity::Warning,
            20,
            91.2,
        ),
        a(
            4,
            "check-down",
            2,
            AlertState::Resolved,
            Severity::Critical,
            7_200,
            0.0,
        ),
    ]
}

/// Records history in `[since_ms, until_ms]` for every host of `app` named like
/// [`host_name`] (`hosts` of them), one value every `step_s` seconds, straight into the rings
/// (no frames): for sizing and drawing benchmarks with days of history.
pub fn fill_history(app: &mut App, hosts: usize, since_ms: i64, until_ms: i64, step_s: i64) {
    for i in 0..hosts {
        let Some(h) = app.fleet.hosts.get_mut(&host_name(i)) else {
            continue;
        };
        let mut t = since_ms;
        while t <= until_ms {
            h.ingest(t, values(i, t), true);
            t += step_s * 1000;
        }
    }
}
