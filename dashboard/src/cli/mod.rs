//! `meshmon query ...` from already-parsed arguments: runs the query and renders the rows
//! exactly as INTERFACE.md specifies, as an aligned table, a JSON array of objects (numbers as
//! numbers, times as RFC 3339 strings, missing values as null) or CSV with a header row.
//!
//! Argument parsing (clap) lives in the `meshmon` binary; this module takes strings for times
//! (RFC 3339 or a duration ago), selectors and steps, and reports bad ones as
//! [`StoreError::BadArgument`]. It also turns the writer's status file into a warning, so a
//! store that cannot be written right now is visible in every query.
//!
//! Fresh data: before reading the file, each query asks the node that writes it (if one is
//! running) for its head, the data it has not flushed yet ([`crate::head`]), and merges it,
//! so results include what the node received up to about a second ago. No node answering
//! (stopped, or `--db` on a copy) means the file alone, with no wait; a node that answers
//! badly gives a warning and the file alone.
//!
//! Layout: the queries here; `render` turns rows into the three formats.

use crate::error::StoreError;
use crate::head::client::{Fetched, fetch};
use crate::head::{HEAD_VERSION, HeadRequest};
use crate::reader::{Reader, check_metric_names, selector_text};
use crate::time::{format_rfc3339, parse_time_arg};
use crate::writer::read_status;
use meshmon_proto::Selector;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

mod render;
use render::{csv_line, json_object};
pub use render::{fmt_num, render};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON array of objects.
    Json,
    /// CSV with a header row.
    Csv,
}

impl FromStr for Format {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Format, StoreError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(StoreError::BadArgument(format!(
                "'{s}' is not a format (expected table, json or csv)"
            ))),
        }
    }
}

/// Where and how to query.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The store file.
    pub db: &'a Path,
    /// Output format.
    pub format: Format,
    /// Now, ms since the epoch (durations ago count back from it; hosts' up/down uses it).
    pub now_ms: i64,
}

/// A rendered result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The rows, for stdout.
    pub text: String,
    /// A problem to show on stderr (the writer cannot write the store right now).
    pub warning: Option<String>,
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Str(String),
    /// An integer.
    Int(i64),
    /// A number (NaN and infinities are null in JSON).
    Num(f64),
    /// A time, ms since the epoch (RFC 3339 UTC in every format).
    Time(i64),
    /// A list of strings (a JSON array; comma-joined otherwise).
    List(Vec<String>),
    /// Missing.
    Null,
}

/// The columns of `meshmon query hosts`, from the store or (on a node without the dashboard
/// role) from the node's live view.
pub const HOST_COLUMNS: [&str; 9] = [
    "host",
    "status",
    "last_seen",
    "hops",
    "version",
    "os",
    "uptime_s",
    "tags",
    "clock_offset_ms",
];

