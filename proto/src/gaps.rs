//! Per-origin sequence bookkeeping for a node that must hold every frame of every origin (a
//! dashboard): which sequence numbers of an origin's current boot arrived, which holes are
//! open, and which ranges to ask the mesh for again (backfill), when, and how often.
//!
//! Not here: answering requests (the origin's ring in the agent's gossip) or routing them.

use std::collections::{BTreeMap, HashMap};

/// How long an origin keeps its own frames for backfill: holes older than this cannot be
/// filled any more.
pub const RING_WINDOW_MS: u64 = 15 * 60 * 1000;
/// A gap is asked for only if still open this long after it was noticed (a frame on a slower
/// path usually fills it first).
pub const GAP_GRACE_MS: u64 = 2_000;
/// A request is repeated after this long without an answer, doubled for every further
/// try (5, 10, 20, 40, 80 s: a store that refused the answers for a minute or two, or an
/// origin cut off as long, still gets asked once it can answer)...
pub const RETRY_MS: u64 = 5_000;
/// ...at most this many times in all (the last about 2.5 minutes after the first).
pub const MAX_TRIES: u32 = 6;
/// Longest range asked for in one request.
pub const MAX_RANGE: u64 = 4096;
/// Frames asked for past the end of a gap. The live frames right after a gap are deltas the
/// live decoder could only partly decode (values that did not change are not in a delta);
/// replayed after the gap's frames, they decode fully and fill in what is missing (the
/// store keeps one sample per timestamp). Two key-frame periods, tables and host info
/// included.
pub const TAIL: u64 = 2 * crate::samples::KEY_EVERY;
/// Open gaps tracked per origin.
pub const MAX_GAPS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    to: u64,
    noticed_ms: u64,
    requested_ms: Option<u64>,
    tries: u32,
}

#[derive(Debug, Default)]
struct OriginGaps {
    boot_id: u64,
    high: u64,
    /// from -> gap
    gaps: BTreeMap<u64, Gap>,
}

/// A request the tracker wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub origin: String,
    pub boot_id: u64,
    pub from_seq: u64,
    pub to_seq: u64,
}

/// Per-origin record of which live sequence numbers a dashboard has, and which to ask for.
#[derive(Debug, Default)]
pub struct GapTracker {
    origins: HashMap<String, OriginGaps>,
    /// Gaps abandoned after [`MAX_TRIES`] (the origin no longer has the frames).
    pub abandoned: u64,
}

impl GapTracker {
    /// Starts from what the store already holds: up to `seq` of `boot_id`.
    pub fn resume(&mut self, origin: &str, boot_id: u64, seq: u64) {
        self.origins.insert(
            origin.to_owned(),
            OriginGaps {
                boot_id,
                high: seq,
                gaps: BTreeMap::new(),
            },
        );
    }

    /// Frames `from..=to` of `origin`'s boot `boot_id` arrived but were lost on the way to the
    /// store (a full queue): ask for them again as if they had never come. Merges with an
    /// open gap it touches; ignored for another boot, past the highest frame seen, or when the
    /// origin already has [`MAX_GAPS`] open gaps.
    pub fn want(&mut self, origin: &str, boot_id: u64, from: u64, to: u64, now_ms: u64) {
        let Some(o) = self.origins.get_mut(origin) else {
            return;
        };
        if boot_id != o.boot_id || from > to || to > o.high || from == 0 {
            return;
        }
        let (mut from, mut to) = (from, to);
        // Absorb every open gap that overlaps or touches [from, to].
        let touching: Vec<u64> = o
            .gaps
            .range(..=to.saturating_add(1))
            .filter(|(f, g)| g.to.saturating_add(1) >= from && **f <= to.saturating_add(1))
            .map(|(f, _)| *f)
            .collect();
        for f in touching {
            if let Some(g) = o.gaps.remove(&f) {
                from = from.min(f);
                to = to.max(g.to);
            }
        }
        if o.gaps.len() >= MAX_GAPS {
            return;
        }
        o.gaps.insert(
            from,
            Gap {
                to,
                noticed_ms: now_ms,
                requested_ms: None,
                tries: 0,
            },
        );
    }

