//! What the mesh simulator counts: a latency histogram, the record of every frame an origin
//! sent (when, and how many of the nodes that count received it), and the spread of a
//! per-node figure.
//!
//! Not here: when things are counted (`engine`) or how they are printed (`report`).

/// Latencies in microseconds: 10 µs buckets up to 100 ms, 1 ms buckets up to 120 s, and
/// the exact maximum.
#[derive(Debug, Clone)]
pub struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    max: u64,
}

const FINE_US: u64 = 10;
const FINE_TOP_US: u64 = 100_000;
const COARSE_US: u64 = 1_000;
const COARSE_TOP_US: u64 = 120_000_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            fine: vec![0; (FINE_TOP_US / FINE_US) as usize],
            coarse: vec![0; (COARSE_TOP_US / COARSE_US) as usize + 1],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one latency.
    pub fn add(&mut self, us: u64) {
        self.count += 1;
        self.max = self.max.max(us);
        // Bucket i holds (i * width, (i + 1) * width].
        let below = us.saturating_sub(1);
        if us <= FINE_TOP_US {
            self.fine[(below / FINE_US) as usize] += 1;
        } else {
            let i = ((below / COARSE_US) as usize).min(self.coarse.len() - 1);
            self.coarse[i] += 1;
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q` quantile (0..=1), as the upper edge of its bucket (at most the maximum).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.fine.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * FINE_US).min(self.max);
            }
        }
        for (i, c) in self.coarse.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * COARSE_US).min(self.max);
            }
        }
        self.max
    }
}

/// One live frame an origin sent.
#[derive(Debug, Clone, Copy)]
pub struct FrameRec {
    /// Simulated time it was originated, µs.
    pub orig_us: u64,
    /// Counted nodes (survivors) that received it.
    pub got: u32,
    /// Of those, the ones on the origin's side of a partition.
    pub got_same_side: u32,
}

/// The median and the maximum of a per-node figure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// Of `values` (empty: zeros).
    pub fn of(values: &mut [f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        Spread {
            median: values[values.len() / 2],
            max: values[values.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_fine_and_coarse_values() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.add(us * 10);
        }
        assert_eq!(h.quantile(0.5), 5000);
        assert_eq!(h.quantile(0.99), 9900);
        assert_eq!(h.quantile(1.0), 10_000);
        h.add(2_500_000);
        assert_eq!(h.max(), 2_500_000);
        assert_eq!(h.quantile(1.0), 2_500_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn spread_is_median_and_max() {
        let s = Spread::of(&mut [3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.max), (2.0, 3.0));
    }
}
