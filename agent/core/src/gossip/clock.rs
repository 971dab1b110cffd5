//! Clock offsets of the neighbours, estimated as NTP does from the heartbeats every link already
//! carries, and this node's own offset against the median of its neighbours (published as
//! `host.clock_offset_ms`).
//!
//! One heartbeat gives the four NTP timestamps: t1 = our wall clock when we sent the heartbeat
//! it echoes (now minus the monotonic time since, `now.mono_us - echo_us`), t2 = t3 - `held_us`,
//! t3 = the peer's wall clock in the frame header (`ts_ms`), t4 = our wall clock now. The offset
//! (peer minus us) is `((t2 - t1) + (t3 - t4)) / 2 = t3 - t4 + rtt / 2` and the round-trip time
//! `(t4 - t1) - (t3 - t2)`. Of the last [`FILTER`] samples of a link, the one with the smallest
//! round-trip time is kept (NTP's clock filter: queueing only ever adds delay, and the least
//! delayed sample is the least skewed by an asymmetric path). No wire change is needed.
//!
//! Not here: what the dashboard does with skewed timestamps (`meshmon-dashboard`'s
//! `skew`), or the alert (`clock-skew`, a built-in rule on `host.clock_offset_ms`).

use super::hashing::Map;
use super::{Gossip, Now, PeerId};
use std::collections::VecDeque;

/// Samples per link the filter chooses from.
pub const FILTER: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    offset_ms: i64,
    rtt_us: u64,
}

/// The last [`FILTER`] offset samples of one link.
#[derive(Debug, Clone, Default)]
pub struct ClockFilter {
    samples: VecDeque<Sample>,
}

impl ClockFilter {
    /// Adds one sample, forgetting the oldest beyond [`FILTER`].
    pub fn add(&mut self, offset_ms: i64, rtt_us: u64) {
        if self.samples.len() == FILTER {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { offset_ms, rtt_us });
    }

    /// The offset of the sample with the smallest round-trip time (the newest among equals).
    pub fn offset_ms(&self) -> Option<i64> {
        self.samples
            .iter()
            .rev()
            .min_by_key(|s| s.rtt_us)
            .map(|s| s.offset_ms)
    }
}

/// One heartbeat's estimate of the peer's clock minus ours, in ms, and the round-trip time in
/// µs. `peer_ts_ms` is the heartbeat frame's header time; `echo_us` and `held_us` its fields.
/// `None` when the heartbeat echoes nothing yet (or something we never sent).
pub fn estimate(now: Now, peer_ts_ms: u64, echo_us: u64, held_us: u64) -> Option<(i64, u64)> {
    if echo_us == 0 || echo_us > now.mono_us {
        return None;
    }
    let since_sent = now.mono_us - echo_us;
    let rtt_us = since_sent.saturating_sub(held_us);
    let t3 = i128::from(peer_ts_ms) * 1000;
    let t4 = i128::from(now.wall_ms) * 1000;
    let offset_us = t3 - t4 + i128::from(rtt_us) / 2;
    // Round to the nearest ms (the header's resolution).
    let offset_ms = i64::try_from((offset_us + offset_us.signum() * 500) / 1000).ok()?;
    Some((offset_ms, rtt_us))
}

/// The median of `offsets` (peer minus us); of the two middle values of an even count, the one
/// nearer zero, so that a node with one good and one bad neighbour does not blame itself.
pub fn median_nearest_zero(offsets: &mut [i64]) -> Option<i64> {
    if offsets.is_empty() {
        return None;
    }
    offsets.sort_unstable();
    let n = offsets.len();
    if n % 2 == 1 {
        return Some(offsets[n / 2]);
    }
    let (a, b) = (offsets[n / 2 - 1], offsets[n / 2]);
    Some(if a.unsigned_abs() <= b.unsigned_abs() {
        a
    } else {
        b
    })
}

/// The filters of every link.
#[derive(Debug, Default)]
pub struct Clocks {
    links: Map<PeerId, ClockFilter>,
}

