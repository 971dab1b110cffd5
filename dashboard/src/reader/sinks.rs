//! Where query data goes: statistics, points as stored, or averages per step. Each sink is
//! fed raw samples and rollup buckets in time order by the reader.

use crate::agg::{Bucket, StatsAcc};
use crate::layout::floor_to;

/// Receives the data of a range in time order.
pub(super) trait Sink {
    fn raw(&mut self, ts: i64, v: f64);
    fn bucket(&mut self, ts: i64, b: &Bucket);
}

impl Sink for StatsAcc {
    fn raw(&mut self, ts: i64, v: f64) {
        self.add(ts, v);
    }
    fn bucket(&mut self, ts: i64, b: &Bucket) {
        self.add_bucket(ts, b);
    }
}

/// Points as stored: raw samples, or each bucket's average at its start.
pub(super) struct Points(pub Vec<(i64, f64)>);

impl Sink for Points {
    fn raw(&mut self, ts: i64, v: f64) {
        self.0.push((ts, v));
    }
    fn bucket(&mut self, ts: i64, b: &Bucket) {
        self.0.push((ts, b.avg()));
    }
}

/// Averages per step (aligned to multiples of the step since the epoch).
pub(super) struct Steps {
    pub step: i64,
    pub cur: Option<(i64, f64, u64)>,
    pub out: Vec<(i64, f64)>,
}

impl Steps {
    fn add(&mut self, ts: i64, sum: f64, n: u64) {
        let t = floor_to(ts, self.step);
        match &mut self.cur {
            Some((ct, s, c)) if *ct == t => {
                *s += sum;
                *c += n;
            }
            _ => {
                if let Some((ct, s, c)) = self.cur.replace((t, sum, n)) {
                    self.out.push((ct, s / c as f64));
                }
            }
        }
    }
    pub fn finish(mut self) -> Vec<(i64, f64)> {
        if let Some((ct, s, c)) = self.cur.take() {
            self.out.push((ct, s / c as f64));
        }
        self.out
    }
}

impl Sink for Steps {
    fn raw(&mut self, ts: i64, v: f64) {
        if !v.is_nan() {
            self.add(ts, v, 1);
        }
    }
    fn bucket(&mut self, ts: i64, b: &Bucket) {
        self.add(ts, b.sum, b.count);
    }
}
