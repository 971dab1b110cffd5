//! Metric identity: the canonical names of well-known metrics ([`Metric`]), series keys
//! (`name{label="value"}`) and selectors that match them. User-supplied metrics (textfile) use
//! [`SeriesKey::custom`]; everything else goes through [`Metric`] so no name is spelled twice.

use std::fmt;

/// A well-known metric. Units are in the name. Most are gauges (the value now); the
/// cumulative ones (`net.rx_bytes`, `net.rx_packets`, `mesh.frames_in`, `mesh.frames_dropped`,
/// `mesh.auth_failures`, ...) count since their source started (interface, kernel or agent
/// boot) and are exported as Prometheus counters ([`crate::prometheus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    CpuUsagePct,
    CpuCoreUsagePct,
    CpuLoad1,
    CpuLoad5,
    CpuLoad15,
    CpuFreqMhz,
    CpuTempC,
    MemUsedBytes,
    MemTotalBytes,
    MemAvailableBytes,
    MemUsedPct,
    SwapUsedBytes,
    SwapTotalBytes,
    DiskUsedBytes,
    DiskTotalBytes,
    DiskUsedPct,
    DiskInodesUsed,
    DiskInodesTotal,
    DiskInodesUsedPct,
    NetRxBytesPerS,
    NetTxBytesPerS,
    NetRxBytes,
    NetTxBytes,
    NetRxPackets,
    NetTxPackets,
    HostUptimeS,
    HostBootTimeS,
    HostClockOffsetMs,
    GpuUtilPct,
    GpuMemUsedBytes,
    GpuMemTotalBytes,
    GpuTempC,
    GpuPowerW,
    DockerDirBytes,
    SmartPassed,
    SmartTempC,
    SmartPowerOnHours,
    SmartPercentageUsed,
    SmartMediaErrors,
    SmartCriticalWarning,
    SystemdActive,
    SystemdMemBytes,
    SystemdCpuPct,
    CheckUp,
    CheckLatencyMs,
    CheckStatus,
    CheckCertDaysLeft,
    MeshPeers,
    MeshFramesInPerS,
    MeshFramesIn,
    MeshFramesDropped,
    MeshAuthFailures,
    MeshNameConflicts,
    RemoteWriteLagS,
    RemoteWriteQueueSamples,
    RemoteWriteSamplesSent,
    RemoteWriteSamplesDropped,
    RemoteWriteSamplesRejected,
    RemoteWriteFailures,
    // Disk I/O, network errors, pressure, OOM kills (issue 16).
    DiskioReadBytesPerS,
    DiskioWriteBytesPerS,
    DiskioIops,
    DiskioReadIops,
    DiskioWriteIops,
    DiskioUtilPct,
    DiskioAwaitMs,
    NetErrors,
    NetDrops,
    NetRxErrorsPerS,
    NetTxErrorsPerS,
    NetRxDropsPerS,
    NetTxDropsPerS,
    PsiCpuSomePct,
    PsiMemSomePct,
    PsiMemFullPct,
    PsiIoSomePct,
    PsiIoFullPct,
    MemOomKills,
    ContainerCpuPct,
    ContainerMemBytes,
    ContainerMemLimitBytes,
    ContainerNetRxBytesPerS,
    ContainerNetTxBytesPerS,
    ContainerBlkioReadBytesPerS,
    ContainerBlkioWriteBytesPerS,
    ContainerRunning,
    ContainerHealthy,
    ContainerRestarts,
    ContainerInfo,
    // Processes (issue 16, `collect/procs.rs`).
    ProcCpuPct,
    ProcMemBytes,
    ProcIoReadBytesPerS,
    ProcIoWriteBytesPerS,
    ProcCount,
}

