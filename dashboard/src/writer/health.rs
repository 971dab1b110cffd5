//! The writer's health: counters shared with its handle, the current error (logged once per
//! cause, not per attempt), and the status file beside the database that lets
//! `meshmon query` (another process) say "store error: ..." while the agent cannot write.
//!
//! The status file is `<db>-status`, a JSON object padded to [`STATUS_LEN`] bytes and always
//! rewritten in place, so updating it needs no new disk blocks even when the disk is full.
//! Not responsible for retrying (the writer loop) or for classifying errors ([`crate::error`]).

use crate::error::{Cause, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Size of the status file.
pub const STATUS_LEN: usize = 4096;

/// Counters updated by the writer thread (and by senders, for queue drops).
#[derive(Debug, Default)]
pub struct WriterCounters {
    /// Samples taken in.
    pub accepted: AtomicU64,
    /// Samples refused: older than the raw retention or too far in the future.
    pub refused: AtomicU64,
    /// Samples that arrived for a window already sealed (merged at the next flush).
    pub late: AtomicU64,
    /// Samples dropped because the ingest queue was full.
    pub dropped_queue: AtomicU64,
    /// Samples dropped because the unwritten backlog exceeded its cap (while the store could
    /// not be written).
    pub dropped_backlog: AtomicU64,
    /// Completed flushes.
    pub flushes: AtomicU64,
    /// Hours rolled up.
    pub rollups: AtomicU64,
    /// Blobs that failed to decode and were replaced or skipped.
    pub bad_blobs: AtomicU64,
}

/// The error state, behind a lock because it holds a `String`: written by the writer thread
/// when the cause changes, read (cloned) by `health()`; never held across I/O.
#[derive(Debug, Default, Clone)]
struct ErrorState {
    error: Option<(String, Cause)>,
    since_ms: Option<i64>,
    last_flush_ms: Option<i64>,
    backlog_bytes: u64,
    series: u64,
}

/// State shared between the writer thread and its handle.
#[derive(Debug, Default)]
pub struct Shared {
    /// Counters.
    pub counters: WriterCounters,
    state: Mutex<ErrorState>,
}

/// A snapshot of the writer's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterHealth {
    /// The current error (why nothing is being written), `None` while writing works.
    pub error: Option<String>,
    /// When the current error started, ms since the epoch.
    pub error_since_ms: Option<i64>,
    /// When the last complete flush ended.
    pub last_flush_ms: Option<i64>,
    /// Samples taken in.
    pub accepted: u64,
    /// Samples refused (older than retention, or from the future).
    pub refused: u64,
    /// Late samples merged into already written windows.
    pub late: u64,
    /// Samples dropped: ingest queue full.
    pub dropped_queue: u64,
    /// Samples dropped: unwritten backlog over its cap during an error.
    pub dropped_backlog: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Bytes of sealed chunks and late samples not yet written.
    pub backlog_bytes: u64,
    /// Series known.
    pub series: u64,
}

impl Shared {
    /// A snapshot.
    pub fn health(&self) -> WriterHealth {
        let st = self.state.lock().map(|g| g.clone()).unwrap_or_default();
        let c = &self.counters;
        WriterHealth {
            error: st.error.map(|(e, _)| e),
            error_since_ms: st.since_ms,
            last_flush_ms: st.last_flush_ms,
            accepted: c.accepted.load(Relaxed),
            refused: c.refused.load(Relaxed),
            late: c.late.load(Relaxed),
            dropped_queue: c.dropped_queue.load(Relaxed),
            dropped_backlog: c.dropped_backlog.load(Relaxed),
            flushes: c.flushes.load(Relaxed),
            backlog_bytes: st.backlog_bytes,
            series: st.series,
        }
    }

