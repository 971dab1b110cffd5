//! The alert tables of a store: alert episodes (`alerts`), the notification outbox
//! (`alert_outbox`) and silences (`silences`), behind [`AlertDb`], a read-write connection of
//! its own. It is owned by one thread at a time: the alert engine's thread in a running
//! dashboard node, or a `meshmon alerts ...` command. SQLite's locking (WAL, busy timeout)
//! orders their short transactions with the store writer's.
//!
//! Not here: deciding when an alert fires (the agent's alert engine) or delivering
//! notifications (the agent's notifier); this module only persists them.
//!
//! Layout: this file holds the alerts and the outbox; `silences` the silences and one-off
//! maintenance windows.

use crate::StoreError;
use crate::schema::open_writer;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::borrow::BorrowMut;
use std::path::{Path, PathBuf};

mod silences;
pub use silences::{NewSilence, SilenceRow};

/// One alert episode, as persisted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertRecord {
    /// Row id (local to this store; `meshmon alerts ack ID` takes it).
    pub id: i64,
    /// Mesh-wide identity: the same episode has the same `ident` on every dashboard node.
    pub ident: String,
    pub rule: String,
    pub host: String,
    /// The series, as a selector string (`disk.used_pct{mount="/"}`); "" for host-down.
    pub series: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub severity: String,
    /// When the condition started to hold (ms since the epoch).
    pub started_ms: i64,
    /// When it fired.
    pub fired_ms: Option<i64>,
    /// When it resolved.
    pub ended_ms: Option<i64>,
    /// The latest value seen.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Reminders sent so far.
    pub reminders: i64,
    pub acked: bool,
    /// A maintenance window held its notifications: the firing is not sent yet (or, once
    /// resolved, never was).
    #[serde(default)]
    pub maintenance: bool,
}

/// One notification waiting in (or done with) the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    /// Mesh-wide notification id: `<alert ident>:<event>#<target label>`.
    pub notification: String,
    /// The target's label (`slack`, `webhook-<hash>`).
    pub target: String,
    /// The JSON body to POST.
    pub body: String,
    pub created_ms: i64,
    /// `queued`, `sent`, `sent_elsewhere`, `silenced`, `expired`.
    pub state: String,
    pub attempts: i64,
    /// The group it went out in (the first member's notification id), if grouped.
    pub group: Option<String>,
}

/// Read-write access to the alert tables.
pub struct AlertDb<C: BorrowMut<Connection> = Connection> {
    conn: C,
    path: PathBuf,
}

const ALERT_COLS: &str = "id, ident, rule, host, series, state, severity, started_ms, fired_ms,
     ended_ms, value, threshold, reminders, acked, maintenance";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: r.get(0)?,
        ident: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        rule: r.get(2)?,
        host: r.get(3)?,
        series: r.get(4)?,
        state: r.get(5)?,
        severity: r.get(6)?,
        started_ms: r.get(7)?,
        fired_ms: r.get(8)?,
        ended_ms: r.get(9)?,
        value: r.get(10)?,
        threshold: r.get(11)?,
        reminders: r.get(12)?,
        acked: r.get(13)?,
        maintenance: r.get(14)?,
    })
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        notification: r.get(1)?,
        target: r.get(2)?,
        body: r.get(3)?,
        created_ms: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        group: r.get(7)?,
    })
}

impl AlertDb {
    /// Opens (creating and migrating if needed) the store at `path`: for tools and other
    /// processes (`meshmon alerts`, the TUI). A node works on its store writer's connection
    /// instead ([`AlertDb::on`]), so the file has one writer.
    pub fn open(path: &Path) -> Result<AlertDb, StoreError> {
        Ok(AlertDb {
            conn: open_writer(path)?,
            path: path.to_path_buf(),
        })
    }
}

