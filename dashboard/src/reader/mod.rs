//! Read-only queries over a store file, safe while the writer writes (WAL; each query reads
//! one consistent snapshot).
//!
//! Responsible for picking the data source of each part of a range and for the query rows:
//! raw chunks where raw data is kept (exact), one-minute rollups below the raw floor, one-hour
//! rollups below the one-minute floor; with `step` of a minute or more, rollups wherever the
//! hour is already rolled up (long ranges never decode raw data). Parts of a range answered
//! from rollups are widened to whole buckets.
//!
//! With a running node's [`Head`] (its unwritten data, see [`crate::head`]), raw reads merge
//! the head's samples into the file's, and series and hosts only the head knows yet are
//! included; the head is asked for before the file is read, so whatever it held is either
//! still in it or already in the file. Not responsible for output formats ([`crate::cli`])
//! or the arithmetic ([`crate::agg`]).

use crate::agg::{Stats, StatsAcc};
use crate::codec::block::Block;
use crate::codec::chunk;
use crate::error::StoreError;
use crate::head::Head;
use crate::layout::{Res, floor_to, row_id, split_id, window_of};
use crate::schema::{self, meta_get};
use meshmon_proto::{Selector, SeriesKey};
use rusqlite::{Connection, OptionalExtension as _};
use sinks::{Points, Sink, Steps};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod checks;
mod closest;
mod hosts;
mod sinks;

pub use checks::{CheckRow, check_metric_names};
use closest::CLOSEST;
pub use closest::closest;
pub use hosts::HostRow;

/// A read-only view of a store.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    path: PathBuf,
    head: Option<Head>,
}

/// A series to read: its id in the file (`None`: only the head has it yet) and key.
type Sref = (Option<i64>, SeriesKey);

/// The points of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRows {
    /// The series.
    pub key: SeriesKey,
    /// `(ts ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// One row of `meshmon query alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Alert id.
    pub id: i64,
    /// Rule name.
    pub rule: String,
    /// Host.
    pub host: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, if resolved.
    pub ended_ms: Option<i64>,
    /// The value that triggered it.
    pub value: Option<f64>,
    /// Acknowledged.
    pub acked: bool,
    /// Recorded while a maintenance window held its notifications.
    pub maintenance: bool,
}

/// Which data a query prefers.
#[derive(Debug, Clone, Copy)]
enum Pref {
    /// Raw wherever it is kept (exact).
    Raw,
    /// Rollups of this resolution wherever the hour is rolled up.
    Rollup(Res),
}

/// Where the data of a range lives.
#[derive(Debug, Clone, Copy)]
struct Floors {
    raw: i64,
    m1: i64,
    h1: i64,
    rolled: i64,
}

