//! The Prometheus model and text format: [`LatestValues`] keeps the latest live value of
//! every series of every host (decoded from the frames this node accepts), and [`render`]
//! writes it, with the node's own mesh counters, in the text exposition format 0.0.4.
//! Names, types, units and help come from `meshmon_proto::prometheus`; cumulative metrics
//! are the agents' raw counters, exported as they arrive.
//!
//! Not here: sockets or tasks (`export::mod`), the name mapping (`proto`), or anything
//! historic (replayed frames are ignored: Prometheus wants the present, the store keeps the
//! past).

use crate::gossip::Delivered;
use meshmon_proto::payload::Status;
use meshmon_proto::prometheus;
use meshmon_proto::stream::{StreamId, Streams};
use meshmon_proto::{Flags, Payload, SeriesKey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// Hosts not heard for this long leave the output.
pub const HOST_STALE_MS: u64 = 5 * 60 * 1000;

/// One host's latest values.
#[derive(Default)]
struct HostValues {
    /// series -> (value, origin timestamp in ms).
    series: HashMap<SeriesKey, (f64, u64)>,
    /// When this node last heard the host (its own clock).
    seen_ms: u64,
}

/// host -> series -> (value, ts_ms), fed with live frames.
pub struct LatestValues {
    hosts: HashMap<String, HostValues>,
    /// The hosts' live sample streams; a decoder lives as long as its host.
    streams: Streams,
}

impl Default for LatestValues {
    fn default() -> LatestValues {
        LatestValues {
            hosts: HashMap::new(),
            streams: Streams::new(HOST_STALE_MS, meshmon_proto::stream::DEFAULT_CAP),
        }
    }
}

impl LatestValues {
    /// Takes one accepted frame; link frames, replays and non-sample payloads are ignored.
    pub fn on_frame(&mut self, d: &Delivered, now_ms: u64) {
        if d.replay || d.header.flags.contains(Flags::LINK) {
            return;
        }
        let h = self.hosts.entry(d.header.origin.clone()).or_default();
        h.seen_ms = now_ms;
        let id = StreamId::of(&d.header, false);
        let (fresh, values) = match &d.payload {
            Payload::SeriesTable(t) => (self.streams.table(id, t, now_ms), Vec::new()),
            Payload::Samples(s) => {
                let decoded = self.streams.samples(id, s, now_ms);
                (decoded.fresh, decoded.values)
            }
            _ => return,
        };
        if fresh {
            // A new decoder (first frame, or a restart): series of an old boot go.
            h.series.clear();
        }
        for (key, value) in values {
            h.series.insert(key, (value, d.header.ts_ms));
        }
    }

    /// Drops hosts not heard for [`HOST_STALE_MS`].
    pub fn expire(&mut self, now_ms: u64) {
        self.hosts
            .retain(|_, h| now_ms.saturating_sub(h.seen_ms) < HOST_STALE_MS);
        self.streams.expire(now_ms);
    }

    /// Number of hosts held.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Inserts a value directly (tests).
    pub fn set(&mut self, host: &str, key: SeriesKey, value: f64, ts_ms: u64) {
        let h = self.hosts.entry(host.to_owned()).or_default();
        h.seen_ms = h.seen_ms.max(ts_ms);
        h.series.insert(key, (value, ts_ms));
    }
}

/// The node's own counters, rendered next to the hosts' metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeCounters {
    /// The mesh's status (`None` if the mesh did not answer in time).
    pub status: Option<Status>,
    /// Frames the mesh could not hand to local consumers (queue full).
    pub delivery_drops: u64,
    /// Frames the exporter's own queue could not take.
    pub export_drops: u64,
}

