//! How meshmon series look in Prometheus: for every well-known [`Metric`] its family name, type,
//! unit scaling, help text and node_exporter equivalent ([`mapping`]), and for any series of
//! any host its family and label set ([`series`]). The one place both the `/metrics`
//! exposition (agent) and remote write (dashboard) take names from, so the two agree.
//!
//! Rules: base units (`_seconds`, `_bytes`, `_celsius`, `_hertz`, `_watts`, ratios 0..1 as
//! `_ratio`), `_total` only on counters, and counters only for what is cumulative (the agent
//! sends the raw counters: `net.rx_bytes`, `mesh.frames_in`, ...). Metrics that are not
//! well-known (textfile) keep their own name behind `meshmon_`, as gauges, or untyped when
//! the name ends in `_total` (a gauge may not).
//!
//! Not here: the text format or the remote-write encoding (their exporters), or I/O.

use crate::metrics::{Metric, SeriesKey};

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// The value now.
    Gauge,
    /// Cumulative since its source started; only goes up until a reset.
    Counter,
    /// Unknown (a user's metric whose name ends in `_total`).
    Untyped,
}

impl Type {
    /// As written after `# TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
            Type::Untyped => "untyped",
        }
    }
}

/// The Prometheus face of a well-known metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    /// Family name, `meshmon_...`.
    pub family: &'static str,
    /// Metric type.
    pub kind: Type,
    /// Prometheus value = meshmon value x `scale` (to base units: percent -> ratio, ms -> s).
    pub scale: f64,
    /// `# HELP` text.
    pub help: &'static str,
    /// The node_exporter (or blackbox_exporter) metric with the same meaning, if any.
    pub node_exporter: Option<&'static str>,
}

const fn g(family: &'static str, help: &'static str, ne: Option<&'static str>) -> Mapping {
    Mapping {
        family,
        kind: Type::Gauge,
        scale: 1.0,
        help,
        node_exporter: ne,
    }
}

const fn scaled(m: Mapping, scale: f64) -> Mapping {
    Mapping { scale, ..m }
}

const fn c(family: &'static str, help: &'static str, ne: Option<&'static str>) -> Mapping {
    Mapping {
        family,
        kind: Type::Counter,
        scale: 1.0,
        help,
        node_exporter: ne,
    }
}

/// Percent to ratio.
const PCT: f64 = 0.01;

