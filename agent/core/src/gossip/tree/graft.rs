//! Grafts: frames announced but missing, and origins whose next frame is overdue (the
//! repairs of [`super`]'s trees). Sending is done by the gossip module.

use super::{
    GRAFT_AFTER_US, GRAFT_RETRY_US, GRAFT_TRIES, MAX_GRAFT_SPAN, Missing, OVERDUE_SLACK_US, PeerId,
    Trees,
};
use meshmon_proto::payload::{Graft, Have};

/// How long after an origin's newest frame its next one is overdue, for an origin sending
/// every `period_us`: 1.5 intervals and [`OVERDUE_SLACK_US`].
pub(crate) fn overdue_after(period_us: u64) -> u64 {
    (period_us / 2 * 3).saturating_add(OVERDUE_SLACK_US)
}

impl Trees {
    /// `peer` announced `(boot, seq)` of `origin`, and this node lacks frames of that boot
    /// from `from_seq` on (the announced one, or an older one its tree link lost: a gap below
    /// the newest is repaired too, not only a missing newest frame).
    pub(crate) fn announced(
        &mut self,
        origin: &str,
        peer: PeerId,
        h: &Have,
        hops: u8,
        from_seq: u64,
        now_us: u64,
    ) {
        let (boot, seq) = (h.1, h.2);
        let from_seq = from_seq.max(seq.saturating_sub(MAX_GRAFT_SPAN - 1));
        match self.missing.get_mut(origin) {
            Some(m) if m.boot > boot => m.add(peer, hops),
            Some(m) if m.boot == boot => {
                // Widen the range: a newer frame announced, or an older gap found.
                if from_seq < m.from_seq {
                    m.next_us = m.next_us.min(now_us + GRAFT_AFTER_US);
                    self.wake_hint = self.wake_hint.min(m.next_us);
                }
                m.to_seq = m.to_seq.max(seq);
                m.from_seq = m
                    .from_seq
                    .min(from_seq)
                    .max(m.to_seq.saturating_sub(MAX_GRAFT_SPAN - 1));
                m.add(peer, hops);
            }
            _ => {
                if self.missing.len() >= self.max_origins && !self.missing.contains_key(origin) {
                    return;
                }
                self.wake_hint = self.wake_hint.min(now_us + GRAFT_AFTER_US);
                self.missing.insert(
                    origin.to_owned(),
                    Missing {
                        boot,
                        from_seq,
                        to_seq: seq,
                        next_us: now_us + GRAFT_AFTER_US,
                        tries: 0,
                        announcers: vec![(peer, hops)],
                    },
                );
            }
        }
    }

    /// Grafts that are due: each turns the chosen announcer's link eager for the origin and
    /// queues the graft for its next heartbeat ([`Trees::has_pending`]). Returns how many.
    /// `seen(origin, boot, seq)` says whether a frame arrived meanwhile: the range asked for
    /// shrinks to what is still missing, and a range that arrived whole is done.
    pub(crate) fn due_grafts(&mut self, now_us: u64, seen: impl Fn(&str, u64, u64) -> bool) -> u64 {
        let mut grafts = 0;
        let mut done = Vec::new();
        for (origin, m) in self.missing.iter_mut() {
            if now_us < m.next_us {
                continue;
            }
            let oldest = m.from_seq;
            while m.from_seq <= m.to_seq && seen(origin, m.boot, m.from_seq) {
                m.from_seq += 1;
            }
            // The oldest frame asked for came: the tries start again for what is left (an
            // origin whose frames keep coming late would otherwise spend them all and have
            // its newest frame, announced since, given up without a graft).
            if m.from_seq > oldest {
                m.tries = 0;
            }
            while m.to_seq >= m.from_seq && seen(origin, m.boot, m.to_seq) {
                m.to_seq -= 1;
            }
            if m.from_seq > m.to_seq || m.tries >= GRAFT_TRIES || m.announcers.is_empty() {
                done.push(origin.clone());
                continue;
            }
            let peer = m.announcers[m.tries as usize % m.announcers.len()].0;
            m.tries += 1;
            m.next_us = now_us + GRAFT_RETRY_US;
            if let Some(t) = self.origins.get_mut(origin) {
                t.lazy.retain(|p| *p != peer);
            }
            self.pending.entry(peer).or_default().graft.push(Graft(
                origin.clone(),
                m.boot,
                m.from_seq,
                m.to_seq,
            ));
            grafts += 1;
        }
        for o in done {
            self.missing.remove(&o);
        }
        grafts
    }

    /// Origins whose next frame is overdue (their parent died, or the path to it): every
    /// link lazy for the origin is grafted with an empty range, so that whichever neighbour
    /// gets the frames again pushes them at once, and the duplicates prune the tree back to
    /// one parent. Without this, a region cut off by a dead node learns of the frames only
    /// from announcements, one heartbeat per level. `period_of(origin)` is the origin's
    /// interval; a frame is overdue after 1.5 intervals and [`OVERDUE_SLACK_US`]. Once per
    /// newest frame (a dead origin costs one graft per lazy link). Returns the grafts.
    pub(crate) fn graft_overdue(
        &mut self,
        now_us: u64,
        period_of: impl Fn(&str) -> Option<u64>,
    ) -> u64 {
        let mut grafts = 0;
        for (origin, t) in self.origins.iter_mut() {
            if t.from.is_none() || t.lazy.is_empty() || t.overdue_top == t.top {
                continue;
            }
            let Some(period) = period_of(origin).filter(|p| *p > 0) else {
                continue;
            };
            if now_us < t.top_us.saturating_add(overdue_after(period)) {
                continue;
            }
            t.overdue_top = t.top;
            let (boot, seq) = t.top;
            for peer in t.lazy.drain(..) {
                self.pending.entry(peer).or_default().graft.push(Graft(
                    origin.clone(),
                    boot,
                    seq.saturating_add(1),
                    seq,
                ));
                grafts += 1;
            }
        }
        grafts
    }

    /// The earliest graft timer armed since the last call (`u64::MAX`: none), and forgets it.
    pub(crate) fn take_wake_hint(&mut self) -> u64 {
        std::mem::replace(&mut self.wake_hint, u64::MAX)
    }

    /// When [`Trees::due_grafts`] or [`Trees::graft_overdue`] next has something to do
    /// (`u64::MAX`: nothing pending). `period_of` as for [`Trees::graft_overdue`].
    pub(crate) fn next_graft_us(&self, period_of: impl Fn(&str) -> Option<u64>) -> u64 {
        let missing = self.missing.values().map(|m| m.next_us).min();
        let overdue = self
            .origins
            .iter()
            .filter(|(_, t)| t.from.is_some() && !t.lazy.is_empty() && t.overdue_top != t.top)
            .filter_map(|(origin, t)| {
                let period = period_of(origin).filter(|p| *p > 0)?;
                Some(t.top_us.saturating_add(overdue_after(period)))
            })
            .min();
        missing.unwrap_or(u64::MAX).min(overdue.unwrap_or(u64::MAX))
    }
}
