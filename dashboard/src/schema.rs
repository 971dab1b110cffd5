//! The SQLite schema, its migrations (`PRAGMA user_version`), and how connections are opened:
//! the writer's (read-write, WAL, created if missing) and readers' (read-only, busy timeout).
//!
//! Not responsible for what is written or queried ([`crate::writer`], [`crate::reader`]).
//!
//! # Tables (version 1)
//! - `meta(key, value)`: store-wide integers: `rollup_next_ms` (hours before it are rolled
//!   up), `raw_floor_ms`, `m1_floor_ms`, `h1_floor_ms` (data before them was pruned).
//! - `hosts`: one row per host (first/last seen, hops, host info).
//! - `series(id, host, name, labels)`: one row per series; `labels` is a JSON array of pairs.
//! - `chunks(id, data)`: sealed raw chunks, `id = window << 24 | series` ([`crate::layout`]).
//! - `open_chunks(series_id, start_ms, data)`: each series' open chunk as of the last flush.
//! - `rollup_1m(id, data)`, `rollup_1h(id, data)`: rollup blocks.
//! - `rollup_dirty(hour_ms, series_id)`: hours to roll up again after late samples.
//! - `alerts`: alert history (rows of `meshmon query alerts`).

use crate::error::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// `PRAGMA application_id` of a meshmon store ("MshM").
pub const APPLICATION_ID: i64 = 0x4d73_684d;
/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 5;
/// Page size of new stores: chunks of a few hundred bytes to a few KiB pack with little slack.
pub const PAGE_SIZE: u32 = 8192;
/// How long a reader (or a tool such as `meshmon alerts`) waits for a lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the node's store writer waits for a lock. Short: while it waits it takes no
/// messages, and its queue (8,192 messages, a few seconds of a large fleet) must not fill
/// while another process holds the file; it keeps samples in memory and retries instead.
pub const WRITER_BUSY_TIMEOUT: Duration = Duration::from_millis(500);

/// Migrations: entry `i` takes a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    hops INTEGER NOT NULL DEFAULT 0,
    version TEXT NOT NULL DEFAULT '',
    os TEXT NOT NULL DEFAULT '',
    kernel TEXT NOT NULL DEFAULT '',
    arch TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    interval_ms INTEGER NOT NULL DEFAULT 0,
    boot_time_s INTEGER NOT NULL DEFAULT 0,
    cores INTEGER NOT NULL DEFAULT 0,
    dashboard INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (host, name, labels)
);
CREATE TABLE chunks (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE open_chunks (
    series_id INTEGER PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE rollup_1m (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE rollup_1h (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE rollup_dirty (
    hour_ms INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, series_id)
) WITHOUT ROWID;
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    severity TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    value REAL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_started ON alerts (started_ms);
"#,
    // v2: how far the store holds each origin's live frame sequence, so a restarted dashboard
    // asks the mesh for exactly the rest (backfill).
    r#"
CREATE TABLE positions (
    host TEXT PRIMARY KEY,
    boot_id INTEGER NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // v3: alerting. Alert episodes carry a mesh-wide identity (`ident`), so every dashboard
    // node names the same episode the same way; the outbox keeps notifications until they are
    // delivered (a restart loses none); silences are exchanged between dashboard nodes.
    r#"
ALTER TABLE alerts ADD COLUMN ident TEXT;
ALTER TABLE alerts ADD COLUMN series TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN threshold REAL;
ALTER TABLE alerts ADD COLUMN fired_ms INTEGER;
ALTER TABLE alerts ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX alerts_ident ON alerts (ident);
CREATE INDEX alerts_state ON alerts (state);
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    notification TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'sent_elsewhere', 'silenced', 'expired')),
    attempts INTEGER NOT NULL DEFAULT 0,
    done_ms INTEGER,
    error TEXT
);
CREATE INDEX alert_outbox_state ON alert_outbox (state, id);
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    ident TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    host TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    by TEXT NOT NULL DEFAULT '',
    removed INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
);
"#,
    // v4: maintenance windows. A one-off window is a silence marked `maintenance` (exchanged
    // like one); an episode recorded while a window held its notifications is marked too.
    r#"