/// The Prometheus family of a well-known metric.
pub fn mapping(m: Metric) -> Mapping {
    use Metric::*;
    match m {
        CpuUsagePct => scaled(
            g(
                "meshmon_cpu_usage_ratio",
                "CPU busy time over the last interval, all cores, 0 to 1.",
                None,
            ),
            PCT,
        ),
        CpuCoreUsagePct => scaled(
            g(
                "meshmon_cpu_core_usage_ratio",
                "CPU busy time of one core over the last interval, 0 to 1.",
                None,
            ),
            PCT,
        ),
        CpuLoad1 => g(
            "meshmon_load1",
            "1-minute load average.",
            Some("node_load1"),
        ),
        CpuLoad5 => g(
            "meshmon_load5",
            "5-minute load average.",
            Some("node_load5"),
        ),
        CpuLoad15 => g(
            "meshmon_load15",
            "15-minute load average.",
            Some("node_load15"),
        ),
        CpuFreqMhz => scaled(
            g(
                "meshmon_cpu_frequency_hertz",
                "Current CPU frequency.",
                Some("node_cpu_scaling_frequency_hertz"),
            ),
            1e6,
        ),
        CpuTempC => g(
            "meshmon_cpu_temperature_celsius",
            "CPU temperature sensor reading.",
            Some("node_hwmon_temp_celsius"),
        ),
        MemUsedBytes => g(
            "meshmon_memory_used_bytes",
            "Memory in use (total minus available).",
            None,
        ),
        MemTotalBytes => g(
            "meshmon_memory_size_bytes",
            "Physical memory.",
            Some("node_memory_MemTotal_bytes"),
        ),
        MemAvailableBytes => g(
            "meshmon_memory_available_bytes",
            "Memory available for new work without swapping.",
            Some("node_memory_MemAvailable_bytes"),
        ),
        MemUsedPct => scaled(
            g(
                "meshmon_memory_used_ratio",
                "Memory in use over physical memory, 0 to 1.",
                None,
            ),
            PCT,
        ),
        SwapUsedBytes => g("meshmon_swap_used_bytes", "Swap in use.", None),
        SwapTotalBytes => g(
            "meshmon_swap_size_bytes",
            "Swap space.",
            Some("node_memory_SwapTotal_bytes"),
        ),
        DiskUsedBytes => g(
            "meshmon_filesystem_used_bytes",
            "Bytes used on the filesystem mounted at 'mount'.",
            None,
        ),
        DiskTotalBytes => g(
            "meshmon_filesystem_size_bytes",
            "Size of the filesystem mounted at 'mount'.",
            Some("node_filesystem_size_bytes"),
        ),
        DiskUsedPct => scaled(
            g(
                "meshmon_filesystem_used_ratio",
                "Used over size of the filesystem mounted at 'mount', 0 to 1.",
                None,
            ),
            PCT,
        ),
        DiskInodesUsed => g(
            "meshmon_filesystem_inodes_used",
            "Inodes in use on the filesystem mounted at 'mount'.",
            None,
        ),
        DiskInodesTotal => g(
            "meshmon_filesystem_inodes",
            "Inodes of the filesystem mounted at 'mount'.",
            Some("node_filesystem_files"),
        ),
        DiskInodesUsedPct => scaled(
            g(
                "meshmon_filesystem_inodes_used_ratio",
                "Inodes in use over inodes of the filesystem mounted at 'mount', 0 to 1.",
                None,
            ),
            PCT,
        ),
        NetRxBytesPerS => g(
            "meshmon_network_receive_bytes_per_second",
            "Bytes received per second on 'iface' over the last interval (rate() of meshmon_network_receive_bytes_total is the Prometheus way).",
            None,
        ),
        NetTxBytesPerS => g(
            "meshmon_network_transmit_bytes_per_second",
            "Bytes sent per second on 'iface' over the last interval (rate() of meshmon_network_transmit_bytes_total is the Prometheus way).",
            None,
        ),
        NetRxBytes => c(
            "meshmon_network_receive_bytes_total",
            "Bytes received on 'iface' (the kernel's counter).",
            Some("node_network_receive_bytes_total"),
        ),
        NetTxBytes => c(
            "meshmon_network_transmit_bytes_total",
            "Bytes sent on 'iface' (the kernel's counter).",
            Some("node_network_transmit_bytes_total"),
        ),
        NetRxPackets => c(
            "meshmon_network_receive_packets_total",
            "Packets received on 'iface' (the kernel's counter).",
            Some("node_network_receive_packets_total"),
        ),
        NetTxPackets => c(
            "meshmon_network_transmit_packets_total",
            "Packets sent on 'iface' (the kernel's counter).",
            Some("node_network_transmit_packets_total"),
        ),
        HostUptimeS => g(
            "meshmon_host_uptime_seconds",
            "Time since the host booted.",
            None,
        ),
        HostBootTimeS => g(
            "meshmon_host_boot_time_seconds",
            "When the host booted, seconds since the Unix epoch.",
            Some("node_boot_time_seconds"),
        ),
        HostClockOffsetMs => scaled(
            g(
                "meshmon_host_clock_offset_seconds",
                "The host's wall clock minus the median of its mesh neighbours' clocks.",
                Some("node_timex_offset_seconds"),
            ),
            0.001,
        ),
        GpuUtilPct => scaled(
            g(
                "meshmon_gpu_utilization_ratio",
                "GPU busy time over the last interval, 0 to 1.",
                None,
            ),
            PCT,
        ),
        GpuMemUsedBytes => g("meshmon_gpu_memory_used_bytes", "GPU memory in use.", None),
        GpuMemTotalBytes => g("meshmon_gpu_memory_size_bytes", "GPU memory.", None),
        GpuTempC => g("meshmon_gpu_temperature_celsius", "GPU temperature.", None),
        GpuPowerW => g("meshmon_gpu_power_watts", "GPU power draw.", None),
        DockerDirBytes => g(
            "meshmon_docker_dir_bytes",
            "Size of the Docker data directory.",
            None,
        ),
        SmartPassed => g(
            "meshmon_smart_passed",
            "1 if the device's SMART self-assessment passed, else 0.",
            None,
        ),
        SmartTempC => g(
            "meshmon_smart_temperature_celsius",
            "Device temperature reported by SMART.",
            None,
        ),
        SmartPowerOnHours => scaled(
            g(
                "meshmon_smart_power_on_seconds",
                "Device power-on time reported by SMART (whole hours).",
                None,
            ),
            3600.0,
        ),
        SmartPercentageUsed => scaled(
            g(
                "meshmon_smart_used_endurance_ratio",
                "NVMe 'percentage used' of the device's rated endurance, 0 to 1 (may exceed 1).",
                None,
            ),
            PCT,
        ),
        SmartMediaErrors => g(
            "meshmon_smart_media_errors",
            "Media and data integrity errors reported by SMART.",
            None,
        ),
        SmartCriticalWarning => g(
            "meshmon_smart_critical_warning",
            "NVMe critical warning bits reported by SMART (0 = none).",
            None,
        ),
        SystemdActive => g(
            "meshmon_systemd_unit_active",
            "1 if the systemd unit is active, else 0.",
            Some("node_systemd_unit_state"),
        ),
        SystemdMemBytes => g(
            "meshmon_systemd_unit_memory_bytes",
            "Memory of the systemd unit's cgroup.",
            None,
        ),
        SystemdCpuPct => scaled(
            g(
                "meshmon_systemd_unit_cpu_usage_ratio",
                "CPU time of the systemd unit over the last interval, in cores (1 = one core busy).",
                None,
            ),
            PCT,
        ),
        CheckUp => g(
            "meshmon_check_up",
            "1 if the last run of the HTTP check succeeded, else 0.",
            Some("probe_success"),
        ),
        CheckLatencyMs => scaled(
            g(
                "meshmon_check_duration_seconds",
                "Duration of the last run of the HTTP check.",
                Some("probe_duration_seconds"),
            ),
            0.001,
        ),
        CheckStatus => g(
            "meshmon_check_http_status_code",
            "HTTP status code of the last run of the check.",
            Some("probe_http_status_code"),
        ),
        CheckCertDaysLeft => scaled(
            g(
                "meshmon_check_cert_remaining_seconds",
                "Time until the check's TLS certificate expires (whole days).",
                None,
            ),
            86_400.0,
        ),
        MeshPeers => g(
            "meshmon_mesh_peers",
            "Links of the host's meshmon node that are up.",
            None,
        ),
        MeshFramesInPerS => g(
            "meshmon_mesh_frames_received_per_second",
            "Frames the host's meshmon node received per second over the last interval.",
            None,
        ),
        MeshFramesIn => c(
            "meshmon_mesh_frames_received_total",
            "Frames the host's meshmon node received since it started.",
            None,
        ),
        MeshFramesDropped => c(
            "meshmon_mesh_frames_dropped_total",
            "Frames the host's meshmon node dropped since it started.",
            None,
        ),
        MeshAuthFailures => c(
            "meshmon_mesh_auth_failures_total",
            "Frames that failed authentication on the host's meshmon node since it started.",
            None,
        ),
        MeshNameConflicts => c(
            "meshmon_mesh_name_conflicts_total",
            "Frames the host's meshmon node received from another live host using its name, since it started.",
            None,
        ),
        RemoteWriteLagS => g(
            "meshmon_remote_write_lag_seconds",
            "Age of the newest sample the remote-write receiver accepted from this dashboard node.",
            None,
        ),
        RemoteWriteQueueSamples => g(
            "meshmon_remote_write_queue_samples",
            "Samples waiting in this dashboard node's remote-write queue.",
            None,
        ),
        RemoteWriteSamplesSent => c(
            "meshmon_remote_write_samples_sent_total",
            "Samples the remote-write receiver accepted from this dashboard node since it started.",
            None,
        ),
        RemoteWriteSamplesDropped => c(
            "meshmon_remote_write_samples_dropped_total",
            "Samples dropped from the full remote-write queue since the node started (read back from the store, up to 1 hour old).",
            None,
        ),
        RemoteWriteSamplesRejected => c(
            "meshmon_remote_write_samples_rejected_total",
            "Samples the remote-write receiver refused for good (HTTP 4xx) since the node started.",
            None,
        ),
        RemoteWriteFailures => c(
            "meshmon_remote_write_failures_total",
            "Remote-write requests that failed and were retried since the node started.",
            None,
        ),
    }
}