impl Metric {
    /// Every well-known metric.
    pub const ALL: [Metric; 94] = [
        Metric::CpuUsagePct,
        Metric::CpuCoreUsagePct,
        Metric::CpuLoad1,
        Metric::CpuLoad5,
        Metric::CpuLoad15,
        Metric::CpuFreqMhz,
        Metric::CpuTempC,
        Metric::MemUsedBytes,
        Metric::MemTotalBytes,
        Metric::MemAvailableBytes,
        Metric::MemUsedPct,
        Metric::SwapUsedBytes,
        Metric::SwapTotalBytes,
        Metric::DiskUsedBytes,
        Metric::DiskTotalBytes,
        Metric::DiskUsedPct,
        Metric::DiskInodesUsed,
        Metric::DiskInodesTotal,
        Metric::DiskInodesUsedPct,
        Metric::NetRxBytesPerS,
        Metric::NetTxBytesPerS,
        Metric::NetRxBytes,
        Metric::NetTxBytes,
        Metric::NetRxPackets,
        Metric::NetTxPackets,
        Metric::HostUptimeS,
        Metric::HostBootTimeS,
        Metric::HostClockOffsetMs,
        Metric::GpuUtilPct,
        Metric::GpuMemUsedBytes,
        Metric::GpuMemTotalBytes,
        Metric::GpuTempC,
        Metric::GpuPowerW,
        Metric::DockerDirBytes,
        Metric::SmartPassed,
        Metric::SmartTempC,
        Metric::SmartPowerOnHours,
        Metric::SmartPercentageUsed,
        Metric::SmartMediaErrors,
        Metric::SmartCriticalWarning,
        Metric::SystemdActive,
        Metric::SystemdMemBytes,
        Metric::SystemdCpuPct,
        Metric::CheckUp,
        Metric::CheckLatencyMs,
        Metric::CheckStatus,
        Metric::CheckCertDaysLeft,
        Metric::MeshPeers,
        Metric::MeshFramesInPerS,
        Metric::MeshFramesIn,
        Metric::MeshFramesDropped,
        Metric::MeshAuthFailures,
        Metric::MeshNameConflicts,
        Metric::RemoteWriteLagS,
        Metric::RemoteWriteQueueSamples,
        Metric::RemoteWriteSamplesSent,
        Metric::RemoteWriteSamplesDropped,
        Metric::RemoteWriteSamplesRejected,
        Metric::RemoteWriteFailures,
        // Disk I/O, network errors, pressure, OOM kills (issue 16).
        Metric::DiskioReadBytesPerS,
        Metric::DiskioWriteBytesPerS,
        Metric::DiskioIops,
        Metric::DiskioReadIops,
        Metric::DiskioWriteIops,
        Metric::DiskioUtilPct,
        Metric::DiskioAwaitMs,
        Metric::NetErrors,
        Metric::NetDrops,
        Metric::NetRxErrorsPerS,
        Metric::NetTxErrorsPerS,
        Metric::NetRxDropsPerS,
        Metric::NetTxDropsPerS,
        Metric::PsiCpuSomePct,
        Metric::PsiMemSomePct,
        Metric::PsiMemFullPct,
        Metric::PsiIoSomePct,
        Metric::PsiIoFullPct,
        Metric::MemOomKills,
        Metric::ContainerCpuPct,
        Metric::ContainerMemBytes,
        Metric::ContainerMemLimitBytes,
        Metric::ContainerNetRxBytesPerS,
        Metric::ContainerNetTxBytesPerS,
        Metric::ContainerBlkioReadBytesPerS,
        Metric::ContainerBlkioWriteBytesPerS,
        Metric::ContainerRunning,
        Metric::ContainerHealthy,
        Metric::ContainerRestarts,
        Metric::ContainerInfo,
        Metric::ProcCpuPct,
        Metric::ProcMemBytes,
        Metric::ProcIoReadBytesPerS,
        Metric::ProcIoWriteBytesPerS,
        Metric::ProcCount,
    ];

