//! Background upkeep run by the writer between ingest batches, in bounded steps: rolling up
//! each finished hour of raw chunks into one-minute and one-hour buckets, re-rolling hours
//! that received late samples, and pruning data past its retention.
//!
//! An hour is rolled up once it ended [`ROLLUP_DELAY_MS`] ago (late samples up to
//! [`crate::layout::LATE_TOLERANCE_MS`] have been merged by then); `meta.rollup_next_ms` is
//! the first hour not yet rolled up. Raw chunks are only pruned below that mark, so every
//! pruned sample is in a rollup. Not responsible for raw writes ([`super::flush`]).

use super::WriterCounters;
use crate::agg::Bucket;
use crate::codec::block::Block;
use crate::codec::chunk;
use crate::layout::{
    MAX_SERIES_ID, RAW_WINDOW_MS, ROLLUP_DELAY_MS, Res, floor_to, row_id, split_id, window_of,
};
use crate::schema::{meta_get, meta_set};
use rusqlite::{Connection, OptionalExtension as _, params};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

const HOUR_MS: i64 = 3_600_000;
/// Series ids covered by one rollup step.
const SERIES_PER_STEP: i64 = 1024;
/// Rows deleted per prune step.
const PRUNE_ROWS_PER_STEP: i64 = 5000;

/// Retentions in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    pub raw: i64,
    pub m1: i64,
    pub h1: i64,
}

/// Where an hour's rollup has got to.
#[derive(Debug, Clone, Copy)]
struct HourJob {
    hour: i64,
    next_sid: i64,
}

/// Upkeep state kept between steps.
#[derive(Debug, Default)]
pub(crate) struct Maint {
    /// Cached `meta.rollup_next_ms`.
    pub rollup_next: Option<i64>,
    job: Option<HourJob>,
}

impl Maint {
    /// Reads the watermark after a (re)connect.
    pub fn load(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.rollup_next = meta_get(conn, "rollup_next_ms")?;
        self.job = None;
        Ok(())
    }

    /// One bounded rollup step in one transaction. Returns whether it did anything (false:
    /// nothing is due).
    pub fn rollup_step(
        &mut self,
        conn: &Connection,
        now_ms: i64,
        c: &WriterCounters,
    ) -> rusqlite::Result<bool> {
        let tx = conn.unchecked_transaction()?;
        let did = self.rollup_in_tx(conn, now_ms, c)?;
        tx.commit()?;
        Ok(did)
    }

    fn rollup_in_tx(
        &mut self,
        conn: &Connection,
        now_ms: i64,
        c: &WriterCounters,
    ) -> rusqlite::Result<bool> {
        let dirty: Vec<(i64, i64)> = conn
            .prepare_cached("SELECT hour_ms, series_id FROM rollup_dirty LIMIT 256")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if !dirty.is_empty() {
            for (hour, sid) in dirty {
                let samples = hour_samples(conn, hour, sid, sid + 1, c)?;
                roll_series(
                    conn,
                    hour,
                    sid,
                    samples.get(&sid).map_or(&[][..], Vec::as_slice),
                    c,
                )?;
                conn.prepare_cached(
                    "DELETE FROM rollup_dirty WHERE hour_ms = ?1 AND series_id = ?2",
                )?
                .execute(params![hour, sid])?;
            }
            return Ok(true);
        }
        let job = match self.job {
            Some(j) => j,
            None => {
                let Some(hour) = self.next_hour(conn)? else {
                    return Ok(false);
                };
                if hour + HOUR_MS + ROLLUP_DELAY_MS > now_ms {
                    return Ok(false);
                }
                HourJob { hour, next_sid: 0 }
            }
        };
        let end_sid = (job.next_sid + SERIES_PER_STEP).min(MAX_SERIES_ID + 1);
        let samples = hour_samples(conn, job.hour, job.next_sid, end_sid, c)?;
        for (sid, s) in &samples {
            roll_series(conn, job.hour, *sid, s, c)?;
        }
        let max_sid: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM series", [], |r| r.get(0))?;
        if end_sid > max_sid {
            let next = job.hour + HOUR_MS;
            meta_set(conn, "rollup_next_ms", next)?;
            self.rollup_next = Some(next);
            self.job = None;
            c.rollups.fetch_add(1, Relaxed);
        } else {
            self.job = Some(HourJob {
                hour: job.hour,
                next_sid: end_sid,
            });
        }
        Ok(true)
    }

    /// The next hour to roll up: the watermark, moved forward past hours without chunks.
    fn next_hour(&mut self, conn: &Connection) -> rusqlite::Result<Option<i64>> {
        let from = self.rollup_next.unwrap_or(i64::MIN);
        let first: Option<i64> = conn
            .prepare_cached("SELECT min(id) FROM chunks WHERE id >= ?1")?
            .query_row([row_id(window_of(from.max(0)), 0)], |r| r.get(0))?;
        Ok(first.map(|id| {
            let hour = floor_to(split_id(id).0 * RAW_WINDOW_MS, HOUR_MS);
            self.rollup_next.map_or(hour, |n| hour.max(n))
        }))
    }

