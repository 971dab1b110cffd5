//! The web dashboard's live view: the latest values of every host (a few headline metrics
//! and a 60-point spark ring) kept from the live samples ingestion hands over, the node's
//! mesh status (refreshed every second) and the firing alerts (read from the store every
//! 2 s), so `/api/v1/fleet` answers without SQLite; and the events the SSE stream sends
//! (`fleet`, `host`, `alert`) on one bounded `broadcast` channel, where a lagging client
//! skips events and never holds up the node.
//!
//! Not here: HTTP (the handlers read [`Shared`]), the store (reads go through `Query`).

use crate::Sample;
use crate::reader::AlertRow;
use crate::time::format_rfc3339;
use meshmon_proto::payload::{HostStatus, Status, down_after_ms};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Live frames' samples waiting for the live view (ingest task -> live task).
pub const LIVE_QUEUE: usize = 4096;
/// Events waiting for each SSE client; a client further behind skips the oldest.
pub const EVENT_QUEUE: usize = 1024;
/// Spark points kept per host (one per [`SPARK_STEP_MS`]: 15 minutes).
const SPARK_POINTS: usize = 60;
const SPARK_STEP_MS: i64 = 15_000;
/// At most one `fleet` event per host this often.
const FLEET_EVENT_EVERY_MS: i64 = 1_000;

/// Asks the node's mesh for its status (what `meshmon status` shows); `None` when the mesh
/// has ended.
pub type StatusSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Status>> + Send>> + Send + Sync>;

/// One SSE event: its name (`fleet`, `host`, `alert`) and its JSON data.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: &'static str,
    pub data: Arc<str>,
}

/// The latest values of one host.
#[derive(Debug, Default, Clone)]
struct HostLive {
    cpu: Option<f64>,
    mem: Option<f64>,
    /// Per mount.
    disks: BTreeMap<String, f64>,
    /// Per interface.
    rx: BTreeMap<String, f64>,
    tx: BTreeMap<String, f64>,
    /// Per GPU.
    gpus: BTreeMap<String, f64>,
    uptime_s: Option<f64>,
    clock_offset_ms: Option<f64>,
    /// (bucket start ms, cpu, mem), oldest first.
    spark: VecDeque<(i64, Option<f64>, Option<f64>)>,
    last_event_ms: i64,
}

/// What the handlers read. One lock: the live task writes it a frame at a time, handlers
/// copy a row out; both hold it for microseconds, and neither ever awaits while holding it.
#[derive(Default)]
pub struct LiveState {
    hosts: HashMap<String, HostLive>,
    /// The mesh's last status.
    pub status: Option<Status>,
    /// Firing alerts per host.
    firing: HashMap<String, usize>,
}

/// The live view, shared with the handlers.
pub type Shared = Arc<Mutex<LiveState>>;

impl HostLive {
    fn apply(&mut self, s: &Sample) {
        use meshmon_proto::metrics::Metric as M;
        let label = |l: &str| s.series.label(l).unwrap_or("").to_owned();
        let v = s.value;
        match s.series.name.as_str() {
            n if n == M::CpuUsagePct.name() => self.cpu = Some(v),
            n if n == M::MemUsedPct.name() => self.mem = Some(v),
            n if n == M::DiskUsedPct.name() => {
                self.disks.insert(label("mount"), v);
            }
            n if n == M::NetRxBytesPerS.name() => {
                self.rx.insert(label("iface"), v);
            }
            n if n == M::NetTxBytesPerS.name() => {
                self.tx.insert(label("iface"), v);
            }
            n if n == M::GpuUtilPct.name() => {
                self.gpus.insert(label("gpu"), v);
            }
            n if n == M::HostUptimeS.name() => self.uptime_s = Some(v),
            n if n == M::HostClockOffsetMs.name() => self.clock_offset_ms = Some(v),
            _ => {}
        }
    }

    fn push_spark(&mut self, ts_ms: i64) {
        let bucket = ts_ms - ts_ms.rem_euclid(SPARK_STEP_MS);
        match self.spark.back_mut() {
            Some(last) if last.0 == bucket => *last = (bucket, self.cpu, self.mem),
            Some(last) if last.0 > bucket => {}
            _ => {
                self.spark.push_back((bucket, self.cpu, self.mem));
                while self.spark.len() > SPARK_POINTS {
                    self.spark.pop_front();
                }
            }
        }
    }
}

/// Up: heard within 3 of its intervals (the one rule, `down_after_ms`).
fn is_up(h: &HostStatus, now_ms: u64) -> bool {
    now_ms.saturating_sub(h.last_seen_ms) <= down_after_ms(h.interval_ms)
}