ALTER TABLE silences ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
"#,
    // v5: grouped notifications (a target's `group` window): the first's id, on every member.
    r#"
ALTER TABLE alert_outbox ADD COLUMN grp TEXT;
"#,
];

/// Opens (creating if needed) the store for writing and brings its schema up to date.
pub fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    open_writer_waiting(path, BUSY_TIMEOUT)
}

/// [`open_writer`], waiting at most `busy` for a lock on each statement.
pub fn open_writer_waiting(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let err = |e| StoreError::sqlite(path, e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: format!("cannot create directory '{}': {e}", dir.display()),
        })?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(busy).map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    check_identity(&conn, path, version)?;
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err)?;
        if tables > 0 {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "the file holds tables but no meshmon schema version".into(),
            });
        }
        // Only takes effect before the first table exists.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(err)?;
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: format!("cannot switch to WAL mode (journal mode is '{mode}')"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -32768;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(err)?;
    migrate(&conn, path, version)?;
    Ok(conn)
}

/// Refuses files that are not meshmon stores or are newer than this build.
fn check_identity(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| StoreError::sqlite(path, e))?;
    if app != 0 && app != APPLICATION_ID {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("application id {app:#x} is not meshmon's"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn migrate(conn: &Connection, path: &Path, from: i64) -> Result<(), StoreError> {
    let err = |e| StoreError::sqlite(path, e);
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let next = v as i64 + 1;
        // Two connections may open the same file at once (the store writer and the alert
        // engine): the version is read again under the write lock, so each step runs once.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let current: i64 = match conn.pragma_query_value(None, "user_version", |r| r.get(0)) {
            Ok(c) => c,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err(e));
            }
        };
        if current >= next {
            conn.execute_batch("COMMIT").map_err(err)?;
            continue;
        }
        let batch = format!(
            "{sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {next}; COMMIT;"
        );
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err(e));
        }
        tracing::info!(path = %path.display(), version = next, "store schema migrated");
    }
    Ok(())
}

/// Opens the store read-only (queries, the TUI) while the writer may be writing.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotFound(path.to_path_buf()));
    }
    let err = |e| StoreError::sqlite(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    check_identity(&conn, path, version)?;
    if version == 0 {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file has no meshmon schema (empty or not a store)".into(),
        });
    }
    Ok(conn)
}

/// Reads an integer from `meta`.
pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension as _;
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// Writes an integer to `meta`.
pub fn meta_set(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![key, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/m.db");
        let c = open_writer(&path).expect("create");
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
        let ps: i64 = c
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .expect("page size");
        assert_eq!(ps, i64::from(PAGE_SIZE));
        meta_set(&c, "x", 5).expect("set");
        drop(c);
        let c = open_writer(&path).expect("reopen");
        assert_eq!(meta_get(&c, "x").expect("get"), Some(5));
        let r = open_reader(&path).expect("reader");
        assert_eq!(meta_get(&r, "x").expect("get"), Some(5));
        assert!(
            r.execute("DELETE FROM meta", []).is_err(),
            "reader is read-only"
        );
    }

    #[test]
    fn refuses_foreign_and_newer_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.db");
        let c = Connection::open(&path).expect("open");
        c.execute_batch("PRAGMA application_id = 7; CREATE TABLE t(x);")
            .expect("foreign");
        drop(c);
        assert!(matches!(
            open_writer(&path),
            Err(StoreError::Corrupt { .. })
        ));
        let path = dir.path().join("newer.db");
        drop(open_writer(&path).expect("create"));
        let c = Connection::open(&path).expect("open");
        c.pragma_update(None, "user_version", 99).expect("bump");
        drop(c);
        assert!(matches!(
            open_writer(&path),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
        assert!(matches!(
            open_reader(&dir.path().join("none.db")),
            Err(StoreError::NotFound(_))
        ));
    }
}