/// A series' family: its name, type, help and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name in Prometheus.
    pub name: String,
    /// Its type.
    pub kind: Type,
    /// Prometheus value = meshmon value x `scale`.
    pub scale: f64,
    /// `# HELP` text.
    pub help: String,
}

/// The family of the meshmon metric called `name` (well-known or not).
pub fn family(name: &str) -> Family {
    if let Some(m) = Metric::from_name(name) {
        let m = mapping(m);
        return Family {
            name: m.family.to_owned(),
            kind: m.kind,
            scale: m.scale,
            help: m.help.to_owned(),
        };
    }
    let prom = metric_name(name);
    let kind = if prom.ends_with("_total") {
        Type::Untyped
    } else {
        Type::Gauge
    };
    Family {
        name: prom,
        kind,
        scale: 1.0,
        help: format!("meshmon metric '{name}' (not a well-known metric), latest value per host"),
    }
}

/// `name` with a `meshmon_` prefix; anything outside `[a-zA-Z0-9_:]` becomes `_`.
pub fn metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str("meshmon_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, never reserved (`__`) and never `host`
/// (which is ours): those get an `exported_` prefix, as Prometheus does on conflicts.
pub fn label_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if s == "host" || s.starts_with("__") {
        s.insert_str(0, "exported_");
    }
    s
}