fn num(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A `hosts` row (the fields of `meshmon query hosts --format json`) from the mesh's view.
fn host_row(h: &HostStatus, live: Option<&HostLive>, now_ms: u64) -> Value {
    let up = is_up(h, now_ms);
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    json!({
        "host": h.name,
        "status": if up { "up" } else { "down" },
        "last_seen": format_rfc3339(i64::try_from(h.last_seen_ms).unwrap_or(i64::MAX)),
        "hops": h.hops,
        "version": nonempty(&h.version),
        "os": nonempty(&h.os),
        "uptime_s": live.and_then(|l| l.uptime_s).map(|u| u as i64),
        "tags": h.tags,
        "clock_offset_ms": live
            .and_then(|l| l.clock_offset_ms)
            .map(|o| o as i64)
            .or(h.clock_offset_ms),
    })
}

impl LiveState {
    /// The `/api/v1/fleet` row of `h` (with the spark lines when `spark`).
    fn fleet_row(&self, h: &HostStatus, now_ms: u64, spark: bool) -> Value {
        let live = self.hosts.get(&h.name);
        let mut row = host_row(h, live, now_ms);
        let empty = HostLive::default();
        let l = live.unwrap_or(&empty);
        let worst = l
            .disks
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(m, v)| (m.clone(), *v));
        let sum = |m: &BTreeMap<String, f64>| (!m.is_empty()).then(|| m.values().sum::<f64>());
        let gpu = (!l.gpus.is_empty()).then(|| l.gpus.values().sum::<f64>() / l.gpus.len() as f64);
        let extra = json!({
            "cpu_pct": num(l.cpu),
            "mem_pct": num(l.mem),
            "disk_worst_pct": num(worst.as_ref().map(|w| w.1)),
            "disk_worst_mount": worst.map(|w| w.0),
            "net_rx_bytes_per_s": num(sum(&l.rx)),
            "net_tx_bytes_per_s": num(sum(&l.tx)),
            "gpu_pct": num(gpu),
            "alerts": self.firing.get(&h.name).copied().unwrap_or(0),
        });
        if let (Value::Object(r), Value::Object(e)) = (&mut row, extra) {
            r.extend(e);
            if spark {
                let since = i64::try_from(now_ms).unwrap_or(i64::MAX) - 15 * 60_000;
                let pts = l.spark.iter().filter(|p| p.0 >= since);
                let (cpu, mem): (Vec<Value>, Vec<Value>) =
                    pts.map(|p| (num(p.1), num(p.2))).unzip();
                r.insert("spark".into(), json!({"cpu_pct": cpu, "mem_pct": mem}));
            }
        }
        row
    }

    /// Every host of the mesh's last status as `/api/v1/fleet` rows, by name.
    pub fn fleet(&self, now_ms: u64) -> Vec<Value> {
        let Some(st) = &self.status else {
            return Vec::new();
        };
        let mut hosts: Vec<&HostStatus> = st.hosts.iter().collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts
            .into_iter()
            .map(|h| self.fleet_row(h, now_ms, true))
            .collect()
    }

    /// Every host of the mesh's last status as `/api/v1/hosts`-style rows.
    pub fn hosts(&self, now_ms: u64) -> Vec<(String, bool)> {
        self.status.as_ref().map_or_else(Vec::new, |st| {
            let mut v: Vec<(String, bool)> = st
                .hosts
                .iter()
                .map(|h| {
                    let up = is_up(h, now_ms);
                    (h.name.clone(), up)
                })
                .collect();
            v.sort();
            v
        })
    }
}

/// What the live task needs.
pub struct LiveParams {
    /// Live samples from ingestion.
    pub samples: mpsc::Receiver<Vec<Sample>>,
    pub status: StatusSource,
    /// The store, for the firing alerts.
    pub store: PathBuf,
    pub state: Shared,
    pub events: broadcast::Sender<Event>,
}

fn send(events: &broadcast::Sender<Event>, name: &'static str, data: &Value) {
    // No receivers is fine: nobody is watching.
    let _ = events.send(Event {
        name,
        data: data.to_string().into(),
    });
}

/// Starts the live task; it ends on `shutdown` or when ingestion ends.
pub fn start(mut p: LiveParams, tracker: &TaskTracker, shutdown: CancellationToken) {
    tracker.spawn(async move {
        let mut status_tick = tokio::time::interval(Duration::from_secs(1));
        let mut alert_tick = tokio::time::interval(Duration::from_secs(2));
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        alert_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut alerts: HashMap<i64, AlertRow> = HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                batch = p.samples.recv() => match batch {
                    Some(batch) => on_samples(&p, &batch),
                    None => break,
                },
                _ = status_tick.tick() => {
                    if let Some(st) = (p.status)().await {
                        on_status(&p, st);
                    }
                }
                _ = alert_tick.tick() => {
                    let store = p.store.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        crate::Reader::open(&store)?.alerts(true, Some(crate::time::now_ms() - 24 * 3_600_000))
                    });
                    if let Ok(Ok(rows)) = read.await {
                        on_alerts(&p, &mut alerts, rows);
                    }
                }
            }
        }
    });
}

fn now_u64() -> u64 {
    meshmon_proto::clock::wall_ms()
}

