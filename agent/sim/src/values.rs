//! The values one simulated host reports: which series (always `cpu.usage_pct`,
//! `mem.used_pct` and `disk.used_pct{mount="/"}`, then more well-known metrics up to the
//! configured count) and how they move under each [`Pattern`].
//!
//! Not here: encoding them (the proto crate's `SampleEncoder`) or when they are taken.

use crate::config::Pattern;
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// One series: its key, where it starts, its bounds and its largest random-walk step.
#[derive(Debug, Clone)]
struct Spec {
    key: SeriesKey,
    base: f64,
    min: f64,
    max: f64,
    step: f64,
    /// Decimal places kept (0: integers, the cheapest encoding).
    decimals: i32,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn spec(key: SeriesKey, base: f64, (min, max): (f64, f64), step: f64, decimals: i32) -> Spec {
    Spec {
        key,
        base,
        min,
        max,
        step,
        decimals,
    }
}

/// The first `n` series of a host, `i` varying the starting values from host to host.
fn specs(n: usize, i: usize) -> Vec<Spec> {
    let v = (i % 50) as f64;
    let pct = (0.0, 100.0);
    let mut out = vec![
        spec(SeriesKey::new(Metric::CpuUsagePct), 10.0 + v, pct, 3.0, 1),
        spec(
            SeriesKey::new(Metric::MemUsedPct),
            30.0 + v / 2.0,
            pct,
            0.5,
            1,
        ),
        spec(
            SeriesKey::labelled(Metric::DiskUsedPct, "/"),
            40.0 + v / 2.0,
            pct,
            0.1,
            1,
        ),
        spec(SeriesKey::new(Metric::CpuLoad1), 0.5, (0.0, 64.0), 0.2, 2),
        spec(SeriesKey::new(Metric::CpuLoad5), 0.5, (0.0, 64.0), 0.1, 2),
        spec(SeriesKey::new(Metric::CpuLoad15), 0.5, (0.0, 64.0), 0.05, 2),
        spec(
            SeriesKey::new(Metric::MemTotalBytes),
            8.0 * GIB,
            (0.0, 8.0 * GIB),
            0.0,
            0,
        ),
        spec(
            SeriesKey::new(Metric::MemUsedBytes),
            3.0 * GIB,
            (0.0, 8.0 * GIB),
            16e6,
            0,
        ),
        spec(
            SeriesKey::labelled(Metric::NetRxBytesPerS, "eth0"),
            1e5,
            (0.0, 1.25e9),
            2e4,
            0,
        ),
        spec(
            SeriesKey::labelled(Metric::NetTxBytesPerS, "eth0"),
            5e4,
            (0.0, 1.25e9),
            1e4,
            0,
        ),
        spec(
            SeriesKey::labelled(Metric::DiskInodesUsedPct, "/"),
            5.0,
            pct,
            0.01,
            2,
        ),
    ];
    out.truncate(n);
    let mut core = 0;
    while out.len() < n {
        out.push(spec(
            SeriesKey::labelled(Metric::CpuCoreUsagePct, core.to_string()),
            10.0 + v,
            pct,
            3.0,
            1,
        ));
        core += 1;
    }
    out
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// The values of one host.
#[derive(Debug)]
pub(crate) struct Values {
    specs: Vec<Spec>,
    now: Vec<f64>,
    pattern: Pattern,
    /// Where this host is in the flap cycle at time zero.
    phase: Duration,
    rng: StdRng,
}

impl Values {
    /// Host `i` of `hosts`, `series` series, seeded with `seed`.
    pub(crate) fn new(
        i: usize,
        hosts: usize,
        series: usize,
        pattern: Pattern,
        seed: u64,
    ) -> Values {
        let specs = specs(series, i);
        let now = specs.iter().map(|s| round(s.base, s.decimals)).collect();
        let phase = match pattern {
            Pattern::Flap { period, .. } => period.mul_f64(i as f64 / hosts.max(1) as f64),
            _ => Duration::ZERO,
        };
        Values {
            specs,
            now,
            pattern,
            phase,
            rng: StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    /// The series keys, in the order [`Values::take`] returns them.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.specs.iter().map(|s| &s.key)
    }

    /// Whether the flap pattern holds `cpu.usage_pct` high at `elapsed` since the fleet started.
    pub(crate) fn flap_high(&self, elapsed: Duration) -> Option<bool> {
        match self.pattern {
            Pattern::Flap { period, .. } => {
                let p = period.as_nanos().max(1);
                let at = (elapsed + self.phase).as_nanos() % p;
                Some(at < p / 2)
            }
            _ => None,
        }
    }

    /// The values at `elapsed` since the fleet started (one step of the walk per call).
    pub(crate) fn take(&mut self, elapsed: Duration) -> Vec<(SeriesKey, f64)> {
        if self.pattern == Pattern::RandomWalk {
            for (v, s) in self.now.iter_mut().zip(&self.specs) {
                if s.step > 0.0 {
                    let step = self.rng.random_range(-s.step..=s.step);
                    *v = round((*v + step).clamp(s.min, s.max), s.decimals);
                }
            }
        }
        if let (Pattern::Flap { low, high, .. }, Some(up)) = (self.pattern, self.flap_high(elapsed))
            && let Some(cpu) = self.now.first_mut()
        {
            *cpu = if up { high } else { low };
        }
        self.specs
            .iter()
            .zip(&self.now)
            .map(|(s, v)| (s.key.clone(), *v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_required_series_come_first_and_extra_ones_are_well_known() {
        let v = Values::new(0, 1, 3, Pattern::Steady, 1);
        let names: Vec<String> = v.keys().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "cpu.usage_pct",
                "mem.used_pct",
                "disk.used_pct{mount=\"/\"}"
            ]
        );
        let v = Values::new(0, 1, 40, Pattern::Steady, 1);
        let keys: Vec<&SeriesKey> = v.keys().collect();
        assert_eq!(keys.len(), 40);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 40, "no series twice");
        assert!(keys.iter().all(|k| Metric::from_name(&k.name).is_some()));
    }

    #[test]
    fn steady_never_changes_and_walk_stays_in_bounds() {
        let mut s = Values::new(3, 10, 11, Pattern::Steady, 1);
        let first = s.take(Duration::ZERO);
        assert_eq!(s.take(Duration::from_secs(5)), first);
        let mut w = Values::new(3, 10, 11, Pattern::RandomWalk, 7);
        let mut changed = false;
        for t in 0..500 {
            let now = w.take(Duration::from_secs(t));
            changed |= now != first;
            for ((k, v), spec) in now.iter().zip(&w.specs) {
                assert!((spec.min..=spec.max).contains(v), "{k} = {v}");
            }
        }
        assert!(changed);
        let mut again = Values::new(3, 10, 11, Pattern::RandomWalk, 7);
        let mut w2 = Values::new(3, 10, 11, Pattern::RandomWalk, 7);
        assert_eq!(
            again.take(Duration::ZERO),
            w2.take(Duration::ZERO),
            "same seed, same walk"
        );
    }

    #[test]
    fn flap_is_high_half_the_period_with_phases_spread_over_hosts() {
        let period = Duration::from_secs(10);
        let pattern = Pattern::flap(period);
        let mut h0 = Values::new(0, 4, 3, pattern, 1);
        let highs: Vec<bool> = (0..20)
            .map(|t| h0.take(Duration::from_secs(t))[0].1 == 95.0)
            .collect();
        assert_eq!(highs.iter().filter(|h| **h).count(), 10);
        assert!(highs[0] && highs[4] && !highs[5] && !highs[9] && highs[10]);
        // Host 1 of 4 is a quarter period ahead: it turns low 2.5 s earlier.
        let h1 = Values::new(1, 4, 3, pattern, 1);
        assert_eq!(h1.flap_high(Duration::from_millis(2400)), Some(true));
        assert_eq!(h1.flap_high(Duration::from_millis(2600)), Some(false));
        assert_eq!(h0.flap_high(Duration::from_millis(2600)), Some(true));
    }
}
