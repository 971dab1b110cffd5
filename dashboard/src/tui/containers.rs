//! Container rows for the Containers view and the Host view, from the `container.*` metrics
//! (label `container`; image and state from `container.info`'s labels), and their sort order
//! (`s` cycles the column, `S` reverses). Pure functions shared by drawing and key handling.

use super::data::{Fleet, HostData};
use std::collections::BTreeMap;

/// One container of one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerRow {
    pub host: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub running: Option<f64>,
    pub healthy: Option<bool>,
    pub restarts: Option<f64>,
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<f64>,
    pub mem_limit: Option<f64>,
    pub rx: Option<f64>,
    pub tx: Option<f64>,
    pub blk_read: Option<f64>,
    pub blk_write: Option<f64>,
}

impl ContainerRow {
    /// Network in and out together (the sort key).
    pub fn net(&self) -> Option<f64> {
        match (self.rx, self.tx) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        }
    }

    /// Block I/O read and written together.
    pub fn blkio(&self) -> Option<f64> {
        match (self.blk_read, self.blk_write) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        }
    }
}

/// Containers table columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerSort {
    #[default]
    Cpu,
    Mem,
    Net,
    Io,
    Restarts,
    Host,
    Name,
}

impl ContainerSort {
    pub const ALL: [ContainerSort; 7] = [
        ContainerSort::Cpu,
        ContainerSort::Mem,
        ContainerSort::Net,
        ContainerSort::Io,
        ContainerSort::Restarts,
        ContainerSort::Host,
        ContainerSort::Name,
    ];

    pub fn next(self) -> ContainerSort {
        let i = ContainerSort::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(0);
        ContainerSort::ALL[(i + 1) % ContainerSort::ALL.len()]
    }
}

/// The containers of `h`, by name.
pub fn of_host(h: &HostData) -> Vec<ContainerRow> {
    let names = [
        "container.running",
        "container.healthy",
        "container.restarts",
        "container.cpu_pct",
        "container.mem_bytes",
        "container.mem_limit_bytes",
        "container.net_rx_bytes_per_s",
        "container.net_tx_bytes_per_s",
        "container.blkio_read_bytes_per_s",
        "container.blkio_write_bytes_per_s",
    ];
    let mut by: BTreeMap<String, ContainerRow> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        for (c, v) in h.by_label(name, "container") {
            let r = by.entry(c.to_owned()).or_default();
            let slot = match i {
                0 => &mut r.running,
                1 => {
                    r.healthy = Some(v != 0.0);
                    continue;
                }
                2 => &mut r.restarts,
                3 => &mut r.cpu_pct,
                4 => &mut r.mem_bytes,
                5 => &mut r.mem_limit,
                6 => &mut r.rx,
                7 => &mut r.tx,
                8 => &mut r.blk_read,
                _ => &mut r.blk_write,
            };
            *slot = Some(v);
        }
    }
    let info = meshmon_proto::SeriesKey::custom("container.info", Vec::new());
    for (k, _) in h
        .latest
        .range(info..)
        .take_while(|(k, _)| k.name == "container.info")
    {
        if let Some(row) = k.label("container").and_then(|c| by.get_mut(c)) {
            row.image = k.label("image").unwrap_or_default().to_owned();
            row.state = k.label("state").unwrap_or_default().to_owned();
        }
    }
    by.into_iter()
        .map(|(name, mut r)| {
            if r.state.is_empty() {
                r.state = match r.running {
                    Some(n) if name == "other" => format!("{n} running"),
                    Some(v) if v != 0.0 => "running".into(),
                    Some(_) => "stopped".into(),
                    None => String::new(),
                };
            }
            ContainerRow {
                host: h.name.clone(),
                name,
                ..r
            }
        })
        .collect()
}

/// Every container of every host whose name or host contains `filter`, sorted by `sort`
/// (numbers largest first, names A-Z; `reverse` flips it).
pub fn fleet(f: &Fleet, filter: &str, sort: ContainerSort, reverse: bool) -> Vec<ContainerRow> {
    let needle = filter.to_lowercase();
    let mut rows: Vec<ContainerRow> = f
        .hosts
        .values()
        .flat_map(of_host)
        .filter(|r| {
            needle.is_empty()
                || r.name.to_lowercase().contains(&needle)
                || r.host.to_lowercase().contains(&needle)
        })
        .collect();
    sort_rows(&mut rows, sort, reverse);
    rows
}

/// Sorts `rows` in place (ties by host, then name).
pub fn sort_rows(rows: &mut [ContainerRow], sort: ContainerSort, reverse: bool) {
    let n = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    let value = |r: &ContainerRow| match sort {
        ContainerSort::Cpu => n(r.cpu_pct),
        ContainerSort::Mem => n(r.mem_bytes),
        ContainerSort::Net => n(r.net()),
        ContainerSort::Io => n(r.blkio()),
        ContainerSort::Restarts => n(r.restarts),
        ContainerSort::Host | ContainerSort::Name => 0.0,
    };
    rows.sort_by(|a, b| {
        let names = match sort {
            ContainerSort::Name => (&a.name, &a.host).cmp(&(&b.name, &b.host)),
            _ => (&a.host, &a.name).cmp(&(&b.host, &b.name)),
        };
        let o = value(b).total_cmp(&value(a)).then(names);
        if reverse { o.reverse() } else { o }
    });
}