impl Reader {
    /// Opens the store at `path` read-only. Fails with [`StoreError::NotFound`] when there is
    /// no file, [`StoreError::Corrupt`] when it is not a meshmon store.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: schema::open_reader(path)?,
            path: path.to_path_buf(),
            head: None,
        })
    }

    /// Merges `head` (a running node's unwritten data) into every query of this reader.
    pub fn with_head(mut self, head: Head) -> Reader {
        self.head = Some(head);
        self
    }

    /// The head's unwritten samples of `host`'s series `key`.
    fn head_samples(&self, host: &str, key: &SeriesKey) -> &[(i64, f64)] {
        self.head.as_ref().map_or(&[], |h| h.samples(host, key))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    /// Runs `f` inside one read transaction (one consistent snapshot).
    fn snapshot<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let r = f()?;
        drop(tx);
        Ok(r)
    }

    /// How far the store holds each origin's live frames: (host, boot id, sequence number).
    /// A store written before positions existed has none.
    pub fn positions(&self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT host, boot_id, seq FROM positions ORDER BY host")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The series of `host` (ids and keys, sorted by key).
    pub fn host_series(&self, host: &str) -> Result<Vec<(i64, SeriesKey)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, name, labels FROM series WHERE host = ?1")
            .map_err(|e| self.err(e))?;
        let mut out: Vec<(i64, SeriesKey)> = st
            .query_map([host], |r| {
                let labels: String = r.get(2)?;
                Ok((
                    r.get(0)?,
                    SeriesKey {
                        name: r.get(1)?,
                        labels: serde_json::from_str(&labels).unwrap_or_default(),
                    },
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        if out.is_empty() {
            let known: Option<i64> = self
                .conn
                .query_row("SELECT 1 FROM hosts WHERE name = ?1", [host], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            if known.is_none() {
                return Err(StoreError::UnknownHost(host.to_owned()));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// The series of `host` in the file and in the head, sorted by key.
    fn series_of(&self, host: &str) -> Result<Vec<Sref>, StoreError> {
        let file = match self.host_series(host) {
            Err(StoreError::UnknownHost(_))
                if self.head.as_ref().is_some_and(|h| h.knows_host(host)) =>
            {
                Vec::new()
            }
            r => r?,
        };
        let mut out: Vec<Sref> = file.into_iter().map(|(id, k)| (Some(id), k)).collect();
        if let Some(head) = &self.head {
            for k in head.keys(host) {
                if !out.iter().any(|(_, have)| have == k) {
                    out.push((None, k.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    fn matching(&self, host: &str, sel: &Selector) -> Result<Vec<Sref>, StoreError> {
        let all = self.series_of(host)?;
        let (found, rest): (Vec<Sref>, Vec<Sref>) =
            all.into_iter().partition(|(_, k)| sel.matches(k));
        if found.is_empty() {
            let want = selector_text(sel);
            let names: Vec<String> = rest.into_iter().map(|(_, k)| k.to_string()).collect();
            let hint = match closest(&want, &names, CLOSEST) {
                c if c.is_empty() => "; it has no series yet".to_owned(),
                c => format!(
                    "; closest: {} ('meshmon query stats --host {host}' lists them all)",
                    c.join(", ")
                ),
            };
            return Err(StoreError::BadArgument(format!(
                "host '{host}' has no series matching '{want}'{hint}"
            )));
        }
        Ok(found)
    }

    /// Points of every series of `host` matching `sel` in `[since, until]`. Without `step`,
    /// raw samples (or bucket averages where only rollups are left); with `step`, the average
    /// of each step, read from rollups for steps of a minute or more.
    pub fn series(
        &self,
        host: &str,
        sel: &Selector,
        since: i64,
        until: i64,
        step: Option<Duration>,
    ) -> Result<Vec<SeriesRows>, StoreError> {
        self.snapshot(|| {
            let fl = self.floors()?;
            let mut out = Vec::new();
            for (sid, key) in self.matching(host, sel)? {
                let head = self.head_samples(host, &key);
                let points = self.points(&fl, sid, head, since, until, step)?;
                out.push(SeriesRows { key, points });
            }
            Ok(out)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn points(
        &self,
        fl: &Floors,
        sid: Option<i64>,
        head: &[(i64, f64)],
        since: i64,
        until: i64,
        step: Option<Duration>,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let step_ms = step.map(crate::layout::dur_ms).filter(|s| *s > 0);
        Ok(match step_ms {
            None => {
                let mut p = Points(Vec::new());
                self.visit(fl, sid, head, since, until, Pref::Raw, &mut p)?;
                p.0
            }
            Some(step) => {
                let pref = if step >= Res::H1.bucket_ms() {
                    Pref::Rollup(Res::H1)
                } else if step >= Res::M1.bucket_ms() {
                    Pref::Rollup(Res::M1)
                } else {
                    Pref::Raw
                };
                let mut s = Steps {
                    step,
                    cur: None,
                    out: Vec::new(),
                };
                self.visit(fl, sid, head, since, until, pref, &mut s)?;
                s.finish()
            }
        })
    }

    /// Statistics of each series of `host` matching any of `sels` (every series of the host
    /// when `sels` is empty) over `[since, until]`; `None` where a series has no data there.
    pub fn stats(
        &self,
        host: &str,
        sels: &[Selector],
        since: i64,
        until: i64,
    ) -> Result<Vec<(SeriesKey, Option<Stats>)>, StoreError> {
        self.snapshot(|| {
            let fl = self.floors()?;
            let mut series = Vec::new();
            if sels.is_empty() {
                series = self.series_of(host)?;
            }
            for sel in sels {
                for s in self.matching(host, sel)? {
                    if !series.iter().any(|(_, k)| *k == s.1) {
                        series.push(s);
                    }
                }
            }
            let mut out = Vec::with_capacity(series.len());
            for (sid, key) in series {
                let mut acc = StatsAcc::new();
                let head = self.head_samples(host, &key);
                self.visit(&fl, sid, head, since, until, Pref::Raw, &mut acc)?;
                out.push((key, acc.finish()));
            }
            Ok(out)
        })
    }

    /// Every series of `host` in `[since, until]` as stored (raw where kept, else the finest
    /// rollup's bucket averages), one series at a time to `f`.
    pub fn export(
        &self,
        host: &str,
        since: i64,
        until: i64,
        mut f: impl FnMut(&SeriesKey, &[(i64, f64)]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.snapshot(|| {
            let fl = self.floors()?;
            for (sid, key) in self.series_of(host)? {
                let head = self.head_samples(host, &key);
                let points = self.points(&fl, sid, head, since, until, None)?;
                f(&key, &points)?;
            }
            Ok(())
        })
    }

    /// Alerts: active ones (pending, firing), or all with `all`; those started or ended at or
    /// after `since` when given. Oldest first.
    pub fn alerts(&self, all: bool, since: Option<i64>) -> Result<Vec<AlertRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, rule, host, state, severity, started_ms, ended_ms, value, acked,
                     maintenance
                 FROM alerts WHERE (?1 OR state != 'resolved')
                 AND (?2 IS NULL OR started_ms >= ?2 OR ended_ms >= ?2)
                 ORDER BY started_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(rusqlite::params![all, since], |r| {
                Ok(AlertRow {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                    host: r.get(2)?,
                    state: r.get(3)?,
                    severity: r.get(4)?,
                    started_ms: r.get(5)?,
                    ended_ms: r.get(6)?,
                    value: r.get(7)?,
                    acked: r.get(8)?,
                    maintenance: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn floors(&self) -> Result<Floors, StoreError> {
        let get = |k| meta_get(&self.conn, k).map_err(|e| self.err(e));
        Ok(Floors {
            raw: get("raw_floor_ms")?.unwrap_or(i64::MIN),
            m1: get("m1_floor_ms")?.unwrap_or(i64::MIN),
            h1: get("h1_floor_ms")?.unwrap_or(i64::MIN),
            rolled: get("rollup_next_ms")?.unwrap_or(i64::MIN),
        })
    }

    /// Feeds `[since, until]` of series `sid` (and the head's `head` samples where raw data
    /// is read) to `sink` in time order from the right sources.
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        fl: &Floors,
        sid: Option<i64>,
        head: &[(i64, f64)],
        since: i64,
        until: i64,
        pref: Pref,
        sink: &mut dyn Sink,
    ) -> Result<(), StoreError> {
        if since > until {
            return Ok(());
        }
        let split = match pref {
            Pref::Raw => fl.raw,
            Pref::Rollup(_) => fl.rolled.max(fl.raw),
        };
        if let Some(sid) = sid
            && since < split
        {
            let hi = until.min(split - 1);
            let m1_from = since.max(fl.m1);
            if matches!(pref, Pref::Rollup(Res::H1)) || since < fl.m1 {
                let h1_hi = if matches!(pref, Pref::Rollup(Res::H1)) {
                    hi
                } else {
                    hi.min(fl.m1 - 1)
                };
                self.buckets(Res::H1, sid, since.max(fl.h1), h1_hi, sink)?;
            }
            if !matches!(pref, Pref::Rollup(Res::H1)) {
                self.buckets(Res::M1, sid, m1_from, hi, sink)?;
            }
        }
        let lo = since.max(split);
        if lo <= until {
            self.raw(sid, head, lo, until, sink)?;
        }
        Ok(())
    }

    /// Rollup buckets of `res` overlapping `[from, to]` (starting in it, or holding `from`).
    fn buckets(
        &self,
        res: Res,
        sid: i64,
        from: i64,
        to: i64,
        sink: &mut dyn Sink,
    ) -> Result<(), StoreError> {
        // Ranges answered from rollups are widened to whole buckets.
        let from = floor_to(from, res.bucket_ms());
        if from > to {
            return Ok(());
        }
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT data FROM {} WHERE id = ?1", res.table()))
            .map_err(|e| self.err(e))?;
        let Some((first, last)) = self.block_bounds(res.table())? else {
            return Ok(());
        };
        let lo = from.div_euclid(res.block_ms()).max(first);
        let hi = to.div_euclid(res.block_ms()).min(last);
        for block in lo..=hi {
            let blob: Option<Vec<u8>> = st
                .query_row([row_id(block, sid)], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(blob) = blob else { continue };
            let b = Block::decode(&blob, res.slots())
                .map_err(|e| StoreError::corrupt_blob(&self.path, res.table(), e))?;
            let start = block * res.block_ms();
            for (i, slot) in b.slots.iter().enumerate() {
                let ts = start + i as i64 * res.bucket_ms();
                if let Some(bk) = slot
                    && (from..=to).contains(&ts)
                {
                    sink.bucket(ts, bk);
                }
            }
        }
        Ok(())
    }

    /// Raw samples in `[from, to]`: sealed chunks, then the open chunk, merged with the
    /// head's samples.
    fn raw(
        &self,
        sid: Option<i64>,
        head: &[(i64, f64)],
        from: i64,
        to: i64,
        sink: &mut dyn Sink,
    ) -> Result<(), StoreError> {
        let head = &head[head.partition_point(|s| s.0 < from)..head.partition_point(|s| s.0 <= to)];
        let Some(sid) = sid else {
            for &(t, v) in head {
                sink.raw(t, v);
            }
            return Ok(());
        };
        let mut st = self
            .conn
            .prepare_cached("SELECT data FROM chunks WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        let open: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT start_ms, data FROM open_chunks WHERE series_id = ?1")
            .and_then(|mut s| {
                s.query_row([sid], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        let open_window = open.as_ref().map(|(s, _)| window_of(*s));
        let corrupt = |e| StoreError::corrupt_blob(&self.path, "chunks", e);
        // Only windows that can hold data: between the first and last chunk of any series,
        // the open one, or the head's.
        let bounds = self.block_bounds("chunks")?;
        let (mut lo, mut hi) = bounds.unwrap_or((i64::MAX, i64::MIN));
        if let Some(w) = open_window {
            (lo, hi) = (lo.min(w), hi.max(w));
        }
        if let (Some(first), Some(last)) = (head.first(), head.last()) {
            (lo, hi) = (lo.min(window_of(first.0)), hi.max(window_of(last.0)));
        }
        let mut rest = head;
        for w in window_of(from).max(lo)..=window_of(to).min(hi) {
            let blob: Option<Vec<u8>> = st
                .query_row([row_id(w, sid)], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            let open_here = open.as_ref().filter(|_| open_window == Some(w));
            let n = rest.partition_point(|s| window_of(s.0) <= w);
            let (head_here, after) = rest.split_at(n);
            rest = after;
            match (blob, open_here) {
                (Some(b), None) if head_here.is_empty() => {
                    chunk::decode_each(&b, |t, v| {
                        if (from..=to).contains(&t) {
                            sink.raw(t, v);
                        }
                    })
                    .map_err(corrupt)?;
                }
                (b, open_here) => {
                    // The file's chunk, its open row (both exist only around sealing) and
                    // the head's samples of this window, merged.
                    let mut have = match b {
                        Some(b) => chunk::decode(&b).map_err(corrupt)?,
                        None => Vec::new(),
                    };
                    if let Some((_, ob)) = open_here {
                        have = chunk::merge(&have, &chunk::decode(ob).map_err(corrupt)?);
                    }
                    have = chunk::merge(&have, head_here);
                    for (t, v) in have.into_iter().filter(|(t, _)| (from..=to).contains(t)) {
                        sink.raw(t, v);
                    }
                }
            }
        }
        Ok(())
    }

    /// The first and last block index present in a blob table.
    fn block_bounds(&self, table: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .conn
            .prepare_cached(&format!("SELECT min(id), max(id) FROM {table}"))
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.err(e))?;
        Ok(lo.zip(hi).map(|(a, b)| (split_id(a).0, split_id(b).0)))
    }

    /// The path this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A selector as the user would write it.
pub fn selector_text(sel: &Selector) -> String {
    SeriesKey {
        name: sel.name.clone(),
        labels: sel.labels.clone(),
    }
    .to_string()
}