    /// A live or replayed frame of `origin` arrived.
    pub fn observe(&mut self, origin: &str, boot_id: u64, seq: u64, now_ms: u64) {
        let o = self.origins.entry(origin.to_owned()).or_default();
        if boot_id != o.boot_id {
            if boot_id < o.boot_id {
                return;
            }
            // A new boot: the old one's tail died with the process that had it.
            *o = OriginGaps {
                boot_id,
                high: seq.saturating_sub(1),
                gaps: BTreeMap::new(),
            };
        }
        if seq > o.high {
            if seq > o.high + 1 && o.high > 0 && o.gaps.len() < MAX_GAPS {
                let from = o.high + 1;
                o.gaps.insert(
                    from,
                    Gap {
                        to: seq - 1,
                        noticed_ms: now_ms,
                        requested_ms: None,
                        tries: 0,
                    },
                );
            }
            o.high = seq;
            return;
        }
        // Inside an open gap: split it around `seq`.
        let Some((&from, &gap)) = o.gaps.range(..=seq).next_back() else {
            return;
        };
        if seq > gap.to {
            return;
        }
        o.gaps.remove(&from);
        if from < seq {
            o.gaps.insert(from, Gap { to: seq - 1, ..gap });
        }
        if seq < gap.to {
            o.gaps.insert(seq + 1, gap);
        }
    }

    /// What to ask for now: gaps past their grace period, or unanswered past the retry time.
    pub fn due(&mut self, now_ms: u64) -> Vec<Wanted> {
        let mut out = Vec::new();
        for (origin, o) in &mut self.origins {
            let mut dead = Vec::new();
            for (&from, gap) in &mut o.gaps {
                let ready = match gap.requested_ms {
                    None => now_ms.saturating_sub(gap.noticed_ms) >= GAP_GRACE_MS,
                    Some(at) => {
                        now_ms.saturating_sub(at) >= RETRY_MS << gap.tries.saturating_sub(1).min(8)
                    }
                };
                if !ready {
                    continue;
                }
                if gap.tries >= MAX_TRIES {
                    dead.push(from);
                    continue;
                }
                gap.tries += 1;
                gap.requested_ms = Some(now_ms);
                out.push(Wanted {
                    origin: origin.clone(),
                    boot_id: o.boot_id,
                    from_seq: from,
                    to_seq: (gap.to + TAIL).min(from + MAX_RANGE - 1),
                });
            }
            for from in dead {
                o.gaps.remove(&from);
                self.abandoned += 1;
            }
        }
        out
    }

