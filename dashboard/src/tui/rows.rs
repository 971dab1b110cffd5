//! Table rows derived from the fleet model for the Services, Disks and Mesh views: HTTP checks
//! per vantage host, systemd units, SMART devices, filesystems, hosts by hop distance. Pure
//! functions shared by drawing and key handling (which needs row counts).

use super::data::{Fleet, HostData};
use std::collections::BTreeMap;

/// One HTTP check as seen from one vantage host (the host that runs it).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub check: String,
    pub vantage: String,
    pub up: Option<bool>,
    pub latency_ms: Option<f64>,
    pub status: Option<f64>,
    pub cert_days: Option<f64>,
}

/// One systemd unit of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub host: String,
    pub unit: String,
    pub active: Option<bool>,
    pub mem_bytes: Option<f64>,
    pub cpu_pct: Option<f64>,
}

/// One SMART device of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct SmartRow {
    pub host: String,
    pub device: String,
    pub passed: Option<bool>,
    pub wear_pct: Option<f64>,
    pub temp_c: Option<f64>,
    pub media_errors: Option<f64>,
    pub power_on_hours: Option<f64>,
    pub critical_warning: Option<f64>,
}

/// One filesystem of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct FsRow {
    pub host: String,
    pub mount: String,
    pub used: Option<f64>,
    pub total: Option<f64>,
    pub used_pct: Option<f64>,
    pub inodes_pct: Option<f64>,
}

/// Values of the metrics `names` of `h`, grouped by the value of `label`.
fn grouped(h: &HostData, label: &str, names: &[&str]) -> BTreeMap<String, Vec<Option<f64>>> {
    let mut out: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        for (l, v) in h.by_label(name, label) {
            out.entry(l.to_owned())
                .or_insert_with(|| vec![None; names.len()])[i] = Some(v);
        }
    }
    out
}

fn flag(v: Option<f64>) -> Option<bool> {
    v.map(|v| v != 0.0)
}

/// Every check, every vantage host; sorted by check then host.
pub fn checks(f: &Fleet) -> Vec<CheckRow> {
    let names = [
        "check.up",
        "check.latency_ms",
        "check.status",
        "check.cert_days_left",
    ];
    let mut rows: Vec<CheckRow> = f
        .hosts
        .values()
        .flat_map(|h| {
            grouped(h, "check", &names)
                .into_iter()
                .map(|(c, v)| CheckRow {
                    check: c,
                    vantage: h.name.clone(),
                    up: flag(v[0]),
                    latency_ms: v[1],
                    status: v[2],
                    cert_days: v[3],
                })
        })
        .collect();
    rows.sort_by(|a, b| (&a.check, &a.vantage).cmp(&(&b.check, &b.vantage)));
    rows
}

/// Every systemd unit of every host.
pub fn units(f: &Fleet) -> Vec<UnitRow> {
    let names = ["systemd.active", "systemd.mem_bytes", "systemd.cpu_pct"];
    f.hosts
        .values()
        .flat_map(|h| {
            grouped(h, "unit", &names)
                .into_iter()
                .map(|(u, v)| UnitRow {
                    host: h.name.clone(),
                    unit: u,
                    active: flag(v[0]),
                    mem_bytes: v[1],
                    cpu_pct: v[2],
                })
        })
        .collect()
}

/// Every SMART device of every host.
pub fn smart(f: &Fleet) -> Vec<SmartRow> {
    let names = [
        "smart.passed",
        "smart.percentage_used",
        "smart.temp_c",
        "smart.media_errors",
        "smart.power_on_hours",
        "smart.critical_warning",
    ];
    f.hosts
        .values()
        .flat_map(|h| {
            grouped(h, "device", &names)
                .into_iter()
                .map(|(d, v)| SmartRow {
                    host: h.name.clone(),
                    device: d,
                    passed: flag(v[0]),
                    wear_pct: v[1],
                    temp_c: v[2],
                    media_errors: v[3],
                    power_on_hours: v[4],
                    critical_warning: v[5],
                })
        })
        .collect()
}

/// Every filesystem of every host.
pub fn filesystems(f: &Fleet) -> Vec<FsRow> {
    let names = [
        "disk.used_bytes",
        "disk.total_bytes",
        "disk.used_pct",
        "disk.inodes_used_pct",
    ];
    f.hosts
        .values()
        .flat_map(|h| {
            grouped(h, "mount", &names).into_iter().map(|(m, v)| FsRow {
                host: h.name.clone(),
                mount: m,
                used: v[0],
                total: v[1],
                used_pct: v[2],
                inodes_pct: v[3],
            })
        })
        .collect()
}

/// Hosts by hop distance from the node (unknown last), then name.
pub fn by_hops(f: &Fleet) -> Vec<&HostData> {
    let mut v: Vec<&HostData> = f.hosts.values().collect();
    v.sort_by_key(|h| (h.hops().map_or(u16::MAX, u16::from), h.name.clone()));
    v
}
