//! History for charts and the stats table: the [`History`] trait the views read, the time
//! [`Window`]s, and [`Ring`], the in-memory tiered ring that holds what a TUI gathered since it
//! opened (the only history on a node without a store).
//!
//! Not here: where values come from (`data.rs` feeds the rings) or the SQLite store (a
//! store-backed history answers the same trait from rows it preloaded off the draw path).

use meshmon_proto::SeriesKey;
use std::collections::VecDeque;

/// A chart/stat time window, switched with `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    M5,
    H1,
    H12,
    H24,
    D7,
}

impl Window {
    /// Every window, in the order `t` cycles through them.
    pub const ALL: [Window; 5] = [Window::M5, Window::H1, Window::H12, Window::H24, Window::D7];

    /// Length in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Window::M5 => 5 * 60_000,
            Window::H1 => 3_600_000,
            Window::H12 => 12 * 3_600_000,
            Window::H24 => 24 * 3_600_000,
            Window::D7 => 7 * 24 * 3_600_000,
        }
    }

    /// Short label (`5m`, `1h`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Window::M5 => "5m",
            Window::H1 => "1h",
            Window::H12 => "12h",
            Window::H24 => "24h",
            Window::D7 => "7d",
        }
    }

    /// The next window (wraps), or the previous one with `back`.
    pub fn cycle(self, back: bool) -> Window {
        let i = Window::ALL.iter().position(|w| *w == self).unwrap_or(0);
        let n = Window::ALL.len();
        Window::ALL[if back { (i + n - 1) % n } else { (i + 1) % n }]
    }
}

/// Summary of one series over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub avg: f64,
    pub max: f64,
    pub p95: f64,
    pub last: f64,
    pub count: usize,
}

impl Stats {
    /// Stats of `(ts, value)` points; `None` when there are none. `max` uses the bucket maxima
    /// when given (coarse tiers keep them), else the values.
    pub fn of(points: &[(i64, f64)], maxima: Option<&[f64]>) -> Option<Stats> {
        let last = points.last()?.1;
        let mut vals: Vec<f64> = points.iter().map(|p| p.1).collect();
        let avg = vals.iter().sum::<f64>() / vals.len() as f64;
        let max = maxima
            .unwrap_or(&vals)
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        vals.sort_by(f64::total_cmp);
        let idx = ((vals.len() as f64 * 0.95).ceil() as usize).clamp(1, vals.len()) - 1;
        Some(Stats {
            avg,
            max,
            p95: vals[idx],
            last,
            count: vals.len(),
        })
    }
}

/// Where history comes from, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistorySource {
    /// Only what this TUI gathered since it opened at `since_ms`.
    Live { since_ms: i64 },
    /// The node's store.
    Store,
}

/// Past values of a host's series. Implementations answer from memory: views call this
/// while drawing, which never waits on I/O.
///
/// A labelled metric asked for without its label (e.g. `net.rx_bytes_per_s`) means the
/// aggregate over all label values: the sum for rates and byte counts, the maximum for
/// percentages (see [`aggregate_of`]).
pub trait History {
    /// Points of `key` in `[since_ms, until_ms]`, averaged into at most `points` equal slots.
    fn series(
        &self,
        host: &str,
        key: &SeriesKey,
        since_ms: i64,
        until_ms: i64,
        points: usize,
    ) -> Vec<(i64, f64)>;
    /// Avg, max, p95 and last of `key` in `[since_ms, until_ms]`.
    fn stats(&self, host: &str, key: &SeriesKey, since_ms: i64, until_ms: i64) -> Option<Stats>;
}

/// How the unlabelled aggregate of a labelled metric is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Max,
}

/// The aggregate used for metric `name` asked without its label.
pub fn aggregate_of(name: &str) -> Aggregate {
    if name.ends_with("_pct") || name.ends_with("_c") {
        Aggregate::Max
    } else {
        Aggregate::Sum
    }
}

/// An open bucket being accumulated.
#[derive(Debug, Clone, Copy)]
struct Open {
    t_s: u32,
    sum: f64,
    n: u32,
    max: f32,
}

impl Open {
    fn avg(&self) -> f32 {
        (self.sum / f64::from(self.n.max(1))) as f32
    }
}

