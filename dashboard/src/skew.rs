//! Where an origin's timestamps go on this dashboard's time line, when the origin's clock is off.
//!
//! A frame's `ts_ms` is its origin's wall clock. Every host measures its own clock against the
//! median of its neighbours' and publishes it in its samples (`host.clock_offset_ms`, positive:
//! ahead). The dashboard places a frame at:
//!
//! 1. `ts_ms - offset`, when the origin's latest published offset is at least
//!    [`CORRECT_ABOVE_MS`] either way (below that, `ts_ms` as written, so that clocks within NTP's
//!    usual error do not move timestamps by a few noisy ms). The offset comes from the frame
//!    itself or, for frames without it, the last one the origin's boot published. Every
//!    dashboard computes the same from the same frames, so alert identities (which include the
//!    start time) agree across dashboards.
//! 2. For a live frame, if that is still more than [`LIVE_TOLERANCE_MS`] from this node's clock
//!    (an offset not measured yet, in the first seconds of a boot, or this dashboard's own clock
//!    being off), the time it arrived: a live frame is never that late on a working mesh, and
//!    alerts, `for` holds and host-down all run on this node's clock.
//! 3. Replayed (backfill) frames are history: corrected as in 1, and never later than now.
//!
//! So a host 10 minutes ahead or behind stores no data in the future or far in the past, and
//! its alerts neither fire early (a jump forward) nor stay pending (a jump back).
//!
//! Not here: measuring offsets (the agent's gossip, `clock`), or the `clock-skew` alert (a
//! built-in rule).

use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;

/// Offsets smaller than this (ms) are left alone.
pub const CORRECT_ABOVE_MS: i64 = 1_000;
/// A live frame placed further than this from now (ms) is placed at now.
pub const LIVE_TOLERANCE_MS: i64 = 2_000;
/// Origins whose offset is remembered.
const MAX_ORIGINS: usize = 65_536;

/// The time of a frame stamped `ts_ms` by an origin whose clock is `offset_ms` off, arriving at
/// `now_ms` (see the module header).
pub fn place(ts_ms: i64, offset_ms: Option<i64>, now_ms: i64, live: bool) -> i64 {
    let t = match offset_ms {
        Some(o) if o.unsigned_abs() >= CORRECT_ABOVE_MS.unsigned_abs() => ts_ms.saturating_sub(o),
        _ => ts_ms,
    };
    if live {
        if t.abs_diff(now_ms) > LIVE_TOLERANCE_MS.unsigned_abs() {
            now_ms
        } else {
            t
        }
    } else {
        t.min(now_ms)
    }
}

/// The `host.clock_offset_ms` value among a frame's decoded values.
pub fn offset_in(values: &[(SeriesKey, f64)]) -> Option<i64> {
    let name = Metric::HostClockOffsetMs.name();
    values
        .iter()
        .find(|(k, _)| k.name == name)
        .filter(|(_, v)| v.is_finite())
        .map(|(_, v)| *v as i64)
}

/// The last published offset of every origin's current boot.
#[derive(Debug, Default)]
pub struct Offsets {
    by_origin: HashMap<String, (u64, i64)>,
}

impl Offsets {
    /// Notes the offset a live frame of `origin`'s boot `boot` carried, if any.
    pub fn learn(&mut self, origin: &str, boot: u64, offset_ms: Option<i64>) {
        let Some(o) = offset_ms else {
            return;
        };
        if let Some(e) = self.by_origin.get_mut(origin) {
            *e = (boot, o);
            return;
        }
        if self.by_origin.len() >= MAX_ORIGINS {
            // Rare (more origins than a mesh tracks): start over rather than keep stale ones.
            self.by_origin.clear();
        }
        self.by_origin.insert(origin.to_owned(), (boot, o));
    }

    /// The offset published by `origin`'s boot `boot`.
    pub fn get(&self, origin: &str, boot: u64) -> Option<i64> {
        self.by_origin
            .get(origin)
            .filter(|(b, _)| *b == boot)
            .map(|(_, o)| *o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const TEN_MIN: i64 = 600_000;

    #[test]
    fn small_offsets_leave_timestamps_as_written() {
        assert_eq!(place(NOW - 3, Some(12), NOW, true), NOW - 3);
        assert_eq!(place(NOW - 3, None, NOW, true), NOW - 3);
        assert_eq!(place(NOW - 30_000, Some(12), NOW, false), NOW - 30_000);
    }

    #[test]
    fn a_host_ten_minutes_off_lands_on_the_dashboards_time_line() {
        // Measured: corrected to the mesh's time.
        assert_eq!(place(NOW + TEN_MIN - 4, Some(TEN_MIN), NOW, true), NOW - 4);
        assert_eq!(place(NOW - TEN_MIN - 4, Some(-TEN_MIN), NOW, true), NOW - 4);
        // Not measured yet: the arrival time, never the future or ten minutes ago.
        assert_eq!(place(NOW + TEN_MIN, None, NOW, true), NOW);
        assert_eq!(place(NOW - TEN_MIN, None, NOW, true), NOW);
        // Backfill: corrected, never after now.
        assert_eq!(
            place(NOW + TEN_MIN - 60_000, Some(TEN_MIN), NOW, false),
            NOW - 60_000
        );
        assert_eq!(place(NOW + TEN_MIN, None, NOW, false), NOW);
    }

    #[test]
    fn offsets_are_per_boot() {
        let mut o = Offsets::default();
        let k = SeriesKey::new(Metric::HostClockOffsetMs);
        o.learn("a", 1, offset_in(&[(k.clone(), 600_000.0)]));
        assert_eq!(o.get("a", 1), Some(600_000));
        assert_eq!(o.get("a", 2), None);
        o.learn("a", 2, offset_in(&[(k.clone(), -5.0)]));
        assert_eq!(o.get("a", 2), Some(-5));
        assert_eq!(offset_in(&[(k, f64::NAN)]), None);
        o.learn("a", 2, offset_in(&[]));
        assert_eq!(o.get("a", 2), Some(-5), "frames without it keep the last");
    }
}