    /// Deletes up to a step's worth of rows past retention. Returns whether anything is left
    /// to delete.
    pub fn prune_step(
        &mut self,
        conn: &Connection,
        now_ms: i64,
        ret: Retention,
    ) -> rusqlite::Result<bool> {
        let tx = conn.unchecked_transaction()?;
        // Raw data is only pruned once rolled up; nothing is pruned before the first rollup.
        let raw_cut = self.rollup_next.map_or(0, |next| {
            floor_to(now_ms.saturating_sub(ret.raw).min(next), RAW_WINDOW_MS)
        });
        let m1_cut = floor_to(now_ms.saturating_sub(ret.m1), Res::M1.block_ms());
        let h1_cut = floor_to(now_ms.saturating_sub(ret.h1), Res::H1.block_ms());
        let mut more = false;
        for (key, cut, table, block) in [
            ("raw_floor_ms", raw_cut, "chunks", RAW_WINDOW_MS),
            ("m1_floor_ms", m1_cut, Res::M1.table(), Res::M1.block_ms()),
            ("h1_floor_ms", h1_cut, Res::H1.table(), Res::H1.block_ms()),
        ] {
            if cut <= 0 {
                continue;
            }
            // Readers switch to coarser data below the floor before the rows go.
            if meta_get(conn, key)?.is_none_or(|f| f < cut) {
                meta_set(conn, key, cut)?;
            }
            let n = conn.execute(
                &format!(
                    "DELETE FROM {table} WHERE id IN \
                     (SELECT id FROM {table} WHERE id < ?1 LIMIT ?2)"
                ),
                params![row_id(cut / block, 0), PRUNE_ROWS_PER_STEP],
            )?;
            more |= n as i64 == PRUNE_ROWS_PER_STEP;
        }
        if raw_cut > 0 {
            conn.execute("DELETE FROM open_chunks WHERE start_ms < ?1", [raw_cut])?;
            conn.execute("DELETE FROM rollup_dirty WHERE hour_ms < ?1", [raw_cut])?;
        }
        tx.commit()?;
        Ok(more)
    }
}

/// Samples of the hour starting at `hour` for series ids in `[from_sid, to_sid)`, per series,
/// in time order, from sealed chunks.
fn hour_samples(
    conn: &Connection,
    hour: i64,
    from_sid: i64,
    to_sid: i64,
    c: &WriterCounters,
) -> rusqlite::Result<BTreeMap<i64, Vec<(i64, f64)>>> {
    let mut out: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
    let mut st = conn.prepare_cached("SELECT id, data FROM chunks WHERE id >= ?1 AND id < ?2")?;
    let w0 = window_of(hour);
    for w in w0..w0 + HOUR_MS / RAW_WINDOW_MS {
        let mut rows = st.query(params![row_id(w, from_sid), row_id(w, to_sid)])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let blob = r.get_ref(1)?.as_blob()?;
            let v = out.entry(split_id(id).1).or_default();
            if chunk::decode_each(blob, |t, x| v.push((t, x))).is_err() {
                c.bad_blobs.fetch_add(1, Relaxed);
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    Ok(out)
}

/// Computes one series' buckets of one hour and writes them into its 1m and 1h blocks,
/// replacing what was there for that hour.
fn roll_series(
    conn: &Connection,
    hour: i64,
    sid: i64,
    samples: &[(i64, f64)],
    c: &WriterCounters,
) -> rusqlite::Result<()> {
    let mut scratch = Vec::new();
    let mut minutes: [Option<Bucket>; 60] = [None; 60];
    let mut vals = Vec::with_capacity(64);
    let mut i = 0;
    while i < samples.len() {
        let m = (samples[i].0 - hour) / 60_000;
        vals.clear();
        while i < samples.len() && (samples[i].0 - hour) / 60_000 == m {
            vals.push(samples[i].1);
            i += 1;
        }
        if let Some(slot) = usize::try_from(m).ok().and_then(|m| minutes.get_mut(m)) {
            *slot = Bucket::from_values(&vals, &mut scratch);
        }
    }
    let all: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let hour_bucket = Bucket::from_values(&all, &mut scratch);
    update_block(conn, Res::M1, hour, sid, &minutes, c)?;
    update_block(conn, Res::H1, hour, sid, &[hour_bucket], c)
}

/// Replaces the buckets starting at `start` in the block row of `res` holding them.
fn update_block(
    conn: &Connection,
    res: Res,
    start: i64,
    sid: i64,
    buckets: &[Option<Bucket>],
    c: &WriterCounters,
) -> rusqlite::Result<()> {
    let block_start = floor_to(start, res.block_ms());
    let id = row_id(block_start / res.block_ms(), sid);
    let table = res.table();
    let old: Option<Vec<u8>> = conn
        .prepare_cached(&format!("SELECT data FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let mut block = match old.map(|b| Block::decode(&b, res.slots())) {
        None => Block::empty(res.slots()),
        Some(Ok(b)) => b,
        Some(Err(_)) => {
            c.bad_blobs.fetch_add(1, Relaxed);
            Block::empty(res.slots())
        }
    };
    let first = usize::try_from((start - block_start) / res.bucket_ms()).unwrap_or(0);
    for (k, b) in buckets.iter().enumerate() {
        if let Some(slot) = block.slots.get_mut(first + k) {
            *slot = *b;
        }
    }
    if block.is_empty() {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?
            .execute([id])?;
    } else {
        conn.prepare_cached(&format!(
            "INSERT OR REPLACE INTO {table} (id, data) VALUES (?1, ?2)"
        ))?
        .execute(params![id, block.encode()])?;
    }
    Ok(())
}