/// Tiers: (bucket seconds, buckets kept). 5 min at full rate, 1 h at 15 s, 24 h at 2 min,
/// 7 d at 15 min: every window has 240 to 720 points.
const TIERS: [(u32, usize); 4] = [(1, 300), (15, 240), (120, 720), (900, 672)];

/// Closed buckets of one tier. Times are implicit (`start_s + i * step`), a missing bucket
/// is NaN; the full-rate tier keeps no maxima (each bucket is one value). So a full series
/// costs about 14 KB.
#[derive(Debug, Clone, Default)]
struct Tier {
    start_s: u32,
    avg: VecDeque<f32>,
    max: VecDeque<f32>,
}

impl Tier {
    fn push(&mut self, step: u32, cap: usize, o: Open) {
        let keep_max = step > 1;
        let next = self.start_s + step * self.avg.len() as u32;
        if self.avg.is_empty() || o.t_s < next || (o.t_s - next) / step >= cap as u32 {
            self.avg.clear();
            self.max.clear();
            self.start_s = o.t_s;
        } else {
            for _ in 0..(o.t_s - next) / step {
                self.append(step, cap, keep_max, f32::NAN, f32::NAN);
            }
        }
        if self.avg.capacity() == 0 {
            self.avg.reserve_exact(cap + 1);
            if keep_max {
                self.max.reserve_exact(cap + 1);
            }
        }
        self.append(step, cap, keep_max, o.avg(), o.max);
    }

    fn append(&mut self, step: u32, cap: usize, keep_max: bool, avg: f32, max: f32) {
        self.avg.push_back(avg);
        if keep_max {
            self.max.push_back(max);
        }
        if self.avg.len() > cap {
            self.avg.pop_front();
            self.max.pop_front();
            self.start_s += step;
        }
    }
}

/// One series' history since the TUI opened, in tiers of decreasing resolution. Appends are
/// O(1); points older than the newest are ignored.
#[derive(Debug, Clone)]
pub struct Ring {
    tiers: [Tier; 4],
    open: [Option<Open>; 4],
    last_ms: i64,
    last: f64,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            tiers: Default::default(),
            open: [None; 4],
            last_ms: i64::MIN,
            last: f64::NAN,
        }
    }
}

impl Ring {
    /// Adds a value at `ts_ms` (ignored unless newer than the last one).
    pub fn push(&mut self, ts_ms: i64, value: f64) {
        if ts_ms <= self.last_ms || !value.is_finite() {
            return;
        }
        self.last_ms = ts_ms;
        self.last = value;
        let t = u32::try_from(ts_ms.max(0) / 1000).unwrap_or(u32::MAX);
        for (i, (step, cap)) in TIERS.iter().enumerate() {
            let start = t - t % step;
            match &mut self.open[i] {
                Some(o) if o.t_s == start => {
                    o.sum += value;
                    o.n += 1;
                    o.max = o.max.max(value as f32);
                }
                slot => {
                    if let Some(o) = slot.take() {
                        self.tiers[i].push(*step, *cap, o);
                    }
                    *slot = Some(Open {
                        t_s: start,
                        sum: value,
                        n: 1,
                        max: value as f32,
                    });
                }
            }
        }
    }

    /// The newest value and its time, if any.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.last_ms != i64::MIN).then_some((self.last_ms, self.last))
    }

    /// Buckets `(ts_ms, avg, max)` in `[since_ms, until_ms]` from the finest tier that spans
    /// the window (every tier holds everything since the ring began, up to its length).
    pub fn range(&self, since_ms: i64, until_ms: i64) -> Vec<(i64, f64, f64)> {
        let span_s = (until_ms - since_ms).max(0) / 1000;
        let i = TIERS
            .iter()
            .position(|(step, cap)| i64::from(*step) * *cap as i64 >= span_s)
            .unwrap_or(TIERS.len() - 1);
        let (step, tier) = (i64::from(TIERS[i].0), &self.tiers[i]);
        let closed = tier.avg.iter().enumerate().map(|(j, avg)| {
            let max = tier.max.get(j).copied().unwrap_or(*avg);
            let t = (i64::from(tier.start_s) + j as i64 * step) * 1000;
            (t, f64::from(*avg), f64::from(max))
        });
        let open = self.open[i].map(|o| {
            (
                i64::from(o.t_s) * 1000,
                f64::from(o.avg()),
                f64::from(o.max),
            )
        });
        closed
            .chain(open)
            .filter(|(t, avg, _)| !avg.is_nan() && *t >= since_ms && *t <= until_ms)
            .collect()
    }

    /// Bytes held (for sizing).
    pub fn heap_bytes(&self) -> usize {
        self.tiers
            .iter()
            .map(|t| t.avg.capacity() + t.max.capacity())
            .sum::<usize>()
            * std::mem::size_of::<f32>()
    }
}