fn on_samples(p: &LiveParams, batch: &[Sample]) {
    let Some(first) = batch.first() else { return };
    let now = now_u64();
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let Ok(mut st) = p.state.lock() else { return };
    // The frame arrived now: the row says so at once, not at the next status refresh.
    if let Some(hs) = st
        .status
        .as_mut()
        .and_then(|s| s.hosts.iter_mut().find(|h| h.name == first.host))
    {
        hs.last_seen_ms = hs.last_seen_ms.max(now);
    }
    let h = st.hosts.entry(first.host.clone()).or_default();
    let mut core = false;
    for s in batch {
        h.apply(s);
        core |= s.series.name == meshmon_proto::metrics::Metric::CpuUsagePct.name();
    }
    h.push_spark(first.ts_ms);
    if !core || now_i - h.last_event_ms < FLEET_EVENT_EVERY_MS {
        return;
    }
    h.last_event_ms = now_i;
    let row = st
        .status
        .as_ref()
        .and_then(|s| s.hosts.iter().find(|x| x.name == first.host))
        .map(|hs| st.fleet_row(hs, now, false));
    drop(st);
    if let Some(row) = row {
        send(&p.events, "fleet", &row);
    }
}

fn on_status(p: &LiveParams, new: Status) {
    let now = now_u64();
    let Ok(mut st) = p.state.lock() else { return };
    let was: HashMap<String, bool> = st.hosts(now).into_iter().collect();
    st.status = Some(new);
    let mut changed = Vec::new();
    if let Some(s) = &st.status {
        for h in &s.hosts {
            let up = is_up(h, now);
            if was.get(&h.name) != Some(&up) {
                changed.push(host_row(h, st.hosts.get(&h.name), now));
            }
        }
    }
    drop(st);
    for row in changed {
        send(&p.events, "host", &row);
    }
}

fn on_alerts(p: &LiveParams, known: &mut HashMap<i64, AlertRow>, rows: Vec<AlertRow>) {
    let mut firing: HashMap<String, usize> = HashMap::new();
    for a in &rows {
        if a.state == "firing" {
            *firing.entry(a.host.clone()).or_default() += 1;
        }
        if known.get(&a.id) != Some(a) {
            send(&p.events, "alert", &alert_json(a));
        }
    }
    *known = rows.into_iter().map(|a| (a.id, a)).collect();
    if let Ok(mut st) = p.state.lock() {
        st.firing = firing;
    }
}

/// An alerts row as `meshmon query alerts --format json` writes it.
pub fn alert_json(a: &AlertRow) -> Value {
    json!({
        "id": a.id,
        "rule": a.rule,
        "host": a.host,
        "state": a.state,
        "severity": a.severity,
        "started": format_rfc3339(a.started_ms),
        "ended": a.ended_ms.map(format_rfc3339),
        "value": num(a.value),
        "acked": if a.acked { "true" } else { "false" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::SeriesKey;
    use meshmon_proto::metrics::Metric;

    fn sample(series: SeriesKey, ts_ms: i64, value: f64) -> Sample {
        Sample {
            host: "h".into(),
            series,
            ts_ms,
            value,
        }
    }

    #[test]
    fn a_fleet_row_has_the_worst_disk_summed_network_and_a_bounded_spark() {
        let mut st = LiveState::default();
        let h = st.hosts.entry("h".into()).or_default();
        for i in 0..100i64 {
            let ts = i * SPARK_STEP_MS;
            for s in [
                sample(SeriesKey::new(Metric::CpuUsagePct), ts, i as f64),
                sample(SeriesKey::new(Metric::MemUsedPct), ts, 50.0),
                sample(SeriesKey::labelled(Metric::DiskUsedPct, "/"), ts, 40.0),
                sample(SeriesKey::labelled(Metric::DiskUsedPct, "/data"), ts, 90.0),
                sample(
                    SeriesKey::labelled(Metric::NetRxBytesPerS, "eth0"),
                    ts,
                    100.0,
                ),
                sample(
                    SeriesKey::labelled(Metric::NetRxBytesPerS, "eth1"),
                    ts,
                    23.0,
                ),
            ] {
                h.apply(&s);
            }
            h.push_spark(ts);
        }
        let now = u64::try_from(99 * SPARK_STEP_MS).unwrap_or(0);
        let hs = HostStatus {
            name: "h".into(),
            last_seen_ms: now,
            interval_ms: 1000,
            ..HostStatus::default()
        };
        let row = st.fleet_row(&hs, now, true);
        assert_eq!(row["status"], "up");
        assert_eq!(row["disk_worst_mount"], "/data");
        assert_eq!(row["disk_worst_pct"], 90.0);
        assert_eq!(row["net_rx_bytes_per_s"], 123.0);
        assert_eq!(row["net_tx_bytes_per_s"], Value::Null);
        assert_eq!(row["gpu_pct"], Value::Null, "no GPU: null");
        let cpu = row["spark"]["cpu_pct"].as_array().expect("spark");
        assert_eq!(cpu.len(), SPARK_POINTS, "15 minutes at 15 s: 60 points");
        assert_eq!(cpu.last(), Some(&json!(99.0)), "newest last");
        assert_eq!(cpu.first(), Some(&json!(40.0)), "oldest first");
        let down = st.fleet_row(&hs, now + 10_000, false);
        assert_eq!(down["status"], "down");
        assert!(down.get("spark").is_none());
    }
}
