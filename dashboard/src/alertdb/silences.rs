//! Silences and one-off maintenance windows (`silences`): listing, merging the other
//! dashboard nodes' versions, adding and ending them.

use super::AlertDb;
use crate::StoreError;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::borrow::BorrowMut;

/// A silence, as persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    /// Row id (local; `meshmon alerts unsilence ID` takes it).
    pub id: i64,
    /// Mesh-wide id.
    pub ident: String,
    /// Glob on rule names.
    pub rule: String,
    /// Glob on host names.
    pub host: String,
    pub created_ms: i64,
    pub until_ms: i64,
    pub by: String,
    pub removed: bool,
    /// Version: the larger wins when two nodes disagree.
    pub updated_ms: i64,
    /// A one-off maintenance window (`meshmon alerts maintenance`) rather than a silence.
    pub maintenance: bool,
}

/// A silence to add ([`AlertDb::add_silence`]).
pub struct NewSilence<'a> {
    /// This node's name (part of the ident).
    pub node: &'a str,
    /// A random number (part of the ident).
    pub nonce: u32,
    pub rule: &'a str,
    pub host: &'a str,
    pub until_ms: i64,
    /// Who or why.
    pub by: &'a str,
    /// A one-off maintenance window rather than a silence.
    pub maintenance: bool,
}

fn silence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SilenceRow> {
    Ok(SilenceRow {
        id: r.get(0)?,
        ident: r.get(1)?,
        rule: r.get(2)?,
        host: r.get(3)?,
        created_ms: r.get(4)?,
        until_ms: r.get(5)?,
        by: r.get(6)?,
        removed: r.get(7)?,
        updated_ms: r.get(8)?,
        maintenance: r.get(9)?,
    })
}

const SILENCE_COLS: &str =
    "id, ident, rule, host, created_ms, until_ms, by, removed, updated_ms, maintenance";

impl<C: BorrowMut<Connection>> AlertDb<C> {
    /// Silences; only those still in force at `now_ms` unless `all`.
    pub fn silences(&self, all: bool, now_ms: i64) -> Result<Vec<SilenceRow>, StoreError> {
        let sql = format!(
            "SELECT {SILENCE_COLS} FROM silences
             WHERE ?1 OR (removed = 0 AND until_ms > ?2) ORDER BY id"
        );
        let mut st = self.c().prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![all, now_ms], silence_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Silences changed after `since_ms` (to tell other dashboard nodes).
    pub fn silences_updated_since(&self, since_ms: i64) -> Result<Vec<SilenceRow>, StoreError> {
        let sql = format!("SELECT {SILENCE_COLS} FROM silences WHERE updated_ms >= ?1 ORDER BY id");
        let mut st = self.c().prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([since_ms], silence_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Stores `s` unless a version at least as new is there; returns whether it changed.
    pub fn merge_silence(&self, s: &SilenceRow) -> Result<bool, StoreError> {
        let n = self
            .c()
            .prepare_cached(
                "INSERT INTO silences (ident, rule, host, created_ms, until_ms, by, removed,
                     updated_ms, maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (ident) DO UPDATE SET rule = excluded.rule, host = excluded.host,
                     until_ms = excluded.until_ms, by = excluded.by, removed = excluded.removed,
                     updated_ms = excluded.updated_ms, maintenance = excluded.maintenance
                 WHERE excluded.updated_ms > silences.updated_ms",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.ident,
                    s.rule,
                    s.host,
                    s.created_ms,
                    s.until_ms,
                    s.by,
                    s.removed,
                    s.updated_ms,
                    s.maintenance
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Adds a silence of `rule` and `host` (globs) until `until_ms`, as `meshmon alerts
    /// silence` and the web dashboard do; its ident is `node-now-nonce` (unique across
    /// dashboard nodes). Returns it with its id.
    pub fn add_silence(&self, new: NewSilence<'_>, now_ms: i64) -> Result<SilenceRow, StoreError> {
        let mut s = SilenceRow {
            id: 0,
            ident: format!("{}-{now_ms}-{:08x}", new.node, new.nonce),
            rule: new.rule.to_owned(),
            host: new.host.to_owned(),
            created_ms: now_ms,
            until_ms: new.until_ms,
            by: new.by.to_owned(),
            removed: false,
            updated_ms: now_ms,
            maintenance: new.maintenance,
        };
        self.merge_silence(&s)?;
        s.id = self
            .silences(true, now_ms)?
            .into_iter()
            .find(|r| r.ident == s.ident)
            .map_or(0, |r| r.id);
        Ok(s)
    }

    /// Ends silence `id` now; returns it (`None` if there is no such silence).
    pub fn remove_silence(&self, id: i64, now_ms: i64) -> Result<Option<SilenceRow>, StoreError> {
        self.c()
            .prepare_cached(
                "UPDATE silences SET removed = 1, updated_ms = max(updated_ms + 1, ?2)
                 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, now_ms]))
            .map_err(|e| self.err(e))?;
        let sql = format!("SELECT {SILENCE_COLS} FROM silences WHERE id = ?1");
        self.c()
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([id], silence_row).optional())
            .map_err(|e| self.err(e))
    }
}