    /// The canonical dotted name.
    pub fn name(self) -> &'static str {
        use Metric::*;
        match self {
            CpuUsagePct => "cpu.usage_pct",
            CpuCoreUsagePct => "cpu.core_usage_pct",
            CpuLoad1 => "cpu.load1",
            CpuLoad5 => "cpu.load5",
            CpuLoad15 => "cpu.load15",
            CpuFreqMhz => "cpu.freq_mhz",
            CpuTempC => "cpu.temp_c",
            MemUsedBytes => "mem.used_bytes",
            MemTotalBytes => "mem.total_bytes",
            MemAvailableBytes => "mem.available_bytes",
            MemUsedPct => "mem.used_pct",
            SwapUsedBytes => "swap.used_bytes",
            SwapTotalBytes => "swap.total_bytes",
            DiskUsedBytes => "disk.used_bytes",
            DiskTotalBytes => "disk.total_bytes",
            DiskUsedPct => "disk.used_pct",
            DiskInodesUsed => "disk.inodes_used",
            DiskInodesTotal => "disk.inodes_total",
            DiskInodesUsedPct => "disk.inodes_used_pct",
            NetRxBytesPerS => "net.rx_bytes_per_s",
            NetTxBytesPerS => "net.tx_bytes_per_s",
            NetRxBytes => "net.rx_bytes",
            NetTxBytes => "net.tx_bytes",
            NetRxPackets => "net.rx_packets",
            NetTxPackets => "net.tx_packets",
            HostUptimeS => "host.uptime_s",
            HostBootTimeS => "host.boot_time_s",
            HostClockOffsetMs => "host.clock_offset_ms",
            GpuUtilPct => "gpu.util_pct",
            GpuMemUsedBytes => "gpu.mem_used_bytes",
            GpuMemTotalBytes => "gpu.mem_total_bytes",
            GpuTempC => "gpu.temp_c",
            GpuPowerW => "gpu.power_w",
            DockerDirBytes => "docker.dir_bytes",
            SmartPassed => "smart.passed",
            SmartTempC => "smart.temp_c",
            SmartPowerOnHours => "smart.power_on_hours",
            SmartPercentageUsed => "smart.percentage_used",
            SmartMediaErrors => "smart.media_errors",
            SmartCriticalWarning => "smart.critical_warning",
            SystemdActive => "systemd.active",
            SystemdMemBytes => "systemd.mem_bytes",
            SystemdCpuPct => "systemd.cpu_pct",
            CheckUp => "check.up",
            CheckLatencyMs => "check.latency_ms",
            CheckStatus => "check.status",
            CheckCertDaysLeft => "check.cert_days_left",
            MeshPeers => "mesh.peers",
            MeshFramesInPerS => "mesh.frames_in_per_s",
            MeshFramesIn => "mesh.frames_in",
            MeshFramesDropped => "mesh.frames_dropped",
            MeshAuthFailures => "mesh.auth_failures",
            MeshNameConflicts => "mesh.name_conflicts",
            RemoteWriteLagS => "remote_write.lag_s",
            RemoteWriteQueueSamples => "remote_write.queue_samples",
            RemoteWriteSamplesSent => "remote_write.samples_sent",
            RemoteWriteSamplesDropped => "remote_write.samples_dropped",
            RemoteWriteSamplesRejected => "remote_write.samples_rejected",
            RemoteWriteFailures => "remote_write.failures",
            // Disk I/O, network errors, pressure, OOM kills (issue 16).
            DiskioReadBytesPerS => "diskio.read_bytes_per_s",
            DiskioWriteBytesPerS => "diskio.write_bytes_per_s",
            DiskioIops => "diskio.iops",
            DiskioReadIops => "diskio.read_iops",
            DiskioWriteIops => "diskio.write_iops",
            DiskioUtilPct => "diskio.util_pct",
            DiskioAwaitMs => "diskio.await_ms",
            NetErrors => "net.errors",
            NetDrops => "net.drops",
            NetRxErrorsPerS => "net.rx_errors_per_s",
            NetTxErrorsPerS => "net.tx_errors_per_s",
            NetRxDropsPerS => "net.rx_drops_per_s",
            NetTxDropsPerS => "net.tx_drops_per_s",
            PsiCpuSomePct => "psi.cpu_some_pct",
            PsiMemSomePct => "psi.mem_some_pct",
            PsiMemFullPct => "psi.mem_full_pct",
            PsiIoSomePct => "psi.io_some_pct",
            PsiIoFullPct => "psi.io_full_pct",
            MemOomKills => "mem.oom_kills",
            ContainerCpuPct => "container.cpu_pct",
            ContainerMemBytes => "container.mem_bytes",
            ContainerMemLimitBytes => "container.mem_limit_bytes",
            ContainerNetRxBytesPerS => "container.net_rx_bytes_per_s",
            ContainerNetTxBytesPerS => "container.net_tx_bytes_per_s",
            ContainerBlkioReadBytesPerS => "container.blkio_read_bytes_per_s",
            ContainerBlkioWriteBytesPerS => "container.blkio_write_bytes_per_s",
            ContainerRunning => "container.running",
            ContainerHealthy => "container.healthy",
            ContainerRestarts => "container.restarts",
            ContainerInfo => "container.info",
            ProcCpuPct => "proc.cpu_pct",
            ProcMemBytes => "proc.mem_bytes",
            ProcIoReadBytesPerS => "proc.io_read_bytes_per_s",
            ProcIoWriteBytesPerS => "proc.io_write_bytes_per_s",
            ProcCount => "proc.count",
        }
    }

    /// The label this metric is keyed by, if any.
    pub fn label(self) -> Option<&'static str> {
        use Metric::*;
        match self {
            CpuCoreUsagePct => Some("core"),
            CpuTempC => Some("sensor"),
            DiskUsedBytes | DiskTotalBytes | DiskUsedPct | DiskInodesUsed | DiskInodesTotal
            | DiskInodesUsedPct => Some("mount"),
            NetRxBytesPerS | NetTxBytesPerS | NetRxBytes | NetTxBytes | NetRxPackets
            | NetTxPackets => Some("iface"),
            GpuUtilPct | GpuMemUsedBytes | GpuMemTotalBytes | GpuTempC | GpuPowerW => Some("gpu"),
            SmartPassed | SmartTempC | SmartPowerOnHours | SmartPercentageUsed
            | SmartMediaErrors | SmartCriticalWarning => Some("device"),
            SystemdActive | SystemdMemBytes | SystemdCpuPct => Some("unit"),
            CheckUp | CheckLatencyMs | CheckStatus | CheckCertDaysLeft => Some("check"),
            // Disk I/O, network errors (issue 16).
            DiskioReadBytesPerS | DiskioWriteBytesPerS | DiskioIops | DiskioReadIops
            | DiskioWriteIops | DiskioUtilPct | DiskioAwaitMs => Some("device"),
            NetErrors | NetDrops | NetRxErrorsPerS | NetTxErrorsPerS | NetRxDropsPerS
            | NetTxDropsPerS => Some("iface"),
            ContainerCpuPct
            | ContainerMemBytes
            | ContainerMemLimitBytes
            | ContainerNetRxBytesPerS
            | ContainerNetTxBytesPerS
            | ContainerBlkioReadBytesPerS
            | ContainerBlkioWriteBytesPerS
            | ContainerRunning
            | ContainerHealthy
            | ContainerRestarts
            | ContainerInfo => Some("container"),
            ProcCpuPct | ProcMemBytes | ProcIoReadBytesPerS | ProcIoWriteBytesPerS | ProcCount => {
                Some("name")
            }
            _ => None,
        }
    }

    /// The well-known metric with this name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// One time series of a host: a metric name and its labels, sorted by label name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Dotted metric name.
    pub name: String,
    /// Label pairs, sorted by label name, names unique.
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    /// A well-known metric without labels.
    pub fn new(metric: Metric) -> SeriesKey {
        SeriesKey {
            name: metric.name().to_owned(),
            labels: Vec::new(),
        }
    }

    /// A well-known metric with its label (see [`Metric::label`]) set to `value`.
    pub fn labelled(metric: Metric, value: impl Into<String>) -> SeriesKey {
        let key = metric.label().unwrap_or("id");
        SeriesKey {
            name: metric.name().to_owned(),
            labels: vec![(key.to_owned(), value.into())],
        }
    }

    /// Any metric (textfile metrics keep their own names); labels are sorted here.
    pub fn custom(name: impl Into<String>, mut labels: Vec<(String, String)>) -> SeriesKey {
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        SeriesKey {
            name: name.into(),
            labels,
        }
    }

    /// The value of label `name`, if set.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}=\"")?;
                for c in v.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// A metric selector: `name` or `name{label="value",...}`. It matches series of that name whose