impl Query<'_> {
    /// The store, with the running node's head merged in when `head` is asked for; the
    /// second value is a warning when the head was wanted but could not be had.
    pub(crate) fn open(
        &self,
        head: Option<HeadRequest>,
    ) -> Result<(Reader, Option<String>), StoreError> {
        // The head first, then the file: what the head held is then in one or the other.
        let fetched = head.map(|req| fetch(self.db, &req));
        let reader = Reader::open(self.db)?;
        Ok(match fetched {
            None | Some(Fetched::NotRunning) => (reader, None),
            Some(Fetched::Head(h)) => {
                let warn = h.truncated.then(|| {
                    "the node's unwritten data is larger than a reply may be; some of the \
                     newest data may be missing here"
                        .to_owned()
                });
                (reader.with_head(h), warn)
            }
            Some(Fetched::Failed(e)) => (
                reader,
                Some(format!(
                    "cannot get the newest data from the running node ({e}); showing the \
                     store file only, which lags by up to store.flush_interval"
                )),
            ),
        })
    }

    /// A head request for `[since, until]`.
    pub(crate) fn head(
        &self,
        host: Option<&str>,
        names: Vec<String>,
        since: i64,
        until: i64,
    ) -> HeadRequest {
        HeadRequest {
            version: HEAD_VERSION,
            host: host.map(str::to_owned),
            keys: host.is_some(),
            names,
            since_ms: since,
            until_ms: until,
            ..HeadRequest::default()
        }
    }

    fn done(&self, headers: &[&str], rows: &[Vec<Cell>], head_warning: Option<String>) -> Output {
        Output {
            text: render(self.format, headers, rows),
            warning: self.warning(head_warning),
        }
    }

    fn warning(&self, head_warning: Option<String>) -> Option<String> {
        match (store_warning(self.db), head_warning) {
            (Some(a), Some(b)) => Some(format!("{a}\nmeshmon: {b}")),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn time(&self, arg: Option<&str>, default: i64) -> Result<i64, StoreError> {
        arg.map_or(Ok(default), |s| {
            parse_time_arg(s, self.now_ms).map_err(StoreError::BadArgument)
        })
    }

    /// `meshmon query hosts`: `host, status, last_seen, hops, version, os, uptime_s, tags,
    /// clock_offset_ms` (the host's last published `host.clock_offset_ms` in the 5 minutes
    /// before it was last heard; null when it published none).
    pub fn hosts(&self) -> Result<Output, StoreError> {
        let offset_sel = Selector {
            name: meshmon_proto::metrics::Metric::HostClockOffsetMs
                .name()
                .to_owned(),
            labels: Vec::new(),
        };
        // The head's host sightings, and its recent clock offsets (the column below).
        let (reader, warn) = self.open(Some(HeadRequest {
            version: HEAD_VERSION,
            hosts: true,
            names: vec![offset_sel.name.clone()],
            since_ms: self.now_ms.saturating_sub(5 * 60_000),
            until_ms: self.now_ms,
            ..HeadRequest::default()
        }))?;
        let rows: Vec<Vec<Cell>> = reader
            .hosts(self.now_ms)?
            .into_iter()
            .map(|h| {
                let offset = reader
                    .stats(
                        &h.host,
                        std::slice::from_ref(&offset_sel),
                        h.last_seen_ms.saturating_sub(5 * 60_000),
                        self.now_ms.max(h.last_seen_ms),
                    )
                    .ok()
                    .and_then(|v| v.into_iter().find_map(|(_, s)| s))
                    .map_or(Cell::Null, |s| Cell::Int(s.last as i64));
                vec![
                    Cell::Str(h.host),
                    Cell::Str(if h.up { "up" } else { "down" }.into()),
                    Cell::Time(h.last_seen_ms),
                    Cell::Int(i64::from(h.hops)),
                    opt_str(h.version),
                    opt_str(h.os),
                    h.uptime_s.map_or(Cell::Null, Cell::Int),
                    Cell::List(h.tags),
                    offset,
                ]
            })
            .collect();
        Ok(self.done(&HOST_COLUMNS, &rows, warn))
    }

    /// `meshmon query series`: `ts, value` of the one series `metric` selects (default range:
    /// the last hour; `step` such as `5m` averages per step).
    pub fn series(
        &self,
        host: &str,
        metric: &str,
        since: Option<&str>,
        until: Option<&str>,
        step: Option<&str>,
    ) -> Result<Output, StoreError> {
        let sel = Selector::parse(metric).map_err(StoreError::BadArgument)?;
        let since = self.time(since, self.now_ms - 3_600_000)?;
        let until = self.time(until, self.now_ms)?;
        let step = step
            .map(|s| meshmon_proto::units::parse_duration(s).map_err(StoreError::BadArgument))
            .transpose()?;
        let (reader, warn) = self.open(Some(self.head(
            Some(host),
            vec![sel.name.clone()],
            since,
            until,
        )))?;
        let mut found = reader.series(host, &sel, since, until, step)?;
        if found.len() > 1 {
            let names: Vec<String> = found.iter().take(10).map(|s| s.key.to_string()).collect();
            return Err(StoreError::BadArgument(format!(
                "'{}' matches {} series of '{host}' ({}); add labels to pick one",
                selector_text(&sel),
                found.len(),
                names.join(", ")
            )));
        }
        let rows: Vec<Vec<Cell>> = found
            .pop()
            .map(|s| s.points)
            .unwrap_or_default()
            .into_iter()
            .map(|(t, v)| vec![Cell::Time(t), Cell::Num(v)])
            .collect();
        Ok(self.done(&["ts", "value"], &rows, warn))
    }

    /// `meshmon query stats`: `metric, count, min, max, avg, p95, last` per selected series
    /// (every series of the host when `metrics` is empty; default range: the last hour).
    pub fn stats(
        &self,
        host: &str,
        metrics: &[String],
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Output, StoreError> {
        let sels = metrics
            .iter()
            .map(|m| Selector::parse(m).map_err(StoreError::BadArgument))
            .collect::<Result<Vec<_>, _>>()?;
        let since = self.time(since, self.now_ms - 3_600_000)?;
        let until = self.time(until, self.now_ms)?;
        let names = sels.iter().map(|s| s.name.clone()).collect();
        let (reader, warn) = self.open(Some(self.head(Some(host), names, since, until)))?;
        let rows: Vec<Vec<Cell>> = reader
            .stats(host, &sels, since, until)?
            .into_iter()
            .map(|(key, st)| {
                let mut row = vec![Cell::Str(key.to_string())];
                match st {
                    Some(s) => row.extend([
                        Cell::Int(i64::try_from(s.count).unwrap_or(i64::MAX)),
                        Cell::Num(s.min),
                        Cell::Num(s.max),
                        Cell::Num(s.avg),
                        Cell::Num(s.p95),
                        Cell::Num(s.last),
                    ]),
                    None => row.extend([
                        Cell::Int(0),
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                    ]),
                }
                row
            })
            .collect();
        Ok(self.done(
            &["metric", "count", "min", "max", "avg", "p95", "last"],
            &rows,
            warn,
        ))
    }

    /// `meshmon query alerts`: `id, rule, host, state, severity, started, ended, value, acked,
    /// maintenance` of active alerts (all with `all`), started or ended since `since` when given.
    pub fn alerts(&self, all: bool, since: Option<&str>) -> Result<Output, StoreError> {
        let since = since
            .map(|s| parse_time_arg(s, self.now_ms).map_err(StoreError::BadArgument))
            .transpose()?;
        // The alert thread writes alert rows as they change: the file is current.
        let (reader, warn) = self.open(None)?;
        let rows: Vec<Vec<Cell>> = reader
            .alerts(all, since)?
            .into_iter()
            .map(|a| {
                vec![
                    Cell::Int(a.id),
                    Cell::Str(a.rule),
                    Cell::Str(a.host),
                    Cell::Str(a.state),
                    Cell::Str(a.severity),
                    Cell::Time(a.started_ms),
                    a.ended_ms.map_or(Cell::Null, Cell::Time),
                    a.value.map_or(Cell::Null, Cell::Num),
                    Cell::Str(if a.acked { "true" } else { "false" }.into()),
                    Cell::Str(if a.maintenance { "true" } else { "false" }.into()),
                ]
            })
            .collect();
        let headers = [
            "id",
            "rule",
            "host",
            "state",
            "severity",
            "started",
            "ended",
            "value",
            "acked",
            "maintenance",
        ];
        Ok(self.done(&headers, &rows, warn))
    }

    /// `meshmon query checks`: `check, host, up, status, latency_ms, cert_days_left,
    /// uptime_pct, down_from, vantages`, one row per check and vantage host with data in the
    /// range (default: the last hour). `down_from` of `vantages` hosts see the check down now
    /// (the same on every row of a check); the table format adds one summary line per check.
    pub fn checks(&self, since: Option<&str>, until: Option<&str>) -> Result<Output, StoreError> {
        let since = self.time(since, self.now_ms - 3_600_000)?;
        let until = self.time(until, self.now_ms)?;
        let (reader, warn) =
            self.open(Some(self.head(None, check_metric_names(), since, until)))?;
        let found = reader.checks(since, until)?;
        let mut per_check: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for r in &found {
            let e = per_check.entry(r.check.as_str()).or_default();
            e.0 += i64::from(r.up == Some(false));
            e.1 += 1;
        }
        let rows: Vec<Vec<Cell>> = found
            .iter()
            .map(|r| {
                let (down, of) = per_check.get(r.check.as_str()).copied().unwrap_or_default();
                vec![
                    Cell::Str(r.check.clone()),
                    Cell::Str(r.host.clone()),
                    r.up.map_or(Cell::Null, |u| {
                        Cell::Str(if u { "up" } else { "down" }.into())
                    }),
                    r.status.map_or(Cell::Null, Cell::Num),
                    r.latency_ms.map_or(Cell::Null, Cell::Num),
                    r.cert_days_left.map_or(Cell::Null, Cell::Num),
                    r.uptime_pct.map_or(Cell::Null, Cell::Num),
                    Cell::Int(down),
                    Cell::Int(of),
                ]
            })
            .collect();
        let headers = [
            "check",
            "host",
            "up",
            "status",
            "latency_ms",
            "cert_days_left",
            "uptime_pct",
            "down_from",
            "vantages",
        ];
        let mut out = self.done(&headers, &rows, warn);
        if self.format == Format::Table && !per_check.is_empty() {
            out.text.push('\n');
            for (check, (down, of)) in per_check {
                let state = if down == 0 { "up" } else { "DOWN" };
                out.text += &format!("{check}: {state}, down from {down} of {of} nodes\n");
            }
        }
        Ok(out)
    }

    /// `meshmon query export`: `metric, ts, value` of every series of `host` (default: all
    /// time), streamed to `out` as CSV or JSON. Returns the store warning, if any.
    pub fn export(
        &self,
        host: &str,
        since: Option<&str>,
        until: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<Option<String>, StoreError> {
        if self.format == Format::Table {
            return Err(StoreError::BadArgument(
                "export writes csv or json (use --format csv or --format json)".into(),
            ));
        }
        let since = self.time(since, 0)?;
        let until = self.time(until, self.now_ms)?;
        let (reader, warn) = self.open(Some(self.head(Some(host), Vec::new(), since, until)))?;
        let json = self.format == Format::Json;
        out.write_all(if json { b"[" } else { b"metric,ts,value\n" })?;
        let mut first = true;
        reader.export(host, since, until, |key, points| {
            let name = key.to_string();
            for &(t, v) in points {
                let row = [Cell::Str(name.clone()), Cell::Time(t), Cell::Num(v)];
                if json {
                    let sep = if first { "\n" } else { ",\n" };
                    write!(
                        out,
                        "{sep}{}",
                        json_object(&["metric", "ts", "value"], &row)
                    )?;
                } else {
                    writeln!(out, "{}", csv_line(&row))?;
                }
                first = false;
            }
            Ok(())
        })?;
        if json {
            out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
        }
        Ok(self.warning(warn))
    }
}

fn opt_str(s: String) -> Cell {
    if s.is_empty() {
        Cell::Null
    } else {
        Cell::Str(s)
    }
}

/// The writer's current error as a warning line, from the store's status file.
pub fn store_warning(db: &Path) -> Option<String> {
    let st = read_status(db)?;
    if st.state != "error" {
        return None;
    }
    let since = st
        .error_since_ms
        .map(|t| format!(" since {}", format_rfc3339(t)))
        .unwrap_or_default();
    Some(format!(
        "store error{since}: {}; the agent keeps new samples in memory and retries, so the \
         newest data may be missing here",
        st.error.unwrap_or_else(|| "unknown".into())
    ))
}