    /// When [`GapTracker::due`] next has something to do, in Unix milliseconds (`None`: no
    /// open gap).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.origins
            .values()
            .flat_map(|o| o.gaps.values())
            .map(|gap| match gap.requested_ms {
                None => gap.noticed_ms.saturating_add(GAP_GRACE_MS),
                Some(at) => at.saturating_add(RETRY_MS << gap.tries.saturating_sub(1).min(8)),
            })
            .min()
    }

    /// Open gaps of an origin, as (from, to).
    pub fn gaps(&self, origin: &str) -> Vec<(u64, u64)> {
        self.origins
            .get(origin)
            .map(|o| o.gaps.iter().map(|(f, g)| (*f, g.to)).collect())
            .unwrap_or_default()
    }

    /// How far an origin's frames are held without a hole: the highest sequence number below
    /// which every frame arrived, ignoring holes noticed over [`RING_WINDOW_MS`] ago (the
    /// origin no longer has those frames). `None` for an unknown origin.
    pub fn contiguous(&self, origin: &str, now_ms: u64) -> Option<(u64, u64)> {
        let o = self.origins.get(origin)?;
        let hole = o
            .gaps
            .iter()
            .find(|(_, g)| now_ms.saturating_sub(g.noticed_ms) <= RING_WINDOW_MS)
            .map(|(from, _)| *from);
        Some((o.boot_id, hole.map_or(o.high, |f| f.saturating_sub(1))))
    }

    /// Highest sequence number seen of an origin's current boot.
    pub fn high(&self, origin: &str) -> Option<(u64, u64)> {
        self.origins.get(origin).map(|o| (o.boot_id, o.high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_asks_after_grace_retries_and_gives_up() {
        let mut t = GapTracker::default();
        t.observe("a", 1, 1, 0);
        t.observe("a", 1, 5, 0);
        assert_eq!(t.gaps("a"), vec![(2, 4)]);
        assert!(t.due(1000).is_empty(), "grace period");
        t.observe("a", 1, 3, 1500);
        assert_eq!(
            t.gaps("a"),
            vec![(2, 2), (4, 4)],
            "a late frame splits the gap"
        );
        let w = t.due(2500);
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].from_seq, w[0].to_seq),
            (2, 2 + TAIL),
            "a tail past the gap"
        );
        assert!(t.due(3000).is_empty(), "not again before the retry time");
        assert_eq!(t.due(7500).len(), 2, "retried after 5 s");
        assert!(t.due(17_000).is_empty(), "then after 10 s, 20 s, ...");
        let mut at = 17_500;
        for wait in [20_000, 40_000, 80_000, 160_000] {
            assert_eq!(t.due(at).len(), 2, "try at {at} ms");
            at += wait;
        }
        assert!(
            t.due(at).is_empty() && t.gaps("a").is_empty(),
            "abandoned after 6 tries"
        );
        assert_eq!(t.abandoned, 2);
    }

    #[test]
    fn contiguous_stops_below_the_first_recent_hole() {
        let mut t = GapTracker::default();
        t.observe("a", 1, 1, 0);
        t.observe("a", 1, 2, 0);
        t.observe("a", 1, 5, 0);
        assert_eq!(t.contiguous("a", 0), Some((1, 2)));
        t.observe("a", 1, 3, 0);
        t.observe("a", 1, 4, 0);
        assert_eq!(t.contiguous("a", 0), Some((1, 5)));
        t.observe("a", 1, 9, 0);
        assert_eq!(
            t.contiguous("a", RING_WINDOW_MS + 1),
            Some((1, 9)),
            "old holes cannot be filled"
        );
    }

    #[test]
    fn tracker_resumes_from_the_store_and_resets_on_a_new_boot() {
        let mut t = GapTracker::default();
        t.resume("a", 7, 100);
        t.observe("a", 7, 160, 0);
        assert_eq!(
            t.gaps("a"),
            vec![(101, 159)],
            "the gap since the store's last frame"
        );
        t.observe("a", 8, 3, 0);
        assert!(
            t.gaps("a").is_empty(),
            "a restarted origin's old tail cannot be had"
        );
        assert_eq!(t.high("a"), Some((8, 3)));
    }

    #[test]
    fn frames_lost_downstream_are_asked_for_again_and_merge() {
        let mut t = GapTracker::default();
        for seq in 1..=20 {
            t.observe("a", 7, seq, 0);
        }
        assert!(t.gaps("a").is_empty());
        t.want("a", 7, 5, 5, 100);
        t.want("a", 7, 6, 8, 100);
        t.want("a", 7, 12, 12, 100);
        assert_eq!(t.gaps("a"), [(5, 8), (12, 12)]);
        t.want("a", 7, 9, 11, 100);
        assert_eq!(t.gaps("a"), [(5, 12)], "touching ranges become one");
        t.want("a", 6, 1, 2, 100);
        t.want("a", 7, 30, 31, 100);
        t.want("b", 7, 1, 2, 100);
        assert_eq!(
            t.gaps("a"),
            [(5, 12)],
            "other boot, the future, unknown origin"
        );
        assert_eq!(t.contiguous("a", 100), Some((7, 4)));
        let due = t.due(100 + GAP_GRACE_MS);
        assert_eq!(
            due,
            [Wanted {
                origin: "a".into(),
                boot_id: 7,
                from_seq: 5,
                to_seq: 12 + TAIL,
            }]
        );
        for seq in 5..=12 {
            t.observe("a", 7, seq, 200);
        }
        assert!(t.gaps("a").is_empty());
    }
}