    /// Records a failure. Returns true when the cause is new (the caller logs it then).
    pub fn set_error(&self, e: &StoreError, now_ms: i64) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        let cause = e.cause();
        let new = st.error.as_ref().is_none_or(|(_, c)| *c != cause);
        if st.error.is_none() {
            st.since_ms = Some(now_ms);
        }
        st.error = Some((e.to_string(), cause));
        new
    }

    /// Clears the error. Returns the error that was cleared, if any.
    pub fn clear_error(&self) -> Option<String> {
        let mut st = self.state.lock().ok()?;
        st.since_ms = None;
        st.error.take().map(|(e, _)| e)
    }

    /// Updates the gauges.
    pub fn set_gauges(&self, backlog_bytes: usize, series: usize, flushed_at: Option<i64>) {
        if let Ok(mut st) = self.state.lock() {
            st.backlog_bytes = backlog_bytes as u64;
            st.series = series as u64;
            if flushed_at.is_some() {
                st.last_flush_ms = flushed_at;
            }
        }
    }
}

/// The status file of the store at `db`.
pub fn status_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-status");
    PathBuf::from(s)
}

/// Rewrites the status file in place; failures are only logged at debug level (the status
/// file is a courtesy to `meshmon query`, never a reason to stop).
pub fn write_status(db: &Path, h: &WriterHealth, state: &str, now_ms: i64) {
    use std::os::unix::fs::FileExt as _;
    let mut error = h.error.clone();
    if let Some(e) = &mut error {
        e.truncate(2048);
    }
    let doc = serde_json::json!({
        "state": state,
        "pid": std::process::id(),
        "updated_ms": now_ms,
        "error": error,
        "error_since_ms": h.error_since_ms,
        "last_flush_ms": h.last_flush_ms,
        "accepted": h.accepted,
        "dropped_queue": h.dropped_queue,
        "dropped_backlog": h.dropped_backlog,
        "backlog_bytes": h.backlog_bytes,
    });
    let mut buf = doc.to_string().into_bytes();
    buf.truncate(STATUS_LEN - 1);
    buf.resize(STATUS_LEN - 1, b' ');
    buf.push(b'\n');
    let path = status_path(db);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .and_then(|f| f.write_all_at(&buf, 0));
    if let Err(error) = res {
        tracing::debug!(path = %path.display(), %error, "cannot update the store status file");
    }
}

/// What the status file says, for `meshmon query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFile {
    /// `ok`, `error` or `stopped`.
    pub state: String,
    /// The writer's error, if any.
    pub error: Option<String>,
    /// Since when.
    pub error_since_ms: Option<i64>,
    /// When the file was last written.
    pub updated_ms: i64,
}

/// Reads the status file of the store at `db`; `None` when absent or unreadable.
pub fn read_status(db: &Path) -> Option<StatusFile> {
    let text = std::fs::read_to_string(status_path(db)).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    Some(StatusFile {
        state: v.get("state")?.as_str()?.to_owned(),
        error: v.get("error").and_then(|e| e.as_str()).map(str::to_owned),
        error_since_ms: v.get("error_since_ms").and_then(serde_json::Value::as_i64),
        updated_ms: v.get("updated_ms").and_then(serde_json::Value::as_i64)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_new_once_per_cause_and_status_round_trips() {
        let s = Shared::default();
        let full = StoreError::Full("/x".into());
        assert!(s.set_error(&full, 5));
        assert!(!s.set_error(&full, 6), "same cause again is not new");
        let ro = StoreError::ReadOnly {
            path: "/x".into(),
            detail: "no".into(),
        };
        assert!(s.set_error(&ro, 7));
        let h = s.health();
        assert_eq!(h.error_since_ms, Some(5));
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("m.db");
        write_status(&db, &h, "error", 9);
        let st = read_status(&db).expect("status");
        assert_eq!(st.state, "error");
        assert_eq!(st.error, h.error);
        assert_eq!(
            std::fs::metadata(status_path(&db)).expect("meta").len(),
            4096
        );
        assert!(s.clear_error().is_some());
        write_status(&db, &s.health(), "ok", 10);
        assert_eq!(read_status(&db).map(|s| s.error), Some(None));
    }
}
