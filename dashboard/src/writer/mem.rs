//! The writer's in-memory state: hosts, series, each series' open chunk, sealed chunks and
//! late samples waiting to be written, and the routing of each incoming sample.
//!
//! Responsible for deciding where a sample goes (append to the open chunk, hold out of order,
//! seal and start the next window, or queue as late for an already written window) and for
//! keeping the backlog bounded. Not responsible for SQLite ([`super::flush`]).

use super::{Sample, WriterCounters};
use crate::codec::chunk::{self, ChunkEncoder};
use crate::layout::{MAX_FUTURE_MS, RAW_WINDOW_MS, SEAL_GRACE_MS, window_of};
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::HostInfo;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

/// A host as the writer knows it.
#[derive(Debug)]
pub(crate) struct HostMem {
    pub name: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub hops: u8,
    /// Latest host info not yet written.
    pub info: Option<HostInfo>,
    pub dirty: bool,
    /// Series of this host, by key, as indexes into [`Mem::series`].
    pub series: HashMap<SeriesKey, usize>,
}

/// One series.
#[derive(Debug)]
pub(crate) struct SeriesMem {
    pub host: usize,
    pub key: SeriesKey,
    /// Id in the current connection's `series` table, once known.
    pub db_id: Option<i64>,
    pub open: Option<OpenChunk>,
}

/// The chunk of the newest window of a series, still growing.
#[derive(Debug)]
pub(crate) struct OpenChunk {
    pub window: i64,
    pub enc: ChunkEncoder,
    /// Samples of this window older than the last appended one, merged at the next flush.
    pub ooo: Vec<(i64, f64)>,
    /// Changed since it was last written.
    pub dirty: bool,
}

impl OpenChunk {
    fn new(window: i64) -> OpenChunk {
        OpenChunk {
            window,
            enc: ChunkEncoder::new(),
            ooo: Vec::new(),
            dirty: true,
        }
    }

    /// Folds out-of-order samples into the encoder (decode, merge, re-encode).
    pub fn merge_ooo(&mut self) {
        if self.ooo.is_empty() {
            return;
        }
        let have = chunk::decode(&self.enc.to_blob()).unwrap_or_default();
        let merged = chunk::merge(&have, &self.ooo);
        self.enc = ChunkEncoder::from_samples(&merged);
        self.ooo = Vec::new();
    }
}

/// A closed chunk waiting to be written.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub series: usize,
    pub window: i64,
    pub blob: Vec<u8>,
    pub count: u32,
}

/// Everything the writer holds in memory.
#[derive(Debug, Default)]
pub(crate) struct Mem {
    pub hosts: Vec<HostMem>,
    pub host_idx: HashMap<String, usize>,
    pub series: Vec<SeriesMem>,
    pub sealed: VecDeque<Sealed>,
    /// Late samples per (series, window) for windows already sealed.
    pub late: HashMap<(usize, i64), Vec<(i64, f64)>>,
    /// Bytes held by `sealed` and `late`.
    pub backlog_bytes: usize,
    /// Cap on `backlog_bytes`; beyond it the oldest sealed chunks are dropped.
    pub backlog_cap: usize,
    /// Raw retention in ms: older samples are refused.
    pub retention_ms: i64,
    /// Latest (boot id, sequence) position per origin (see `Ingest::Position`).
    pub positions: HashMap<String, (u64, u64)>,
}

impl Mem {
    /// The index of host `name`, created if new.
    pub fn host(&mut self, name: &str) -> usize {
        if let Some(&i) = self.host_idx.get(name) {
            return i;
        }
        let i = self.hosts.len();
        self.hosts.push(HostMem {
            name: name.to_owned(),
            first_seen_ms: i64::MAX,
            last_seen_ms: i64::MIN,
            hops: 0,
            info: None,
            dirty: true,
            series: HashMap::new(),
        });
        self.host_idx.insert(name.to_owned(), i);
        i
    }

    /// Records that `host` was heard at `ts_ms` over `hops` (a `None` hop count keeps the
    /// old one).
    pub fn seen(&mut self, host: usize, ts_ms: i64, hops: Option<u8>) {
        let h = &mut self.hosts[host];
        h.first_seen_ms = h.first_seen_ms.min(ts_ms);
        if ts_ms >= h.last_seen_ms {
            h.last_seen_ms = ts_ms;
            if let Some(hops) = hops {
                h.hops = hops;
            }
        }
        h.dirty = true;
    }

    /// The index of a host's series, created if new.
    pub fn series(&mut self, host: usize, key: &SeriesKey) -> usize {
        if let Some(&i) = self.hosts[host].series.get(key) {
            return i;
        }
        let i = self.series.len();
        self.series.push(SeriesMem {
            host,
            key: key.clone(),
            db_id: None,
            open: None,
        });
        self.hosts[host].series.insert(key.clone(), i);
        i
    }

    /// Routes a batch of samples; counts what was accepted and refused.
    pub fn ingest(&mut self, samples: Vec<Sample>, now_ms: i64, c: &WriterCounters) {
        let oldest = now_ms.saturating_sub(self.retention_ms).max(0);
        let newest = now_ms.saturating_add(MAX_FUTURE_MS);
        let (mut accepted, mut refused) = (0u64, 0u64);
        let mut last_host: Option<(String, usize)> = None;
        for s in samples {
            if s.ts_ms < oldest || s.ts_ms > newest {
                refused += 1;
                continue;
            }
            let host = match &last_host {
                Some((name, i)) if *name == s.host => *i,
                _ => {
                    let i = self.host(&s.host);
                    last_host = Some((s.host.clone(), i));
                    i
                }
            };
            self.seen(host, s.ts_ms.min(now_ms), None);
            let idx = self.series(host, &s.series);
            self.add(idx, s.ts_ms, s.value, c);
            accepted += 1;
        }
        c.accepted.fetch_add(accepted, Relaxed);
        c.refused.fetch_add(refused, Relaxed);
    }

