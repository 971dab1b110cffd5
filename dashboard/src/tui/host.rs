//! One host as the TUI knows it: its status in the node's view, host info, the latest value
//! of every series, a summary for the fleet table, and the history rings of the metrics that
//! are charted. Whether it is up, stale or down is decided here.
//!
//! Not here: decoding frames into values (`data.rs` owns the per-host decoder use).

use super::history::{Aggregate, Ring, aggregate_of};
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::{HostInfo, HostStatus};
use std::collections::{BTreeMap, HashMap};

/// Metrics whose history is kept (per label value, plus the unlabelled aggregate for labelled
/// ones): what the sparklines and charts show. Keeping every series would cost ~27 KB each.
pub const HISTORY_METRICS: [&str; 8] = [
    "cpu.usage_pct",
    "cpu.load1",
    "mem.used_pct",
    "disk.used_pct",
    "net.rx_bytes_per_s",
    "net.tx_bytes_per_s",
    "gpu.util_pct",
    "check.latency_ms",
];

/// Whether a host is being heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostState {
    /// Heard within 3 of its intervals (at least 5 s), like `meshmon status`.
    Up,
    /// Not heard for longer than that, but within a minute.
    Stale,
    /// Not heard for over a minute.
    Down,
}

impl HostState {
    pub fn label(self) -> &'static str {
        match self {
            HostState::Up => "up",
            HostState::Stale => "stale",
            HostState::Down => "down",
        }
    }
}

/// The latest headline values of a host, for the fleet table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub cpu_pct: Option<f64>,
    pub load1: Option<f64>,
    pub mem_pct: Option<f64>,
    pub mem_used: Option<f64>,
    pub mem_total: Option<f64>,
    /// Highest `disk.used_pct` and its mount.
    pub disk_worst: Option<(String, f64)>,
    pub rx: Option<f64>,
    pub tx: Option<f64>,
    /// Highest `gpu.util_pct` and the number of GPUs.
    pub gpu: Option<(f64, usize)>,
    pub uptime_s: Option<f64>,
}

/// Everything known about one host.
#[derive(Debug, Default)]
pub struct HostData {
    pub name: String,
    /// From the node's latest Status.
    pub status: Option<HostStatus>,
    pub info: Option<HostInfo>,
    /// Latest value of every series, and when (origin's clock).
    pub latest: BTreeMap<SeriesKey, f64>,
    pub latest_ms: i64,
    pub summary: Summary,
    history: HashMap<SeriesKey, Ring>,
}

impl HostData {
    /// A host known by name only, so far.
    pub fn new(name: &str) -> HostData {
        HostData {
            name: name.to_owned(),
            ..HostData::default()
        }
    }

    /// Up, stale or down at `now_ms`, from the node's last-seen time.
    pub fn state(&self, now_ms: i64) -> HostState {
        let Some(s) = &self.status else {
            return HostState::Down;
        };
        let limit =
            i64::try_from(meshmon_proto::payload::down_after_ms(s.interval_ms)).unwrap_or(i64::MAX);
        let ago = now_ms - s.last_seen_ms as i64;
        if ago <= limit {
            HostState::Up
        } else if ago <= 60_000 {
            HostState::Stale
        } else {
            HostState::Down
        }
    }

    /// Hop distance from this node (0 for itself).
    pub fn hops(&self) -> Option<u8> {
        self.status.as_ref().map(|s| s.hops)
    }

    /// Tags from host info, else from Status.
    pub fn tags(&self) -> &[String] {
        match (&self.info, &self.status) {
            (Some(i), _) if !i.tags.is_empty() => &i.tags,
            (_, Some(s)) => &s.tags,
            _ => &[],
        }
    }

    /// Latest values of metric `name`, by the value of `label`.
    pub fn by_label<'a>(
        &'a self,
        name: &'a str,
        label: &'a str,
    ) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.latest
            .range(SeriesKey::custom(name, Vec::new())..)
            .take_while(move |(k, _)| k.name == name)
            .filter_map(move |(k, v)| Some((k.label(label)?, *v)))
    }

    /// Latest value of an unlabelled metric.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.latest
            .get(&SeriesKey::custom(name, Vec::new()))
            .copied()
    }

    /// The history ring of `key`, if kept.
    pub fn ring(&self, key: &SeriesKey) -> Option<&Ring> {
        self.history.get(key)
    }

    /// Heap bytes held by the history rings.
    pub fn history_bytes(&self) -> usize {
        self.history.values().map(Ring::heap_bytes).sum()
    }

    /// Records the values decoded from one Samples frame at `ts_ms`; `whole` when they are
    /// every series of the host (the latest values are replaced, and aggregates recorded).
    pub fn ingest(&mut self, ts_ms: i64, values: Vec<(SeriesKey, f64)>, whole: bool) {
        if whole {
            self.latest.clear();
        }
        let mut sums: HashMap<&'static str, f64> = HashMap::new();
        for (k, v) in values {
            if let Some(m) = HISTORY_METRICS.iter().find(|m| **m == k.name) {
                self.history.entry(k.clone()).or_default().push(ts_ms, v);
                if !k.labels.is_empty() {
                    let e = sums.entry(m).or_insert(match aggregate_of(m) {
                        Aggregate::Sum => 0.0,
                        Aggregate::Max => f64::NEG_INFINITY,
                    });
                    *e = match aggregate_of(m) {
                        Aggregate::Sum => *e + v,
                        Aggregate::Max => e.max(v),
                    };
                }
            }
            self.latest.insert(k, v);
        }
        if whole {
            for (m, v) in sums {
                let key = SeriesKey::custom(m, Vec::new());
                self.history.entry(key).or_default().push(ts_ms, v);
            }
        }
        self.latest_ms = self.latest_ms.max(ts_ms);
        self.summary = self.summarize();
    }

    fn summarize(&self) -> Summary {
        let sum = |name| {
            let mut it = self.by_label(name, "iface").map(|(_, v)| v).peekable();
            it.peek().is_some().then(|| it.sum())
        };
        let disk_worst = self
            .by_label("disk.used_pct", "mount")
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(m, v)| (m.to_owned(), v));
        let gpus: Vec<f64> = self.by_label("gpu.util_pct", "gpu").map(|g| g.1).collect();
        Summary {
            cpu_pct: self.value("cpu.usage_pct"),
            load1: self.value("cpu.load1"),
            mem_pct: self.value("mem.used_pct"),
            mem_used: self.value("mem.used_bytes"),
            mem_total: self.value("mem.total_bytes"),
            disk_worst,
            rx: sum("net.rx_bytes_per_s"),
            tx: sum("net.tx_bytes_per_s"),
            gpu: (!gpus.is_empty()).then(|| (gpus.iter().copied().fold(0.0, f64::max), gpus.len())),
            uptime_s: self.value("host.uptime_s"),
        }
    }
}