impl Clocks {
    /// The estimate of one link.
    pub fn offset_ms(&self, peer: PeerId) -> Option<i64> {
        self.links.get(&peer).and_then(ClockFilter::offset_ms)
    }
}

impl Gossip {
    /// A heartbeat arrived on `peer`: one more sample for its filter.
    pub(super) fn observe_clock(
        &mut self,
        peer: PeerId,
        now: Now,
        ts_ms: u64,
        echo_us: u64,
        held_us: u64,
    ) {
        // Links come and go without telling this module: forget the gone ones here.
        if self.clocks.links.len() > self.peers.len() {
            let peers = &self.peers;
            self.clocks.links.retain(|id, _| peers.contains_key(id));
        }
        if let Some((offset_ms, rtt_us)) = estimate(now, ts_ms, echo_us, held_us) {
            self.clocks
                .links
                .entry(peer)
                .or_default()
                .add(offset_ms, rtt_us);
        }
    }

    /// The estimated clock offset of one link (peer minus this node), ms.
    pub fn link_clock_offset_ms(&self, peer: PeerId) -> Option<i64> {
        self.clocks.offset_ms(peer)
    }

    /// This node's clock against the median of its node neighbours', ms (positive: this node is
    /// ahead); `None` until some neighbour was measured. With a single neighbour nobody can
    /// tell whose clock is wrong, and both ends report the difference.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        let mut offsets: Vec<i64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_node())
            .filter_map(|(id, _)| self.clocks.offset_ms(*id))
            .collect();
        median_nearest_zero(&mut offsets).map(|m| -m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(mono_us: u64, wall_ms: u64) -> Now {
        Now { mono_us, wall_ms }
    }

    #[test]
    fn estimate_is_ntp_offset_and_rtt() {
        // We sent at mono 1_000_000 (wall 10_000). The peer, 600 s ahead, got it 5 ms later
        // (its wall 610_005), held it 20 ms and answered at its wall 610_025; the answer took
        // 5 ms back, arriving at our wall 10_030, mono 1_030_000.
        let (off, rtt) = estimate(now(1_030_000, 10_030), 610_025, 1_000_000, 20_000).expect("ok");
        assert_eq!(rtt, 10_000);
        assert_eq!(off, 600_000);
        // Asymmetric path: 1 ms out, 9 ms back: off by half the asymmetry (4 ms), as NTP.
        let (off, _) = estimate(now(1_030_000, 10_030), 610_021, 1_000_000, 20_000).expect("ok");
        assert_eq!(off, 599_996);
        // A peer behind us.
        let (off, _) = estimate(now(2_000_000, 50_000), 40_000, 1_990_000, 0).expect("ok");
        assert_eq!(off, -9_995);
        assert_eq!(estimate(now(5, 5), 5, 0, 0), None, "nothing echoed");
        assert_eq!(estimate(now(5, 5), 5, 9, 0), None, "echo from the future");
    }

    #[test]
    fn filter_keeps_the_least_delayed_of_the_last_eight() {
        let mut f = ClockFilter::default();
        assert_eq!(f.offset_ms(), None);
        f.add(100, 900);
        f.add(7, 200);
        f.add(300, 5_000);
        assert_eq!(f.offset_ms(), Some(7));
        for _ in 0..FILTER {
            f.add(50, 1_000);
        }
        assert_eq!(f.offset_ms(), Some(50), "the 200 µs sample aged out");
    }

    #[test]
    fn median_prefers_the_middle_value_nearer_zero() {
        assert_eq!(median_nearest_zero(&mut []), None);
        assert_eq!(median_nearest_zero(&mut [5]), Some(5));
        assert_eq!(median_nearest_zero(&mut [600_000, 1]), Some(1));
        assert_eq!(median_nearest_zero(&mut [-3, 600_000, 2]), Some(2));
        assert_eq!(
            median_nearest_zero(&mut [-600_000, -600_000, 4]),
            Some(-600_000)
        );
    }
}