    /// Puts one sample where it belongs.
    fn add(&mut self, idx: usize, ts: i64, v: f64, c: &WriterCounters) {
        let w = window_of(ts);
        let s = &mut self.series[idx];
        match &mut s.open {
            Some(o) if o.window == w => {
                match o.enc.last_ts() {
                    Some(last) if ts == last => return, // re-delivered: first write wins
                    Some(last) if ts < last => o.ooo.push((ts, v)),
                    _ => o.enc.push(ts, v),
                }
                o.dirty = true;
            }
            Some(o) if w < o.window => {
                c.late.fetch_add(1, Relaxed);
                if self.backlog_bytes + 16 > self.backlog_cap {
                    c.dropped_backlog.fetch_add(1, Relaxed);
                    return;
                }
                self.late.entry((idx, w)).or_default().push((ts, v));
                self.backlog_bytes += 16;
            }
            _ => {
                let mut fresh = OpenChunk::new(w);
                fresh.enc.push(ts, v);
                if let Some(old) = s.open.replace(fresh) {
                    self.seal(idx, old, c);
                }
            }
        }
    }

    /// Moves a closed open chunk to the sealed queue, dropping the oldest sealed chunks when
    /// the backlog is over its cap.
    fn seal(&mut self, idx: usize, mut o: OpenChunk, c: &WriterCounters) {
        o.merge_ooo();
        if o.enc.is_empty() {
            return;
        }
        let blob = o.enc.to_blob();
        self.backlog_bytes += blob.len();
        self.sealed.push_back(Sealed {
            series: idx,
            window: o.window,
            count: o.enc.len(),
            blob,
        });
        while self.backlog_bytes > self.backlog_cap {
            let Some(old) = self.sealed.pop_front() else {
                break;
            };
            self.backlog_bytes = self.backlog_bytes.saturating_sub(old.blob.len());
            c.dropped_backlog.fetch_add(u64::from(old.count), Relaxed);
        }
    }

    /// Seals open chunks whose window ended more than [`SEAL_GRACE_MS`] ago (series that
    /// stopped reporting).
    pub fn seal_idle(&mut self, now_ms: i64, c: &WriterCounters) {
        for idx in 0..self.series.len() {
            let due = self.series[idx]
                .open
                .as_ref()
                .is_some_and(|o| (o.window + 1) * RAW_WINDOW_MS + SEAL_GRACE_MS <= now_ms);
            if due && let Some(o) = self.series[idx].open.take() {
                self.seal(idx, o, c);
            }
        }
    }

    /// After a new connection: every id must be looked up again and every open chunk
    /// rewritten (the file may be a new one).
    pub fn forget_db(&mut self) {
        for s in &mut self.series {
            s.db_id = None;
            if let Some(o) = &mut s.open {
                o.dirty = true;
            }
        }
        for h in &mut self.hosts {
            h.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::metrics::Metric;

    fn sample(ts: i64, v: f64) -> Sample {
        Sample {
            host: "h".into(),
            series: SeriesKey::new(Metric::CpuUsagePct),
            ts_ms: ts,
            value: v,
        }
    }

    fn mem() -> Mem {
        Mem {
            backlog_cap: 1 << 20,
            retention_ms: 7 * 86_400_000,
            ..Mem::default()
        }
    }

    #[test]
    fn routes_in_order_out_of_order_next_window_and_late() {
        let c = WriterCounters::default();
        let mut m = mem();
        let t0 = 1_700_000_400_000; // a window start
        assert_eq!(t0 % RAW_WINDOW_MS, 0);
        let now = t0 + 2 * RAW_WINDOW_MS;
        m.ingest(
            vec![
                sample(t0, 1.0),
                sample(t0 + 2000, 3.0),
                sample(t0 + 1000, 2.0),
            ],
            now,
            &c,
        );
        let o = m.series[0].open.as_ref().expect("open");
        assert_eq!((o.enc.len(), o.ooo.len()), (2, 1));
        m.ingest(
            vec![sample(t0 + RAW_WINDOW_MS, 4.0), sample(t0 + 500, 9.0)],
            now,
            &c,
        );
        assert_eq!(m.sealed.len(), 1);
        assert_eq!(
            m.sealed[0].count, 3,
            "out-of-order sample merged at sealing"
        );
        assert_eq!(m.late.len(), 1);
        m.ingest(vec![sample(1, 0.0), sample(now + 3_600_000, 0.0)], now, &c);
        assert_eq!(c.refused.load(Relaxed), 2);
        assert_eq!(c.accepted.load(Relaxed), 5);
        m.seal_idle(t0 + 2 * RAW_WINDOW_MS + SEAL_GRACE_MS, &c);
        assert_eq!(m.sealed.len(), 2);
        assert!(m.series[0].open.is_none());
    }

    #[test]
    fn backlog_is_capped_by_dropping_the_oldest() {
        let c = WriterCounters::default();
        let mut m = mem();
        m.backlog_cap = 100;
        let t0 = 1_700_000_400_000;
        let now = t0 + 100 * RAW_WINDOW_MS;
        for w in 0..50 {
            m.ingest(vec![sample(t0 + w * RAW_WINDOW_MS, w as f64)], now, &c);
        }
        assert!(m.backlog_bytes <= 100);
        assert!(c.dropped_backlog.load(Relaxed) > 0);
        assert_eq!(m.sealed.back().map(|s| s.window), Some(window_of(t0) + 48));
    }
}