/// The label set of `key` on `host`: `host` plus the series' labels (names made valid; a
/// name that collides after that keeps its first value), sorted by name.
pub fn labels(host: &str, key: &SeriesKey) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(key.labels.len() + 1);
    pairs.push(("host".to_owned(), host.to_owned()));
    for (k, v) in &key.labels {
        let k = label_name(k);
        if !pairs.iter().any(|(seen, _)| *seen == k) {
            pairs.push((k, v.clone()));
        }
    }
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Abbreviations promtool's linter rejects as name tokens, and non-base units.
    const BAD_TOKENS: [&str; 16] = [
        "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "pct", "c", "w", "mhz", "hours",
        "days", "minutes",
    ];

    #[test]
    fn every_metric_maps_to_a_unique_conformant_family() {
        let mut names = HashSet::new();
        for m in Metric::ALL {
            let p = mapping(m);
            assert!(names.insert(p.family), "{} used twice", p.family);
            assert!(p.family.starts_with("meshmon_"), "{}", p.family);
            assert!(!p.help.is_empty());
            assert!(p.scale > 0.0);
            assert_eq!(
                p.kind == Type::Counter,
                p.family.ends_with("_total"),
                "{}: _total if and only if a counter",
                p.family
            );
            for token in p.family.split('_') {
                assert!(
                    !BAD_TOKENS.contains(&token),
                    "{}: abbreviated or non-base unit '{token}'",
                    p.family
                );
            }
            assert_eq!(family(m.name()).name, p.family);
        }
    }

    #[test]
    fn cumulative_metrics_are_counters() {
        for m in [
            Metric::NetRxBytes,
            Metric::NetTxBytes,
            Metric::NetRxPackets,
            Metric::NetTxPackets,
            Metric::MeshFramesIn,
            Metric::MeshFramesDropped,
            Metric::MeshAuthFailures,
        ] {
            assert_eq!(mapping(m).kind, Type::Counter, "{m:?}");
        }
        assert_eq!(mapping(Metric::DiskInodesTotal).kind, Type::Gauge);
        assert_eq!(mapping(Metric::CpuUsagePct).scale, 0.01);
    }

    #[test]
    fn other_metrics_keep_their_names() {
        let f = family("app.queue-depth");
        assert_eq!(f.name, "meshmon_app_queue_depth");
        assert_eq!(f.kind, Type::Gauge);
        assert_eq!(family("jobs_done_total").kind, Type::Untyped);
    }

    #[test]
    fn labels_are_valid_sorted_and_host_is_ours() {
        let key = SeriesKey::custom(
            "x",
            vec![
                ("host".into(), "other".into()),
                ("9a".into(), "v".into()),
                ("a-b".into(), "1".into()),
                ("a_b".into(), "2".into()),
            ],
        );
        assert_eq!(
            labels("h", &key),
            vec![
                ("_9a".to_owned(), "v".to_owned()),
                ("a_b".to_owned(), "1".to_owned()),
                ("exported_host".to_owned(), "other".to_owned()),
                ("host".to_owned(), "h".to_owned()),
            ]
        );
    }
}

/// The README's row for a metric: meshmon name, Prometheus family, type, scaling,
/// node_exporter equivalent.
pub fn readme_row(m: Metric) -> String {
    let p = mapping(m);
    let name = match m.label() {
        Some(l) => format!("{}{{{l}}}", m.name()),
        None => m.name().to_owned(),
    };
    let scale = if p.scale == 1.0 {
        String::new()
    } else if p.scale < 1.0 {
        format!("/ {}", (1.0 / p.scale).round())
    } else {
        format!("x {}", p.scale)
    };
    let ne = p
        .node_exporter
        .map_or_else(String::new, |n| format!("`{n}`"));
    format!(
        "| `{name}` | `{}` | {} | {scale} | {ne} |",
        p.family,
        p.kind.as_str()
    )
}

#[cfg(test)]
mod readme {
    use super::*;

    /// README.md's table lists every mapping as it is.
    #[test]
    fn readme_table_matches_the_mapping() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let rows: Vec<String> = Metric::ALL.into_iter().map(readme_row).collect();
        let missing: Vec<&String> = rows.iter().filter(|r| !readme.contains(*r)).collect();
        assert!(
            missing.is_empty(),
            "README.md lacks rows {missing:#?}; the whole table:\n{}",
            rows.join("\n")
        );
    }
}