/// labels include every given pair (other labels may be present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Metric name to match exactly.
    pub name: String,
    /// Label pairs that must all be present.
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// Parses `name` or `name{a="x",b="y"}`. The error says what is wrong.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        let (name, rest) = match s.find('{') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':')
        {
            return Err(format!(
                "'{s}' is not a metric selector (expected name or name{{label=\"value\"}})"
            ));
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| format!("'{s}': unbalanced braces"))?;
            let mut chars = inner.chars().peekable();
            loop {
                while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    break;
                }
                let key: String = chars
                    .by_ref()
                    .take_while(|c| *c != '=')
                    .collect::<String>()
                    .trim()
                    .to_owned();
                if key.is_empty() {
                    return Err(format!("'{s}': empty label name"));
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.next() != Some('"') {
                    return Err(format!("'{s}': label '{key}' needs a quoted value"));
                }
                let mut value = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => break,
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err(format!("'{s}': unterminated value of label '{key}'"));
                }
                labels.push((key, value));
            }
        }
        labels.sort();
        Ok(Selector {
            name: name.to_owned(),
            labels,
        })
    }

    /// Whether `key` is selected.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        key.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| key.label(k).is_some_and(|have| have == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for m in Metric::ALL {
            assert!(seen.insert(m.name()), "duplicate {}", m.name());
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
    }

    #[test]
    fn display_and_selector() {
        let k = SeriesKey::labelled(Metric::DiskUsedPct, "/");
        assert_eq!(k.to_string(), "disk.used_pct{mount=\"/\"}");
        let sel = Selector::parse("disk.used_pct{mount=\"/\"}").expect("valid");
        assert!(sel.matches(&k));
        assert!(
            !Selector::parse("disk.used_pct{mount=\"/home\"}")
                .expect("valid")
                .matches(&k)
        );
        assert!(Selector::parse("disk.used_pct").expect("valid").matches(&k));
        assert!(!Selector::parse("cpu.usage_pct").expect("valid").matches(&k));
    }

    #[test]
    fn selector_errors() {
        for bad in [
            "",
            "{a=\"b\"}",
            "x{a=b}",
            "x{a=\"b}",
            "x{a=\"b\"",
            "bad name",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        let s = Selector::parse("x{b=\"2\", a=\"q\\\"uote\"}").expect("valid");
        assert_eq!(
            s.labels,
            vec![("a".into(), "q\"uote".into()), ("b".into(), "2".into())]
        );
    }
}
