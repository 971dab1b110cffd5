//! Writing the writer's memory into SQLite: sealed chunks, late samples (decode, merge,
//! re-encode, rewrite), open chunks and hosts, in bounded steps of one transaction each so
//! that a big flush never stalls ingest for long; and loading that state back on (re)connect.
//!
//! Every step commits or rolls back as a whole and memory is only updated after a commit, so
//! a failed step (disk full, read-only file) is simply retried later. Not responsible for
//! routing samples ([`super::mem`]) or for rollups and pruning ([`super::maint`]).

use super::WriterCounters;
use super::mem::{Mem, OpenChunk, Sealed};
use crate::codec::chunk::{self, ChunkEncoder};
use crate::error::StoreError;
use crate::layout::{MAX_SERIES_ID, RAW_WINDOW_MS, floor_to, row_id, window_of};
use meshmon_proto::SeriesKey;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

/// Progress of one flush across steps.
#[derive(Debug, Default)]
pub(crate) struct FlushJob {
    open_cursor: usize,
    /// Positions as they were when the flush started: everything they cover was in memory
    /// then, so it is written by this flush, and they are written in its last step.
    positions: Vec<(String, u64, u64)>,
}

impl FlushJob {
    /// A flush of everything in `mem` now.
    pub(crate) fn new(mem: &Mem) -> FlushJob {
        FlushJob {
            open_cursor: 0,
            positions: mem
                .positions
                .iter()
                .map(|(h, (b, s))| (h.clone(), *b, *s))
                .collect(),
        }
    }
}