#[derive(Default)]
struct Family {
    help: String,
    kind: &'static str,
    /// Rendered label set -> value; a map, so a series appears once and in order.
    series: BTreeMap<String, f64>,
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes HELP text: backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn labels(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The whole exposition: every host's latest values (hosts heard within
/// [`HOST_STALE_MS`] of `now_ms`), then the node's counters; families sorted by name.
pub fn render(latest: &LatestValues, node: &NodeCounters, now_ms: u64) -> String {
    // Hosts the mesh holds for down leave the output at once, so Prometheus marks their
    // series stale (as it does for a target that stops exposing a series) instead of
    // repeating their last values; `meshmon_up` says 0 for them.
    let down: HashSet<&str> = node
        .status
        .iter()
        .flat_map(|s| &s.hosts)
        .filter(|h| {
            now_ms.saturating_sub(h.last_seen_ms)
                > meshmon_proto::payload::down_after_ms(h.interval_ms)
        })
        .map(|h| h.name.as_str())
        .collect();
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (host, h) in &latest.hosts {
        if now_ms.saturating_sub(h.seen_ms) >= HOST_STALE_MS || down.contains(host.as_str()) {
            continue;
        }
        for (key, (v, _ts)) in &h.series {
            let f = prometheus::family(&key.name);
            let pairs = prometheus::labels(host, key);
            let fam = families.entry(f.name).or_insert_with(|| Family {
                help: f.help,
                kind: f.kind.as_str(),
                series: BTreeMap::new(),
            });
            fam.series.insert(labels(&pairs), *v * f.scale);
        }
    }
    // The node's own counters replace any host metric that maps to the same name.
    let mut own = |name: &str, help: &str, kind: &'static str, series: Vec<(String, f64)>| {
        families.insert(
            name.to_owned(),
            Family {
                help: help.to_owned(),
                kind,
                series: series.into_iter().collect(),
            },
        );
    };
    #[allow(clippy::cast_precision_loss)] // counters far below 2^53
    let n = |v: u64| v as f64;
    own(
        "meshmon_node_delivery_drops_total",
        "Accepted frames this node could not hand to its consumers (queue full).",
        "counter",
        vec![(String::new(), n(node.delivery_drops))],
    );
    own(
        "meshmon_node_export_drops_total",
        "Frames the Prometheus exporter's queue could not take.",
        "counter",
        vec![(String::new(), n(node.export_drops))],
    );
    if let Some(s) = &node.status {
        own(
            "meshmon_node_frames_dropped_total",
            "Frames dropped by this node (malformed, rate-limited, no credit, queue full).",
            "counter",
            vec![(String::new(), n(s.frames_dropped))],
        );
        own(
            "meshmon_node_auth_failures_total",
            "Frames that failed authentication on this node's links.",
            "counter",
            vec![(String::new(), n(s.auth_failures))],
        );
        let up_links = s.links.iter().filter(|l| l.state == "up").count();
        own(
            "meshmon_node_peers",
            "Links of this node that are up.",
            "gauge",
            vec![(String::new(), n(up_links as u64))],
        );
        own(
            "meshmon_node_hosts",
            "Hosts this node has heard from.",
            "gauge",
            vec![(String::new(), n(s.hosts.len() as u64))],
        );
        let up = s
            .hosts
            .iter()
            .map(|h| {
                let fresh = now_ms.saturating_sub(h.last_seen_ms)
                    <= meshmon_proto::payload::down_after_ms(h.interval_ms);
                let pairs = [("host".to_owned(), h.name.clone())];
                (labels(&pairs), if fresh { 1.0 } else { 0.0 })
            })
            .collect();
        own(
            "meshmon_up",
            "1 if this node heard the host recently, else 0.",
            "gauge",
            up,
        );
    }
    let mut out = String::new();
    for (name, f) in &families {
        if f.series.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {}", f.kind);
        for (l, v) in &f.series {
            let _ = writeln!(out, "{name}{l} {}", value(*v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::Header;
    use meshmon_proto::payload::{HostStatus, LinkStatus};
    use meshmon_proto::samples::SampleEncoder;

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::custom(
            name,
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn frames(boot: u64, enc: &mut SampleEncoder, v: &[(SeriesKey, f64)]) -> Vec<Delivered> {
        enc.encode(v)
            .into_iter()
            .map(|payload| Delivered {
                header: Header {
                    kind: payload.kind(),
                    flags: Flags::default(),
                    origin: "h".into(),
                    boot_id: boot,
                    seq: 1,
                    ts_ms: 1000,
                },
                hops: 0,
                payload,
                from: None,
                replay: false,
            })
            .collect()
    }

    #[test]
    fn live_samples_decode_and_a_restart_drops_old_series() {
        let mut l = LatestValues::default();
        let cpu = key("cpu.load1", &[]);
        let gone = key("gone.metric", &[]);
        let mut enc = SampleEncoder::new();
        for mut d in frames(1, &mut enc, &[(cpu.clone(), 5.0), (gone.clone(), 1.0)]) {
            l.on_frame(&d, 10);
            // The same frames replayed change nothing.
            d.replay = true;
            d.header.boot_id = 9;
            l.on_frame(&d, 10);
        }
        let out = render(&l, &NodeCounters::default(), 10);
        assert!(out.contains("meshmon_load1{host=\"h\"} 5\n"), "{out}");
        assert!(out.contains("meshmon_gone_metric{host=\"h\"} 1\n"), "{out}");
        let mut enc = SampleEncoder::new();
        for d in frames(2, &mut enc, &[(cpu, 7.0)]) {
            l.on_frame(&d, 20);
        }
        let out = render(&l, &NodeCounters::default(), 20);
        assert!(out.contains("meshmon_load1{host=\"h\"} 7\n"), "{out}");
        assert!(!out.contains("gone_metric"), "{out}");
    }

    #[test]
    fn names_labels_and_families() {
        let mut l = LatestValues::default();
        l.set("srv01", key("cpu.load1", &[]), 12.5, 1000);
        l.set("srv02", key("cpu.load1", &[]), 3.0, 1000);
        l.set(
            "srv01",
            key("disk.used_bytes", &[("mount", "/")]),
            40.0,
            1000,
        );
        let out = render(&l, &NodeCounters::default(), 2000);
        assert!(
            out.contains("meshmon_load1{host=\"srv01\"} 12.5\n"),
            "{out}"
        );
        assert!(out.contains("meshmon_load1{host=\"srv02\"} 3\n"), "{out}");
        assert!(
            out.contains("meshmon_filesystem_used_bytes{host=\"srv01\",mount=\"/\"} 40\n"),
            "{out}"
        );
        assert_eq!(out.matches("# TYPE meshmon_load1 gauge\n").count(), 1);
        assert_eq!(out.matches("# HELP meshmon_load1 ").count(), 1);
        let types: Vec<&str> = out.lines().filter(|x| x.starts_with("# TYPE")).collect();
        let mut sorted = types.clone();
        sorted.sort_unstable();
        assert_eq!(types, sorted, "families sorted");
    }

    #[test]
    fn label_values_are_escaped_and_names_sanitised() {
        let mut l = LatestValues::default();
        l.set(
            "h",
            key(
                "text.file-metric",
                &[("path", "a\\b\"c\nd"), ("host", "x"), ("9x", "y")],
            ),
            1.0,
            0,
        );
        let out = render(&l, &NodeCounters::default(), 0);
        assert!(
            out.contains(
                "meshmon_text_file_metric{_9x=\"y\",exported_host=\"x\",host=\"h\",path=\"a\\\\b\\\"c\\nd\"} 1\n"
            ),
            "{out}"
        );
        assert_eq!(escape_label("plain"), "plain");
    }

    #[test]
    fn colliding_names_do_not_duplicate_series() {
        let mut l = LatestValues::default();
        l.set("h", key("a.b", &[]), 1.0, 0);
        l.set("h", key("a_b", &[]), 2.0, 0);
        let out = render(&l, &NodeCounters::default(), 0);
        assert_eq!(out.matches("meshmon_a_b{host=\"h\"}").count(), 1, "{out}");
    }

    #[test]
    fn stale_hosts_leave_the_output() {
        let mut l = LatestValues::default();
        l.set("old", key("cpu.load1", &[]), 1.0, 0);
        l.set("new", key("cpu.load1", &[]), 1.0, HOST_STALE_MS);
        let out = render(&l, &NodeCounters::default(), HOST_STALE_MS + 1);
        assert!(!out.contains("host=\"old\""), "{out}");
        assert!(out.contains("host=\"new\""), "{out}");
        l.expire(HOST_STALE_MS + 1);
        assert_eq!(l.hosts(), 1);
    }

    #[test]
    fn node_counters_and_up() {
        let status = Status {
            node: "n".into(),
            hosts: vec![
                HostStatus {
                    name: "n".into(),
                    last_seen_ms: 10_000,
                    interval_ms: 1000,
                    ..HostStatus::default()
                },
                HostStatus {
                    name: "gone".into(),
                    last_seen_ms: 1,
                    interval_ms: 1000,
                    ..HostStatus::default()
                },
            ],
            links: vec![LinkStatus {
                state: "up".into(),
                ..LinkStatus::default()
            }],
            frames_dropped: 7,
            auth_failures: 2,
            ..Status::default()
        };
        let node = NodeCounters {
            status: Some(status),
            delivery_drops: 1,
            export_drops: 0,
        };
        let mut l = LatestValues::default();
        l.set(
            "n",
            key("net.rx_bytes", &[("iface", "eth0")]),
            12_345.0,
            10_000,
        );
        l.set("n", key("cpu.usage_pct", &[]), 50.0, 10_000);
        l.set("gone", key("cpu.load1", &[]), 1.0, 10_000);
        let out = render(&l, &node, 10_500);
        assert!(out.contains("# TYPE meshmon_network_receive_bytes_total counter\nmeshmon_network_receive_bytes_total{host=\"n\",iface=\"eth0\"} 12345\n"), "{out}");
        assert!(
            out.contains(
                "# TYPE meshmon_cpu_usage_ratio gauge\nmeshmon_cpu_usage_ratio{host=\"n\"} 0.5\n"
            ),
            "{out}"
        );
        // A host the mesh holds for down leaves the output (Prometheus marks it stale).
        assert!(!out.contains("meshmon_load1"), "{out}");
        assert!(out.contains("# TYPE meshmon_node_frames_dropped_total counter\nmeshmon_node_frames_dropped_total 7\n"), "{out}");
        assert!(
            out.contains("meshmon_node_auth_failures_total 2\n"),
            "{out}"
        );
        assert!(out.contains("meshmon_node_peers 1\n"), "{out}");
        assert!(out.contains("meshmon_up{host=\"n\"} 1\n"), "{out}");
        assert!(out.contains("meshmon_up{host=\"gone\"} 0\n"), "{out}");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
    }
}
