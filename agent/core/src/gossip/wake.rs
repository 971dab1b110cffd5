//! When the machine next needs [`Input::Tick`](super::Input::Tick). Ticking every 100 ms
//! whether or not anything is due cost an idle node twenty wake-ups a second (each timer
//! 100 ms away also wakes tokio's timer wheel once on the way), the largest part of a
//! lone agent's CPU. Instead every tick plans the next one from what is due: heartbeats, status
//! to viewers, grafts, origins whose next frame would be overdue, dead links, a dashboard's
//! backfill requests, and the housekeeping at least once a second. Inputs that bring work
//! forward (prunes and grafts waiting for a heartbeat, an announcement of a missing frame, a
//! new link or Hello) bring the next tick forward too, in O(1). The socket layer and the
//! simulator round [`Gossip::next_tick_us`] up to their 100 ms grid, so every send happens
//! on the same tick as it would when ticking on every grid point: only empty ticks are
//! skipped.

use super::{Gossip, Now, tree::overdue_after};

/// Housekeeping (the own frames' ring, the graft cache, the frames-in rate) runs at least
/// this often, so a node with nothing else to do ticks once a second.
pub(super) const HOUSEKEEPING_US: u64 = 1_000_000;

/// A heartbeat due within this long goes out on a tick that happens anyway, so the links'
/// heartbeats fall into step and share one wake-up a second instead of one each.
pub(super) const HEARTBEAT_ALIGN_US: u64 = 300_000;

impl Gossip {
    /// Monotonic microseconds by which [`Input::Tick`](super::Input::Tick) must be fed next
    /// (a time in the past: at the next opportunity). Read it again after every input: an
    /// input may bring it forward.
    pub fn next_tick_us(&self) -> u64 {
        self.wake_us
    }

    /// Something that is checked on ticks may be due at once (a new link, Hello, a viewer).
    pub(super) fn wake_now(&mut self, now: Now) {
        self.wake_us = self.wake_us.min(now.mono_us);
    }

    /// After an input other than a tick: prunes or grafts waiting for a heartbeat, and graft
    /// timers armed by announcements, bring the next tick forward.
    pub(super) fn after_input(&mut self, now: Now) {
        if self.trees.any_pending() {
            self.wake_now(now);
        }
        self.wake_us = self.wake_us.min(self.trees.take_wake_hint());
    }

    /// When something due every `period_us`, last done at `last_us`, must go out: on the last
    /// tick before it would be late (with 20 ms of slack for a late tick).
    fn due_at(&self, last_us: u64, period_us: u64) -> u64 {
        let early = self.cfg.tick_us.saturating_add(20_000);
        last_us.saturating_add(period_us.saturating_sub(early))
    }

    /// Whether that time has come ([`Gossip::due_at`]): the rule of ticks and of their plan.
    pub(super) fn due(&self, now: Now, last_us: u64, period_us: u64) -> bool {
        now.mono_us >= self.due_at(last_us, period_us)
    }

    /// A live frame of an origin sending every `interval_ms` arrived: it is overdue (and its
    /// lazy links grafted) 1.5 intervals later.
    pub(super) fn expect_next(&mut self, now: Now, interval_ms: u64) {
        let period = interval_ms.saturating_mul(1000);
        if period > 0 {
            let at = now.mono_us.saturating_add(overdue_after(period));
            self.wake_us = self.wake_us.min(at);
        }
    }

    /// At the end of a tick: the earliest time anything checked on ticks is due.
    pub(super) fn plan_wake(&mut self, now: Now) {
        let mut at = now.mono_us.saturating_add(HOUSEKEEPING_US);
        let mut viewers = false;
        for (id, p) in &self.peers {
            at = at.min(
                p.last_rx_us
                    .saturating_add(self.cfg.dead_after_us)
                    .saturating_add(1),
            );
            if p.hello.is_some() {
                at = at.min(self.due_at(p.last_hb_sent_us, self.cfg.heartbeat_us));
                if self.trees.has_pending(*id) {
                    at = now.mono_us;
                }
            }
            viewers |= p.is_viewer();
        }
        if viewers {
            at = at.min(self.due_at(self.last_status_us, self.cfg.status_every_us));
        }
        let hosts = &self.hosts;
        at = at.min(self.trees.next_graft_us(|origin| {
            hosts
                .get(origin)
                .map(|h| h.interval_ms.saturating_mul(1000))
        }));
        if let Some(due_ms) = self.tracker.as_ref().and_then(|t| t.next_due_ms()) {
            let wait_us = due_ms.saturating_sub(now.wall_ms).saturating_mul(1000);
            at = at.min(now.mono_us.saturating_add(wait_us));
        }
        // Hints from inputs handled during this tick are covered by the scan above.
        self.trees.take_wake_hint();
        self.wake_us = at;
    }
}

/// A shell's ticks on a grid of `tick_us` (multiples of it since the shell's start): the
/// next tick is fed at the first grid point at or after [`Gossip::next_tick_us`], and never
/// twice on one grid point.
#[derive(Debug, Clone)]
pub struct TickGrid {
    tick_us: u64,
    last: Option<u64>,
}

impl TickGrid {
    pub fn new(tick_us: u64) -> TickGrid {
        TickGrid {
            tick_us: tick_us.max(1),
            last: None,
        }
    }

    /// The grid point at which to feed the next tick, for a machine that needs it by `due_us`.
    pub fn next(&self, due_us: u64) -> u64 {
        let at = due_us.div_ceil(self.tick_us).saturating_mul(self.tick_us);
        match self.last {
            Some(last) => at.max(last.saturating_add(self.tick_us)),
            None => at,
        }
    }

    /// A tick was fed at `now_us` (late ticks do not make up for the grid points they missed).
    pub fn fired(&mut self, now_us: u64) {
        self.last = Some(now_us / self.tick_us * self.tick_us);
    }
}