/// New data for a chunk row.
enum NewData<'a> {
    Blob(&'a [u8]),
    Samples(&'a [(i64, f64)]),
}

/// Runs one step of `job`: at most about `budget` rows in one transaction. Returns whether
/// the flush is complete.
pub(crate) fn step(
    conn: &Connection,
    path: &Path,
    mem: &mut Mem,
    job: &mut FlushJob,
    rollup_next: Option<i64>,
    budget: usize,
    c: &WriterCounters,
) -> Result<bool, StoreError> {
    let err = |e| StoreError::sqlite(path, e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let mut w = StepWrites::default();
    match run_step(conn, mem, job, rollup_next, budget, c, &mut w) {
        Ok(done) => match conn.execute_batch("COMMIT") {
            Ok(()) => {
                w.apply(mem);
                Ok(done)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(err(e))
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err(e))
        }
    }
}

/// Writes dirty hosts only (between flushes, so `last_seen` stays fresh for readers).
pub(crate) fn hosts_step(conn: &Connection, path: &Path, mem: &mut Mem) -> Result<(), StoreError> {
    let err = |e| StoreError::sqlite(path, e);
    let tx = conn.unchecked_transaction().map_err(err)?;
    write_hosts(conn, mem).map_err(err)?;
    tx.commit().map_err(err)?;
    for h in &mut mem.hosts {
        h.dirty = false;
        h.info = None;
    }
    Ok(())
}

/// What a step did, applied to memory only after its commit.
#[derive(Default)]
struct StepWrites {
    ids: HashMap<usize, i64>,
    sealed: usize,
    late: Vec<(usize, i64)>,
    open: Vec<usize>,
    hosts: bool,
}

impl StepWrites {
    fn apply(self, mem: &mut Mem) {
        for (idx, id) in self.ids {
            mem.series[idx].db_id = Some(id);
        }
        for s in mem.sealed.drain(..self.sealed) {
            mem.backlog_bytes = mem.backlog_bytes.saturating_sub(s.blob.len());
        }
        for k in self.late {
            if let Some(v) = mem.late.remove(&k) {
                mem.backlog_bytes = mem.backlog_bytes.saturating_sub(v.len() * 16);
            }
        }
        for idx in self.open {
            if let Some(o) = &mut mem.series[idx].open {
                o.dirty = false;
            }
        }
        if self.hosts {
            for h in &mut mem.hosts {
                h.dirty = false;
                h.info = None;
            }
        }
    }
}

fn run_step(
    conn: &Connection,
    mem: &mut Mem,
    job: &mut FlushJob,
    rollup_next: Option<i64>,
    budget: usize,
    c: &WriterCounters,
    w: &mut StepWrites,
) -> rusqlite::Result<bool> {
    let mut work = 0;
    while work < budget && w.sealed < mem.sealed.len() {
        let Sealed {
            series,
            window,
            ref blob,
            ..
        } = mem.sealed[w.sealed];
        let sid = resolve(conn, mem, series, &mut w.ids)?;
        put_chunk(conn, sid, window, NewData::Blob(blob), c)?;
        conn.prepare_cached("DELETE FROM open_chunks WHERE series_id = ?1 AND start_ms = ?2")?
            .execute(params![sid, window * RAW_WINDOW_MS])?;
        mark_dirty(conn, sid, window, rollup_next)?;
        w.sealed += 1;
        work += 1;
    }
    if w.sealed < mem.sealed.len() {
        return Ok(false);
    }
    let keys: Vec<(usize, i64)> = mem.late.keys().take(budget - work).copied().collect();
    for key in keys {
        let sid = resolve(conn, mem, key.0, &mut w.ids)?;
        put_chunk(conn, sid, key.1, NewData::Samples(&mem.late[&key]), c)?;
        mark_dirty(conn, sid, key.1, rollup_next)?;
        w.late.push(key);
        work += 1;
    }
    if w.late.len() < mem.late.len() {
        return Ok(false);
    }
    while work < budget && job.open_cursor < mem.series.len() {
        let idx = job.open_cursor;
        job.open_cursor += 1;
        if !mem.series[idx].open.as_ref().is_some_and(|o| o.dirty) {
            continue;
        }
        let sid = resolve(conn, mem, idx, &mut w.ids)?;
        let Some(o) = mem.series[idx].open.as_mut() else {
            continue;
        };
        o.merge_ooo();
        conn.prepare_cached(
            "INSERT INTO open_chunks (series_id, start_ms, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (series_id) DO UPDATE SET start_ms = excluded.start_ms,
             data = excluded.data",
        )?
        .execute(params![sid, o.window * RAW_WINDOW_MS, o.enc.to_blob()])?;
        w.open.push(idx);
        work += 1;
    }
    if job.open_cursor < mem.series.len() {
        return Ok(false);
    }
    write_hosts(conn, mem)?;
    for (host, boot, seq) in &job.positions {
        conn.prepare_cached(
            "INSERT INTO positions (host, boot_id, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (host) DO UPDATE SET boot_id = excluded.boot_id, seq = excluded.seq",
        )?
        .execute(params![
            host,
            i64::try_from(*boot).unwrap_or(i64::MAX),
            i64::try_from(*seq).unwrap_or(i64::MAX)
        ])?;
    }
    w.hosts = true;
    Ok(true)
}

/// The series' id in this database: known, looked up, or inserted.
fn resolve(
    conn: &Connection,
    mem: &Mem,
    idx: usize,
    ids: &mut HashMap<usize, i64>,
) -> rusqlite::Result<i64> {
    if let Some(id) = mem.series[idx].db_id.or_else(|| ids.get(&idx).copied()) {
        return Ok(id);
    }
    let s = &mem.series[idx];
    let host = &mem.hosts[s.host].name;
    let labels = labels_json(&s.key);
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM series WHERE host = ?1 AND name = ?2 AND labels = ?3")?
        .query_row(params![host, s.key.name, labels], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO series (host, name, labels) VALUES (?1, ?2, ?3)")?
                .execute(params![host, s.key.name, labels])?;
            conn.last_insert_rowid()
        }
    };
    if !(0..=MAX_SERIES_ID).contains(&id) {
        return Err(rusqlite::Error::IntegralValueOutOfRange(0, id));
    }
    ids.insert(idx, id);
    Ok(id)
}

/// The `labels` column of a series key: a JSON array of `[name, value]` pairs.
pub(crate) fn labels_json(key: &SeriesKey) -> String {
    serde_json::to_string(&key.labels).unwrap_or_else(|_| "[]".into())
}

/// Writes new data into the chunk row of (`sid`, `window`), merging with what is there.
fn put_chunk(
    conn: &Connection,
    sid: i64,
    window: i64,
    new: NewData<'_>,
    c: &WriterCounters,
) -> rusqlite::Result<()> {
    let id = row_id(window, sid);
    if let NewData::Blob(b) = new {
        let n = conn
            .prepare_cached("INSERT INTO chunks (id, data) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
            .execute(params![id, b])?;
        if n == 1 {
            return Ok(());
        }
    }
    let old: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM chunks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let old = match old.as_deref().map(chunk::decode) {
        None => Vec::new(),
        Some(Ok(v)) => v,
        Some(Err(error)) => {
            c.bad_blobs.fetch_add(1, Relaxed);
            tracing::warn!(chunk = id, %error, "replacing a chunk that does not decode");
            Vec::new()
        }
    };
    let new_samples = match new {
        NewData::Blob(b) => chunk::decode(b).unwrap_or_default(),
        NewData::Samples(s) => s.to_vec(),
    };
    let merged = chunk::merge(&old, &new_samples);
    conn.prepare_cached("INSERT OR REPLACE INTO chunks (id, data) VALUES (?1, ?2)")?
        .execute(params![id, chunk::encode(&merged)])?;
    Ok(())
}

/// Queues the hour of `window` for another rollup if it was already rolled up.
fn mark_dirty(
    conn: &Connection,
    sid: i64,
    window: i64,
    rollup_next: Option<i64>,
) -> rusqlite::Result<()> {
    let hour = floor_to(window * RAW_WINDOW_MS, 3_600_000);
    if rollup_next.is_some_and(|next| hour < next) {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO rollup_dirty (hour_ms, series_id) VALUES (?1, ?2)",
        )?
        .execute(params![hour, sid])?;
    }
    Ok(())
}

fn write_hosts(conn: &Connection, mem: &Mem) -> rusqlite::Result<()> {
    for h in mem
        .hosts
        .iter()
        .filter(|h| h.dirty && h.last_seen_ms > i64::MIN)
    {
        conn.prepare_cached(
            "INSERT INTO hosts (name, first_seen_ms, last_seen_ms, hops) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
               first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
               hops = CASE WHEN excluded.last_seen_ms >= last_seen_ms THEN excluded.hops
                      ELSE hops END,
               last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
        )?
        .execute(params![h.name, h.first_seen_ms, h.last_seen_ms, h.hops])?;
        if let Some(i) = &h.info {
            conn.prepare_cached(
                "UPDATE hosts SET version = ?2, os = ?3, kernel = ?4, arch = ?5, tags = ?6,
                 interval_ms = ?7, boot_time_s = ?8, cores = ?9, dashboard = ?10 WHERE name = ?1",
            )?
            .execute(params![
                h.name,
                i.version,
                i.os,
                i.kernel,
                i.arch,
                serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()),
                i64::try_from(i.interval_ms).unwrap_or(i64::MAX),
                i64::try_from(i.boot_time_s).unwrap_or(i64::MAX),
                i.cores,
                i.dashboard,
            ])?;
        }
    }
    Ok(())
}