/// Averages `(ts, value)` points into at most `points` equal slots of `[since, until]`.
pub fn downsample(pts: &[(i64, f64)], since: i64, until: i64, points: usize) -> Vec<(i64, f64)> {
    if points == 0 || pts.len() <= points || until <= since {
        return pts.to_vec();
    }
    let slot = ((until - since) as f64 / points as f64).max(1.0);
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(points);
    let (mut cur, mut sum, mut n) = (-1i64, 0.0, 0u32);
    for &(t, v) in pts {
        let s = ((t - since) as f64 / slot) as i64;
        if s != cur && n > 0 {
            out.push((since + (cur as f64 * slot) as i64, sum / f64::from(n)));
            sum = 0.0;
            n = 0;
        }
        cur = s;
        sum += v;
        n += 1;
    }
    if n > 0 {
        out.push((since + (cur as f64 * slot) as i64, sum / f64::from(n)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cycle_both_ways() {
        assert_eq!(Window::M5.cycle(false), Window::H1);
        assert_eq!(Window::D7.cycle(false), Window::M5);
        assert_eq!(Window::M5.cycle(true), Window::D7);
    }

    #[test]
    fn ring_keeps_full_rate_recently_and_buckets_later() {
        let mut r = Ring::default();
        let t0 = 1_700_000_000_000;
        for i in 0..3600 {
            r.push(t0 + i * 1000, (i % 10) as f64);
        }
        r.push(t0, 99.0); // older than the newest: ignored
        let now = t0 + 3599 * 1000;
        let five = r.range(now - 299_000, now);
        assert_eq!(five.len(), 300, "1 s resolution for 5 minutes");
        let hour = r.range(now - 3_600_000, now);
        assert!((239..=241).contains(&hour.len()), "{}", hour.len());
        assert!(hour.iter().all(|(_, avg, max)| *avg <= 9.0 && *max == 9.0));
        assert!(r.heap_bytes() < 15_000, "{}", r.heap_bytes());
    }

    #[test]
    fn gaps_are_skipped_and_long_gaps_restart_a_tier() {
        let mut r = Ring::default();
        let t0 = 1_700_000_000_000;
        r.push(t0, 1.0);
        r.push(t0 + 1000, 2.0);
        r.push(t0 + 10_000, 3.0); // 8 s silent
        r.push(t0 + 11_000, 4.0);
        let pts: Vec<(i64, f64)> = r
            .range(t0, t0 + 11_000)
            .iter()
            .map(|p| (p.0, p.1))
            .collect();
        assert_eq!(
            pts,
            [
                (t0, 1.0),
                (t0 + 1000, 2.0),
                (t0 + 10_000, 3.0),
                (t0 + 11_000, 4.0)
            ]
        );
        r.push(t0 + 3_600_000, 5.0); // an hour later: the 1 s tier starts over
        let recent = r.range(t0 + 3_300_000, t0 + 3_600_000);
        assert_eq!(recent, [(t0 + 3_600_000, 5.0, 5.0)]);
        assert_eq!(r.last(), Some((t0 + 3_600_000, 5.0)));
    }

    #[test]
    fn stats_and_downsampling() {
        let pts: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64)).collect();
        let s = Stats::of(&pts, None).expect("stats");
        assert_eq!(
            (s.avg, s.max, s.p95, s.last, s.count),
            (49.5, 99.0, 94.0, 99.0, 100)
        );
        assert_eq!(Stats::of(&[], None), None);
        let d = downsample(&pts, 0, 100_000, 10);
        assert_eq!(d.len(), 10);
        assert_eq!(d[0], (0, 4.5));
    }
}
