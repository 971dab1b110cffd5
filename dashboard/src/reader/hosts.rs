//! The rows of `meshmon query hosts`: the store's host table, with a running node's newer
//! sightings and the hosts only it knows yet merged in.
//!
//! Not here: the up/down rule (`meshmon_proto::payload::down_after_ms`) or output formats.

use super::Reader;
use crate::error::StoreError;
use crate::head::Head;

/// One row of `meshmon query hosts`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// Host name.
    pub host: String,
    /// Heard within 3 of its intervals (at least 5 s).
    pub up: bool,
    /// When last heard, ms since the epoch.
    pub last_seen_ms: i64,
    /// When first heard.
    pub first_seen_ms: i64,
    /// Hop distance when last heard.
    pub hops: u8,
    /// meshmon version ("" until host info arrived).
    pub version: String,
    /// Operating system.
    pub os: String,
    /// Uptime when last heard, from its boot time (`None` when unknown).
    pub uptime_s: Option<i64>,
    /// Tags.
    pub tags: Vec<String>,
}

impl Reader {
    /// Every host, by name (with the head's newer sightings and hosts only it knows).
    pub fn hosts(&self, now_ms: i64) -> Result<Vec<HostRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, first_seen_ms, last_seen_ms, hops, version, os, tags, interval_ms,
                 boot_time_s FROM hosts ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                let tags: String = r.get(6)?;
                Ok((
                    HostRow {
                        host: r.get(0)?,
                        first_seen_ms: r.get(1)?,
                        last_seen_ms: r.get(2)?,
                        up: false,
                        hops: u8::try_from(r.get::<_, i64>(3)?).unwrap_or(u8::MAX),
                        version: r.get(4)?,
                        os: r.get(5)?,
                        tags: serde_json::from_str(&tags).unwrap_or_default(),
                        uptime_s: None,
                    },
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut rows: Vec<(HostRow, i64, i64)> =
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        if let Some(head) = &self.head {
            merge_head_hosts(&mut rows, head);
        }
        Ok(rows
            .into_iter()
            .map(|(mut h, interval, boot)| {
                let limit = i64::try_from(meshmon_proto::payload::down_after_ms(
                    u64::try_from(interval).unwrap_or(0),
                ))
                .unwrap_or(i64::MAX);
                h.up = now_ms.saturating_sub(h.last_seen_ms) <= limit;
                h.uptime_s = (boot > 0).then(|| (h.last_seen_ms / 1000 - boot).max(0));
                h
            })
            .collect())
    }
}

/// The head's sightings merged into the file's host rows (with their interval and boot
/// time): newer last-seen and hop counts, unwritten host info, hosts only the head knows.
fn merge_head_hosts(rows: &mut Vec<(HostRow, i64, i64)>, head: &Head) {
    for h in head.hosts() {
        let i = match rows.iter().position(|(r, _, _)| r.host == h.name) {
            Some(i) => i,
            None => {
                rows.push((
                    HostRow {
                        host: h.name.clone(),
                        up: false,
                        last_seen_ms: h.last_seen_ms,
                        first_seen_ms: h.first_seen_ms,
                        hops: h.hops,
                        version: String::new(),
                        os: String::new(),
                        uptime_s: None,
                        tags: Vec::new(),
                    },
                    0,
                    0,
                ));
                rows.len() - 1
            }
        };
        let (row, interval, boot) = &mut rows[i];
        row.first_seen_ms = row.first_seen_ms.min(h.first_seen_ms);
        if h.last_seen_ms >= row.last_seen_ms {
            row.last_seen_ms = h.last_seen_ms;
            row.hops = h.hops;
        }
        if let Some(info) = &h.info {
            row.version = info.version.clone();
            row.os = info.os.clone();
            row.tags = info.tags.clone();
            *interval = i64::try_from(info.interval_ms).unwrap_or(i64::MAX);
            *boot = i64::try_from(info.boot_time_s).unwrap_or(0);
        }
    }
    rows.sort_by(|a, b| a.0.host.cmp(&b.0.host));
}