/// Loads what the database knows into memory after a (re)connect: series ids, hosts' first
/// and last seen, and open chunks (merged with any open chunk already in memory; an open row
/// of another window becomes a sealed chunk to write).
pub(crate) fn load(conn: &Connection, mem: &mut Mem, c: &WriterCounters) -> rusqlite::Result<()> {
    mem.forget_db();
    let mut st = conn.prepare("SELECT name, first_seen_ms, last_seen_ms, hops FROM hosts")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (name, first, last, hops) = row?;
        let i = mem.host(&name);
        let h = &mut mem.hosts[i];
        h.first_seen_ms = h.first_seen_ms.min(first);
        if last >= h.last_seen_ms {
            h.last_seen_ms = last;
            h.hops = u8::try_from(hops).unwrap_or(u8::MAX);
        }
    }
    let mut st = conn.prepare("SELECT id, host, name, labels FROM series")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut by_id = HashMap::new();
    for row in rows {
        let (id, host, name, labels) = row?;
        let Ok(labels) = serde_json::from_str::<Vec<(String, String)>>(&labels) else {
            c.bad_blobs.fetch_add(1, Relaxed);
            continue;
        };
        let h = mem.host(&host);
        let idx = mem.series(h, &SeriesKey { name, labels });
        mem.series[idx].db_id = Some(id);
        by_id.insert(id, idx);
    }
    let mut st = conn.prepare("SELECT series_id, start_ms, data FROM open_chunks")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    for row in rows {
        let (sid, start, blob) = row?;
        let Some(&idx) = by_id.get(&sid) else {
            continue;
        };
        let Ok(samples) = chunk::decode(&blob) else {
            c.bad_blobs.fetch_add(1, Relaxed);
            continue;
        };
        let window = window_of(start);
        match &mut mem.series[idx].open {
            None => {
                mem.series[idx].open = Some(OpenChunk {
                    window,
                    enc: ChunkEncoder::from_samples(&samples),
                    ooo: Vec::new(),
                    dirty: false,
                })
            }
            Some(o) if o.window == window => o.ooo.extend(samples),
            Some(_) => {
                mem.backlog_bytes += blob.len();
                mem.sealed.push_back(Sealed {
                    series: idx,
                    window,
                    count: u32::try_from(samples.len()).unwrap_or(u32::MAX),
                    blob,
                });
            }
        }
    }
    Ok(())
}
