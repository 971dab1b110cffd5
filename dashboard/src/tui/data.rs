//! The fleet model: every host ([`HostData`]: status, host info, latest values decoded from
//! Samples with proto's [`Streams`], in-memory history gathered since the TUI opened)
//! and this node's links with frame rates. Fed by [`Fleet::status`] and [`Fleet::frame`];
//! read by the views.
//!
//! Not here: key handling (`app.rs`), drawing (`views/`), or persistent history (the store).

use super::history::{History, Stats, downsample};
pub use super::host::{HISTORY_METRICS, HostData, HostState, Summary};
use meshmon_proto::payload::{LinkStatus, Status};
use meshmon_proto::stream::{StreamId, Streams};
use meshmon_proto::{Header, Payload, SeriesKey};
use std::collections::BTreeMap;

/// One of this node's links with rates derived from consecutive Status counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkView {
    pub link: LinkStatus,
    pub in_per_s: Option<f64>,
    pub out_per_s: Option<f64>,
}

/// The whole fleet as seen from the attached node.
#[derive(Debug, Default)]
pub struct Fleet {
    /// The attached node's name ("" until its first Status).
    pub node: String,
    pub dashboard: bool,
    pub hosts: BTreeMap<String, HostData>,
    pub links: Vec<LinkView>,
    pub frames_dropped: u64,
    pub auth_failures: u64,
    /// When the last Status arrived (local clock), ms.
    pub last_status_ms: Option<i64>,
    /// Frames that could not be used (unknown table, partial deltas).
    pub gaps: u64,
    /// The hosts' live sample decoders (a new boot starts afresh).
    streams: Streams,
}

impl Fleet {
    /// Applies a node Status received at `now_ms`.
    pub fn status(&mut self, s: Status, now_ms: i64) {
        let dt = self
            .last_status_ms
            .map(|t| (now_ms - t) as f64 / 1000.0)
            .filter(|d| *d > 0.1);
        let links = s
            .links
            .into_iter()
            .map(|l| {
                let prev = self.links.iter().find(|p| {
                    p.link.peer == l.peer
                        && p.link.addr == l.addr
                        && p.link.direction == l.direction
                });
                let rate = |new: u64, old: u64| dt.map(|d| new.saturating_sub(old) as f64 / d);
                LinkView {
                    in_per_s: prev.and_then(|p| rate(l.frames_in, p.link.frames_in)),
                    out_per_s: prev.and_then(|p| rate(l.frames_out, p.link.frames_out)),
                    link: l,
                }
            })
            .collect();
        self.links = links;
        self.node = s.node;
        self.dashboard = s.dashboard;
        self.frames_dropped = s.frames_dropped;
        self.auth_failures = s.auth_failures;
        self.last_status_ms = Some(now_ms);
        for h in s.hosts {
            let e = self.host_mut(&h.name);
            e.status = Some(h);
        }
    }

    /// Applies one gossip frame the node accepted. Replayed (backfill) frames are skipped:
    /// they are old, and feeding them to the live decoder would corrupt its delta state.
    pub fn frame(&mut self, header: &Header, payload: Payload, replay: bool) {
        if replay || header.origin.is_empty() {
            return;
        }
        // The local clock as of the last Status: coarse, but enough to age out decoders.
        let now_ms = self
            .last_status_ms
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0);
        let id = StreamId::of(header, false);
        // Fields, not `host_mut`: the host and the decoders are borrowed together.
        let host = self
            .hosts
            .entry(header.origin.clone())
            .or_insert_with(|| HostData::new(&header.origin));
        match payload {
            Payload::HostInfo(i) => host.info = Some(i),
            Payload::SeriesTable(t) => {
                self.streams.table(id, &t, now_ms);
            }
            Payload::Samples(s) => {
                let d = self.streams.samples(id, &s, now_ms);
                host.ingest(header.ts_ms as i64, d.values, d.gap.is_none());
                if d.gap.is_some() {
                    self.gaps += 1;
                }
            }
            _ => {}
        }
    }

    fn host_mut(&mut self, name: &str) -> &mut HostData {
        self.hosts
            .entry(name.to_owned())
            .or_insert_with(|| HostData::new(name))
    }

    /// Number of hosts in each state at `now_ms`: (up, stale, down).
    pub fn counts(&self, now_ms: i64) -> (usize, usize, usize) {
        self.hosts
            .values()
            .fold((0, 0, 0), |(u, s, d), h| match h.state(now_ms) {
                HostState::Up => (u + 1, s, d),
                HostState::Stale => (u, s + 1, d),
                HostState::Down => (u, s, d + 1),
            })
    }
}

impl History for Fleet {
    fn series(
        &self,
        host: &str,
        key: &SeriesKey,
        since_ms: i64,
        until_ms: i64,
        points: usize,
    ) -> Vec<(i64, f64)> {
        let Some(ring) = self.hosts.get(host).and_then(|h| h.ring(key)) else {
            return Vec::new();
        };
        let pts: Vec<(i64, f64)> = ring
            .range(since_ms, until_ms)
            .into_iter()
            .map(|(t, v, _)| (t, v))
            .collect();
        downsample(&pts, since_ms, until_ms, points)
    }