impl<'c> AlertDb<&'c mut Connection> {
    /// The alert tables on a connection someone else owns (the store writer's).
    pub fn on(conn: &'c mut Connection, path: &Path) -> AlertDb<&'c mut Connection> {
        AlertDb {
            conn,
            path: path.to_path_buf(),
        }
    }
}

impl<C: BorrowMut<Connection>> AlertDb<C> {
    fn c(&self) -> &Connection {
        self.conn.borrow()
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    /// Runs `f` in one transaction (committed when it returns `Ok`).
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&AlertDb<C>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.c()
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        match f(self) {
            Ok(v) => {
                self.c()
                    .execute_batch("COMMIT")
                    .map_err(|e| StoreError::sqlite(&self.path, e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.c().execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Pending and firing alerts (the engine's state after a restart).
    pub fn active(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE state != 'resolved' ORDER BY id");
        let mut st = self.c().prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], alert_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The alert with row id `id`.
    pub fn get(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?1");
        self.c()
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([id], alert_row).optional())
            .map_err(|e| self.err(e))
    }

    /// The episode with mesh-wide identity `ident`.
    pub fn by_ident(&self, ident: &str) -> Result<Option<AlertRecord>, StoreError> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE ident = ?1");
        self.c()
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([ident], alert_row).optional())
            .map_err(|e| self.err(e))
    }

    /// Inserts or updates the episode `rec.ident` (the row id of `rec` is ignored); returns
    /// its row id. `acked` is never cleared here (only set).
    pub fn upsert(&self, rec: &AlertRecord) -> Result<i64, StoreError> {
        self.c()
            .prepare_cached(
                "INSERT INTO alerts (ident, rule, host, series, state, severity, started_ms,
                     fired_ms, ended_ms, value, threshold, reminders, acked, maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (ident) DO UPDATE SET state = excluded.state,
                     severity = excluded.severity, fired_ms = excluded.fired_ms,
                     ended_ms = excluded.ended_ms, value = excluded.value,
                     threshold = excluded.threshold, reminders = excluded.reminders,
                     acked = max(acked, excluded.acked), maintenance = excluded.maintenance
                 RETURNING id",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![
                        rec.ident,
                        rec.rule,
                        rec.host,
                        rec.series,
                        rec.state,
                        rec.severity,
                        rec.started_ms,
                        rec.fired_ms,
                        rec.ended_ms,
                        rec.value,
                        rec.threshold,
                        rec.reminders,
                        rec.acked,
                        rec.maintenance
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(|e| self.err(e))
    }

    /// Forgets a pending episode that never fired.
    pub fn delete_pending(&self, ident: &str) -> Result<(), StoreError> {
        self.c()
            .prepare_cached("DELETE FROM alerts WHERE ident = ?1 AND state = 'pending'")
            .and_then(|mut st| st.execute([ident]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Acknowledges alert `id`; returns it (`None` if there is no such alert).
    pub fn ack(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        self.c()
            .prepare_cached("UPDATE alerts SET acked = 1 WHERE id = ?1")
            .and_then(|mut st| st.execute([id]))
            .map_err(|e| self.err(e))?;
        self.get(id)
    }

    /// Acknowledges the episodes with these identities (from another dashboard node).
    pub fn ack_idents(&self, idents: &[String]) -> Result<usize, StoreError> {
        let mut st = self
            .c()
            .prepare_cached("UPDATE alerts SET acked = 1 WHERE ident = ?1 AND acked = 0")
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for i in idents {
            n += st.execute([i]).map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Identities of acknowledged alerts that are still active.
    pub fn acked_active(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .c()
            .prepare_cached(
                "SELECT ident FROM alerts WHERE acked = 1 AND state != 'resolved'
                 AND ident IS NOT NULL ORDER BY id DESC LIMIT 1000",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Queues a notification unless one with the same id exists; returns whether it was new.
    pub fn enqueue(
        &self,
        notification: &str,
        target: &str,
        body: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .c()
            .prepare_cached(
                "INSERT INTO alert_outbox (notification, target, body, created_ms, state, done_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?5 = 'queued' THEN NULL ELSE ?4 END)
                 ON CONFLICT (notification) DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![notification, target, body, now_ms, state]))
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Marks queued `notifications` as going out together in `group`.
    pub fn set_group(&self, group: &str, notifications: &[String]) -> Result<(), StoreError> {
        let mut st = self
            .c()
            .prepare_cached(
                "UPDATE alert_outbox SET grp = ?1 WHERE notification = ?2 AND state = 'queued'",
            )
            .map_err(|e| self.err(e))?;
        for n in notifications {
            st.execute(params![group, n]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Queued notifications, oldest first.
    pub fn queued(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut st = self
            .c()
            .prepare_cached(
                "SELECT id, notification, target, body, created_ms, state, attempts, grp
                 FROM alert_outbox WHERE state = 'queued' ORDER BY id LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([limit as i64], outbox_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Ends a queued notification in `state` (`sent`, `sent_elsewhere`, `silenced`,
    /// `expired`); returns whether it was still queued.
    pub fn finish(
        &self,
        notification: &str,
        state: &str,
        now_ms: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self
            .c()
            .prepare_cached(
                "UPDATE alert_outbox SET state = ?2, done_ms = ?3, error = coalesce(?4, error)
                 WHERE notification = ?1 AND state = 'queued'",
            )
            .and_then(|mut st| st.execute(params![notification, state, now_ms, error]))
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Records a failed attempt.
    pub fn attempt_failed(&self, notification: &str, error: &str) -> Result<(), StoreError> {
        self.c()
            .prepare_cached(
                "UPDATE alert_outbox SET attempts = attempts + 1, error = ?2
                 WHERE notification = ?1",
            )
            .and_then(|mut st| st.execute(params![notification, error]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Notifications this node delivered since `since_ms` (newest first, at most `limit`).
    pub fn sent_since(&self, since_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .c()
            .prepare_cached(
                "SELECT notification FROM alert_outbox WHERE state = 'sent' AND done_ms >= ?1
                 ORDER BY done_ms DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![since_ms, limit as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every outbox row, oldest first (tests, `meshmon alerts outbox`).
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let mut st = self
            .c()
            .prepare_cached(
                "SELECT id, notification, target, body, created_ms, state, attempts, grp
                 FROM alert_outbox ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], outbox_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Drops finished outbox rows and resolved alerts older than `before_ms`.
    pub fn prune(&self, before_ms: i64) -> Result<(), StoreError> {
        self.c()
            .execute(
                "DELETE FROM alert_outbox WHERE state != 'queued' AND done_ms < ?1",
                [before_ms],
            )
            .map_err(|e| self.err(e))?;
        self.c()
            .execute(
                "DELETE FROM silences WHERE until_ms < ?1 AND updated_ms < ?1",
                [before_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ident: &str, state: &str) -> AlertRecord {
        AlertRecord {
            id: 0,
            ident: ident.into(),
            rule: "cpu-hot".into(),
            host: "a".into(),
            series: "cpu.usage_pct".into(),
            state: state.into(),
            severity: "warning".into(),
            started_ms: 5,
            fired_ms: None,
            ended_ms: None,
            value: Some(95.0),
            threshold: Some(90.0),
            reminders: 0,
            acked: false,
            maintenance: false,
        }
    }

    #[test]
    fn episodes_upsert_by_identity_and_keep_acks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = AlertDb::open(&dir.path().join("m.db")).expect("open");
        let id = db.upsert(&rec("x", "pending")).expect("insert");
        let mut r = rec("x", "firing");
        r.fired_ms = Some(9);
        assert_eq!(db.upsert(&r).expect("update"), id);
        assert!(db.ack(id).expect("ack").expect("row").acked);
        assert_eq!(db.by_ident("x").expect("by ident").map(|r| r.id), Some(id));
        r.state = "resolved".into();
        r.ended_ms = Some(20);
        db.upsert(&r).expect("resolve");
        let got = db.get(id).expect("get").expect("row");
        assert!(got.acked, "an upsert never clears an acknowledgement");
        assert_eq!(got.state, "resolved");
        assert!(db.active().expect("active").is_empty());
        db.upsert(&rec("y", "pending")).expect("pending");
        db.delete_pending("y").expect("delete");
        assert!(db.active().expect("active").is_empty());
    }

    #[test]
    fn outbox_is_idempotent_and_finishes_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = AlertDb::open(&dir.path().join("m.db")).expect("open");
        assert!(db.enqueue("n1", "slack", "{}", "queued", 1).expect("q"));
        assert!(!db.enqueue("n1", "slack", "{}", "queued", 2).expect("dup"));
        assert_eq!(db.queued(10).expect("queued").len(), 1);
        db.attempt_failed("n1", "http 500").expect("attempt");
        assert!(db.finish("n1", "sent", 3, None).expect("finish"));
        assert!(!db.finish("n1", "sent_elsewhere", 4, None).expect("again"));
        assert!(db.queued(10).expect("queued").is_empty());
        assert_eq!(db.sent_since(0, 10).expect("sent"), vec!["n1".to_owned()]);
        assert_eq!(db.outbox().expect("outbox")[0].attempts, 1);
    }

    #[test]
    fn silences_merge_by_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = AlertDb::open(&dir.path().join("m.db")).expect("open");
        let s = SilenceRow {
            id: 0,
            ident: "d-1".into(),
            rule: "*".into(),
            host: "web*".into(),
            created_ms: 10,
            until_ms: 1000,
            by: "ops".into(),
            removed: false,
            updated_ms: 10,
            maintenance: false,
        };
        assert!(db.merge_silence(&s).expect("new"));
        assert!(!db.merge_silence(&s).expect("same version"));
        assert_eq!(db.silences(false, 500).expect("list").len(), 1);
        assert!(db.silences(false, 1000).expect("ended").is_empty());
        let id = db.silences(true, 0).expect("all")[0].id;
        let removed = db.remove_silence(id, 20).expect("remove").expect("row");
        assert!(removed.removed && removed.updated_ms == 20);
        let mut old = s.clone();
        old.updated_ms = 15;
        assert!(
            !db.merge_silence(&old).expect("older"),
            "an older version loses"
        );
        assert!(db.silences(false, 500).expect("list").is_empty());
    }
}
