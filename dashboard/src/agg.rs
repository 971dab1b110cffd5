//! Aggregation arithmetic: rollup buckets from raw values and statistics over raw values and
//! buckets together.
//!
//! Responsible for the definitions users see: `count` counts values that are not NaN (NaN
//! samples are stored but skipped by every aggregate), `avg` is `sum / count`, and `p95` is
//! the nearest-rank 95th percentile (the smallest value with at least 95% of the values at or
//! below it). Over raw data `p95` is exact. Where a range is answered from rollups, each bucket
//! stands for `count` copies of its own (exact) p95 and the nearest-rank rule is applied to
//! that weighted set: a documented approximation that is exact for steady data and always lies
//! between the smallest bucket p95 and the largest bucket p95 of the range.
//! Not responsible for reading data or picking sources ([`crate::reader`]).

/// Aggregates of the values in one rollup bucket (one minute or one hour of one series).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Values that are not NaN.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values (`avg = sum / count`).
    pub sum: f64,
    /// Exact nearest-rank 95th percentile of the bucket's values.
    pub p95: f64,
    /// The bucket's last value in time.
    pub last: f64,
}

impl Bucket {
    /// The bucket of `values` (in time order); `None` when every value is NaN or there are
    /// none. `scratch` is reused between calls to avoid allocating.
    pub fn from_values(values: &[f64], scratch: &mut Vec<f64>) -> Option<Bucket> {
        scratch.clear();
        scratch.extend(values.iter().copied().filter(|v| !v.is_nan()));
        let last = *scratch.last()?;
        let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for &v in scratch.iter() {
            min = min.min(v);
            max = max.max(v);
            sum += v;
        }
        Some(Bucket {
            count: scratch.len() as u64,
            min,
            max,
            sum,
            p95: p95_exact(scratch),
            last,
        })
    }

    /// `sum / count`.
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Nearest-rank 95th percentile of non-NaN `values` (reordered in place); NaN when empty.
pub fn p95_exact(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let idx = rank95(values.len() as u64) as usize - 1;
    let (_, v, _) = values.select_nth_unstable_by(idx, f64::total_cmp);
    *v
}

/// 1-based nearest rank of the 95th percentile among `n` values: `ceil(0.95 n)`.
fn rank95(n: u64) -> u64 {
    (n * 95).div_ceil(100).max(1)
}

/// Statistics of a range, as `meshmon query stats` prints them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Values that are not NaN.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub avg: f64,
    /// 95th percentile (exact over raw data, see the module docs over rollups).
    pub p95: f64,
    /// Last value in the range.
    pub last: f64,
    /// Time of the last value (bucket start where it came from a rollup).
    pub last_ts: i64,
}

/// Accumulates raw values and rollup buckets into [`Stats`].
#[derive(Debug, Default)]
pub struct StatsAcc {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    last: Option<(i64, f64)>,
    raw: Vec<f64>,
    /// (p95, weight) of each bucket that contributed.
    weighted: Vec<(f64, u64)>,
}

impl StatsAcc {
    /// An empty accumulator.
    pub fn new() -> StatsAcc {
        StatsAcc {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..StatsAcc::default()
        }
    }

    /// Adds one raw sample.
    pub fn add(&mut self, ts: i64, v: f64) {
        if v.is_nan() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.raw.push(v);
        self.note_last(ts, v);
    }

    /// Adds one rollup bucket starting at `ts`.
    pub fn add_bucket(&mut self, ts: i64, b: &Bucket) {
        if b.count == 0 {
            return;
        }
        self.count += b.count;
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        self.sum += b.sum;
        self.weighted.push((b.p95, b.count));
        self.note_last(ts, b.last);
    }

    fn note_last(&mut self, ts: i64, v: f64) {
        if self.last.is_none_or(|(t, _)| ts >= t) {
            self.last = Some((ts, v));
        }
    }

    /// The statistics, or `None` when nothing was added.
    pub fn finish(mut self) -> Option<Stats> {
        let (last_ts, last) = self.last?;
        let p95 = if self.weighted.is_empty() {
            p95_exact(&mut self.raw)
        } else {
            let mut all = self.weighted;
            all.extend(self.raw.iter().map(|&v| (v, 1)));
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let rank = rank95(self.count);
            let mut seen = 0;
            let mut p = f64::NAN;
            for (v, w) in all {
                seen += w;
                p = v;
                if seen >= rank {
                    break;
                }
            }
            p
        };
        Some(Stats {
            count: self.count,
            min: self.min,
            max: self.max,
            avg: self.sum / self.count as f64,
            p95,
            last,
            last_ts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_p95() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95_exact(&mut v), 95.0);
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(p95_exact(&mut v), 19.0);
        assert_eq!(p95_exact(&mut [7.0]), 7.0);
        assert!(p95_exact(&mut []).is_nan());
    }

    #[test]
    fn buckets_skip_nan() {
        let mut s = Vec::new();
        let b = Bucket::from_values(&[1.0, f64::NAN, 3.0, 2.0], &mut s).expect("bucket");
        assert_eq!(
            (b.count, b.min, b.max, b.sum, b.last),
            (3, 1.0, 3.0, 6.0, 2.0)
        );
        assert!(Bucket::from_values(&[f64::NAN], &mut s).is_none());
    }

    #[test]
    fn stats_over_buckets_weigh_by_count() {
        let mut acc = StatsAcc::new();
        let mut s = Vec::new();
        for minute in 0..100 {
            let vals: Vec<f64> = (0..60).map(|_| f64::from(minute)).collect();
            acc.add_bucket(
                i64::from(minute) * 60_000,
                &Bucket::from_values(&vals, &mut s).expect("b"),
            );
        }
        let st = acc.finish().expect("stats");
        assert_eq!(st.count, 6000);
        assert_eq!(st.p95, 94.0);
        assert_eq!(st.last, 99.0);
        assert_eq!(st.avg, 49.5);
    }
}
