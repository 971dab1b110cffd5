//! The rows of `meshmon query checks`: per HTTP check and vantage host (the host that runs the
//! check), its latest values and its uptime over a range, from the `check.*` series.
//!
//! Not here: the up/down decision (made by the node that runs the check) or output formats.

use super::{Pref, Reader};
use crate::agg::{Stats, StatsAcc};
use crate::error::StoreError;
use crate::layout::Res;
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::collections::BTreeMap;

/// The metrics read, in this order.
const METRICS: [Metric; 4] = [
    Metric::CheckUp,
    Metric::CheckStatus,
    Metric::CheckLatencyMs,
    Metric::CheckCertDaysLeft,
];

/// The metric names `meshmon query checks` reads.
pub fn check_metric_names() -> Vec<String> {
    METRICS.iter().map(|m| m.name().to_owned()).collect()
}

/// Ranges longer than this read one-minute rollups wherever they exist (raw otherwise).
const ROLLUP_ABOVE_MS: i64 = 24 * 3_600_000;

/// One check as seen from one vantage host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckRow {
    /// The check's name (its `check` label).
    pub check: String,
    /// The host that runs it.
    pub host: String,
    /// The last `check.up` in the range (`None`: not decided yet, or no data).
    pub up: Option<bool>,
    /// The last HTTP status in the range.
    pub status: Option<f64>,
    /// The last latency in the range, ms.
    pub latency_ms: Option<f64>,
    /// The last certificate days left in the range.
    pub cert_days_left: Option<f64>,
    /// Average of `check.up` over the range, in percent (of the samples that have it).
    pub uptime_pct: Option<f64>,
    /// When the last `check.up` in the range was sent, ms since the epoch.
    pub last_ms: Option<i64>,
}

impl Reader {
    /// Every check of every host with data in `[since, until]`, by check then host. Status,
    /// latency and days left are those sent with the last `check.up` (or, before the first
    /// up/down decision, the last ones sent): a probe that got no response sends none, so an
    /// older status is not shown beside a newer "down".
    pub fn checks(&self, since: i64, until: i64) -> Result<Vec<CheckRow>, StoreError> {
        self.snapshot(|| {
            let fl = self.floors()?;
            let pref = if until.saturating_sub(since) > ROLLUP_ABOVE_MS {
                Pref::Rollup(Res::M1)
            } else {
                Pref::Raw
            };
            let mut found: BTreeMap<(String, String), [Option<Stats>; 4]> = BTreeMap::new();
            for (sid, key, host, i, check) in self.check_series()? {
                let mut acc = StatsAcc::new();
                let head = self.head_samples(&host, &key);
                self.visit(&fl, sid, head, since, until, pref, &mut acc)?;
                if let Some(st) = acc.finish() {
                    found.entry((check, host)).or_default()[i] = Some(st);
                }
            }
            Ok(found
                .into_iter()
                .map(|((check, host), st)| row(check, host, &st))
                .collect())
        })
    }

    /// (series id in the file, key, host, index in [`METRICS`], check label) of every
    /// `check.*` series of the file and the head.
    #[allow(clippy::type_complexity)]
    fn check_series(
        &self,
    ) -> Result<Vec<(Option<i64>, SeriesKey, String, usize, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, host, name, labels FROM series WHERE name IN (?1, ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        let names = METRICS.map(Metric::name);
        let rows = st
            .query_map(names, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut found: Vec<(Option<i64>, SeriesKey, String)> = rows
            .into_iter()
            .filter_map(|(id, host, name, labels)| {
                let labels: Vec<(String, String)> = serde_json::from_str(&labels).ok()?;
                Some((Some(id), SeriesKey { name, labels }, host))
            })
            .collect();
        if let Some(head) = &self.head {
            for (host, key) in head.all() {
                if !found.iter().any(|(_, k, h)| k == key && h == host) {
                    found.push((None, key.clone(), host.to_owned()));
                }
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|(id, key, host)| {
                let check = key.labels.iter().find(|(k, _)| k == "check")?.1.clone();
                let i = METRICS.iter().position(|m| m.name() == key.name)?;
                Some((id, key, host, i, check))
            })
            .collect())
    }
}

/// One row from the statistics of its four series (in [`METRICS`] order).
fn row(check: String, host: String, st: &[Option<Stats>; 4]) -> CheckRow {
    let up_ts = st[0].as_ref().map(|s| s.last_ts);
    // A value counts if it was sent with (or after) the last up/down value.
    let current = |s: &Option<Stats>| {
        s.as_ref()
            .filter(|s| up_ts.is_none_or(|t| s.last_ts >= t))
            .map(|s| s.last)
    };
    CheckRow {
        check,
        host,
        up: st[0].as_ref().map(|s| s.last != 0.0),
        status: current(&st[1]),
        latency_ms: current(&st[2]),
        cert_days_left: current(&st[3]),
        uptime_pct: st[0].as_ref().map(|s| s.avg * 100.0),
        last_ms: up_ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(last: f64, last_ts: i64, avg: f64) -> Option<Stats> {
        Some(Stats {
            count: 10,
            min: 0.0,
            max: 1.0,
            avg,
            p95: 1.0,
            last,
            last_ts,
        })
    }

    #[test]
    fn values_older_than_the_last_up_value_are_not_current() {
        // Down at t=2000 after a refused connection: the status of t=1000 is stale.
        let r = row(
            "web".into(),
            "a".into(),
            &[
                st(0.0, 2000, 0.75),
                st(200.0, 1000, 200.0),
                st(3.0, 2000, 3.0),
                None,
            ],
        );
        assert_eq!(r.up, Some(false));
        assert_eq!(r.status, None);
        assert_eq!(r.latency_ms, Some(3.0));
        assert_eq!(r.cert_days_left, None);
        assert_eq!(r.uptime_pct, Some(75.0));
        // Before the first decision there is no up value: the latest values count.
        let r = row(
            "web".into(),
            "a".into(),
            &[None, st(503.0, 5, 503.0), None, None],
        );
        assert_eq!((r.up, r.status, r.uptime_pct), (None, Some(503.0), None));
    }
}
