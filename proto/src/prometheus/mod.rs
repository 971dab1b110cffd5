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

mod table;
pub use table::mapping;

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
            Metric::NetErrors,
            Metric::NetDrops,
            Metric::MemOomKills,
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