    fn stats(&self, host: &str, key: &SeriesKey, since_ms: i64, until_ms: i64) -> Option<Stats> {
        let ring = self.hosts.get(host)?.ring(key)?;
        let b = ring.range(since_ms, until_ms);
        let pts: Vec<(i64, f64)> = b.iter().map(|(t, v, _)| (*t, *v)).collect();
        let maxima: Vec<f64> = b.iter().map(|(_, _, m)| *m).collect();
        let mut st = Stats::of(&pts, Some(&maxima))?;
        // Coarse buckets hold averages; "last" is the newest value itself.
        if let Some((_, v)) = ring
            .last()
            .filter(|(t, _)| (since_ms..=until_ms).contains(t))
        {
            st.last = v;
        }
        Some(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::payload::HostStatus;
    use meshmon_proto::samples::SampleEncoder;
    use meshmon_proto::{Flags, Kind};

    fn header(origin: &str, ts_ms: u64) -> Header {
        Header {
            kind: Kind::Samples,
            flags: Flags::default(),
            origin: origin.into(),
            boot_id: 1,
            seq: 1,
            ts_ms,
        }
    }

    #[test]
    fn samples_become_latest_values_summary_and_history() {
        let mut fleet = Fleet::default();
        let mut enc = SampleEncoder::new();
        for i in 0..3u64 {
            let v = vec![
                (SeriesKey::custom("cpu.usage_pct", vec![]), 10.0 + i as f64),
                (
                    SeriesKey::custom("net.rx_bytes_per_s", vec![("iface".into(), "eth0".into())]),
                    100.0,
                ),
                (
                    SeriesKey::custom("net.rx_bytes_per_s", vec![("iface".into(), "eth1".into())]),
                    50.0,
                ),
                (
                    SeriesKey::custom("disk.used_pct", vec![("mount".into(), "/".into())]),
                    40.0,
                ),
                (
                    SeriesKey::custom("disk.used_pct", vec![("mount".into(), "/data".into())]),
                    91.0,
                ),
            ];
            for p in enc.encode(&v) {
                fleet.frame(&header("a", 1_000_000 + i * 1000), p, false);
            }
        }
        let h = &fleet.hosts["a"];
        assert_eq!(h.summary.cpu_pct, Some(12.0));
        assert_eq!(h.summary.rx, Some(150.0));
        assert_eq!(h.summary.disk_worst, Some(("/data".into(), 91.0)));
        let total = SeriesKey::custom("net.rx_bytes_per_s", vec![]);
        let pts = fleet.series("a", &total, 999_000, 1_003_000, 100);
        assert_eq!(pts.len(), 3);
        assert!(pts.iter().all(|p| p.1 == 150.0));
        let cpu = SeriesKey::custom("cpu.usage_pct", vec![]);
        let st = fleet.stats("a", &cpu, 0, 2_000_000).expect("stats");
        assert_eq!((st.max, st.last), (12.0, 12.0));
    }

    #[test]
    fn a_new_boot_decodes_afresh_and_replays_are_skipped() {
        let mut fleet = Fleet::default();
        let cpu = SeriesKey::custom("cpu.usage_pct", vec![]);
        let mut old = SampleEncoder::new();
        for p in old.encode(&[(cpu.clone(), 1.0)]) {
            fleet.frame(&header("a", 1_000), p, false);
        }
        // The restarted origin's table ids start again at 1: boot 1's table must not decode
        // boot 2's samples, which are dropped as a gap until boot 2's table comes.
        let mut new = SampleEncoder::new();
        let first = new.encode(&[(cpu.clone(), 50.0)]);
        let restart = Header {
            boot_id: 2,
            ..header("a", 2_000)
        };
        fleet.frame(&restart, first[1].clone(), false);
        assert_eq!(fleet.gaps, 1);
        assert_eq!(fleet.hosts["a"].latest.get(&cpu), Some(&1.0));
        // A replay of boot 2 is not shown.
        for p in first.clone() {
            fleet.frame(&restart, p, true);
        }
        assert_eq!(fleet.hosts["a"].latest.get(&cpu), Some(&1.0));
        for p in first {
            fleet.frame(&restart, p, false);
        }
        assert_eq!(fleet.hosts["a"].latest.get(&cpu), Some(&50.0));
        assert_eq!(fleet.gaps, 1);
    }

    #[test]
    fn status_sets_hosts_and_link_rates() {
        let mut fleet = Fleet::default();
        let link = |n| LinkStatus {
            peer: "b".into(),
            addr: "x".into(),
            direction: "out".into(),
            frames_in: n,
            ..Default::default()
        };
        let host = HostStatus {
            name: "b".into(),
            last_seen_ms: 10_000,
            hops: 1,
            ..Default::default()
        };
        let st = |n| Status {
            node: "a".into(),
            hosts: vec![host.clone()],
            links: vec![link(n)],
            ..Default::default()
        };
        fleet.status(st(100), 10_000);
        fleet.status(st(150), 12_000);
        assert_eq!(fleet.links[0].in_per_s, Some(25.0));
        assert_eq!(fleet.hosts["b"].state(12_000), HostState::Up);
        assert_eq!(fleet.hosts["b"].state(40_000), HostState::Stale);
        assert_eq!(fleet.hosts["b"].state(80_000), HostState::Down);
        assert_eq!(fleet.counts(12_000), (1, 0, 0));
    }
}
