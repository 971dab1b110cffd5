//! Two hosts with one name (cloned VMs share hostnames, and `node.name` defaults to it).
//!
//! De-duplication keeps the newest boot of an origin and drops an older boot's frames, which is
//! right for a restart (one boot replacing another for good) and silently wrong when two live
//! hosts share a name: the one with the higher boot id (the later start) wins everywhere and the
//! other vanishes. This module tells the two cases apart and says so:
//!
//! - Every node notes, per origin name, when it first and last heard each of its (at most two
//!   recent) boots. One name has a **conflict** when two boots were both heard within the last
//!   [`LIVE_US`] and their heard periods overlap by at least [`OVERLAP_US`]: a restart's old
//!   boot falls silent when the new one starts (at most stragglers in flight, or the descriptors
//!   a neighbour hands over on joining), so it never overlaps that long.
//! - The older boot's frames (the losing **rival**) are still checked against an anti-replay
//!   window of their own (`Dedup::check_rival`: the replaced boot's window, so a recorded frame
//!   of a past boot stays a duplicate), opened, and flooded on, but never delivered (no store, alerts,
//!   exporter or viewer sees them): so every node, and both hosts of the name, learn of the
//!   conflict, while what is stored under the name stays one host's data, the higher boot's.
//! - A node that receives live frames with its own name and another boot id logs it at warn
//!   and counts them (`mesh.name_conflicts`), so both hosts of the name say so.
//!
//! Not here: the alert (`duplicate-name`, a built-in rule on `mesh.name_conflicts`) or the
//! marks in `meshmon status` and the TUI (they read [`HostStatus::name_conflict`]).

use super::dedup::Seen;
use super::hashing::Map;
use super::{Action, Gossip, Now, PeerId};
use bytes::Bytes;
use meshmon_proto::Frame;
use meshmon_proto::frame::with_hops;
use meshmon_proto::payload::HostStatus;
use tracing::{info, warn};

/// A boot heard within this long is live.
pub const LIVE_US: u64 = 5_000_000;
/// Two live boots heard side by side for this long are two hosts, not a restart.
pub const OVERLAP_US: u64 = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heard {
    boot: u64,
    first_us: u64,
    last_us: u64,
}

#[derive(Debug, Clone, Default)]
struct NameState {
    /// The two most recently heard boots.
    boots: [Option<Heard>; 2],
    /// A conflict was announced and has not ended.
    conflict: bool,
}

impl NameState {
    fn hear(&mut self, boot: u64, now_us: u64) {
        if let Some(h) = self.boots.iter_mut().flatten().find(|h| h.boot == boot) {
            h.last_us = h.last_us.max(now_us);
            // A boot silent for LIVE_US outside a conflict is gone (a restart's old boot):
            // forget it, so the origin is back on the one-boot fast path.
            if !self.conflict
                && let [Some(a), Some(b)] = self.boots
            {
                let gone = |h: Heard| now_us.saturating_sub(h.last_us) >= LIVE_US;
                if gone(a) {
                    self.boots = [Some(b), None];
                } else if gone(b) {
                    self.boots = [Some(a), None];
                }
            }
            return;
        }
        let heard = Heard {
            boot,
            first_us: now_us,
            last_us: now_us,
        };
        // An empty slot, else the one heard least recently.
        let slot = match self.boots {
            [None, _] => 0,
            [_, None] => 1,
            [Some(a), Some(b)] => usize::from(b.last_us < a.last_us),
        };
        self.boots[slot] = Some(heard);
    }

    /// Both boots live and heard side by side long enough: (winner, loser) boot ids.
    fn clash(&self, now_us: u64) -> Option<(u64, u64)> {
        let [Some(a), Some(b)] = self.boots else {
            return None;
        };
        let live = |h: Heard| now_us.saturating_sub(h.last_us) < LIVE_US;
        let overlap = a
            .last_us
            .min(b.last_us)
            .saturating_sub(a.first_us.max(b.first_us));
        (live(a) && live(b) && overlap >= OVERLAP_US)
            .then(|| (a.boot.max(b.boot), a.boot.min(b.boot)))
    }
}

/// What a frame told [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Started { winner: u64, loser: u64 },
    Ended,
}

/// Per origin name, its recent boots; counters.
#[derive(Debug)]
pub struct Names {
    origins: Map<String, NameState>,
    max_origins: usize,
    /// Frames of another live boot carrying this node's own name (`mesh.name_conflicts`).
    pub own_conflict_frames: u64,
    /// Rival frames flooded on but not delivered, all names.
    pub rival_frames: u64,
}

impl Names {
    /// Tracks at most `max_origins` names.
    pub fn new(max_origins: usize) -> Names {
        Names {
            origins: Map::default(),
            max_origins: max_origins.max(1),
            own_conflict_frames: 0,
            rival_frames: 0,
        }
    }

    fn hear(&mut self, origin: &str, boot: u64, now_us: u64) -> Change {
        if !self.origins.contains_key(origin) {
            if self.origins.len() >= self.max_origins {
                // Forget the name heard least recently.
                if let Some(oldest) = self
                    .origins
                    .iter()
                    .min_by_key(|(_, s)| s.boots.iter().flatten().map(|h| h.last_us).max())
                    .map(|(k, _)| k.clone())
                {
                    self.origins.remove(&oldest);
                }
            }
            self.origins.insert(origin.to_owned(), NameState::default());
        }
        let Some(st) = self.origins.get_mut(origin) else {
            return Change::None;
        };
        st.hear(boot, now_us);
        match (st.clash(now_us), st.conflict) {
            (Some((winner, loser)), false) => {
                st.conflict = true;
                Change::Started { winner, loser }
            }
            (None, true) if st.boots.iter().flatten().any(|h| h.boot == boot) => {
                // Ends once one of the two has been silent for LIVE_US.
                let [Some(a), Some(b)] = st.boots else {
                    st.conflict = false;
                    return Change::Ended;
                };
                let silent = |h: Heard| now_us.saturating_sub(h.last_us) >= LIVE_US;
                if silent(a) || silent(b) {
                    st.conflict = false;
                    Change::Ended
                } else {
                    Change::None
                }
            }
            _ => Change::None,
        }
    }

    /// Whether `origin` is in a conflict (announced and not ended).
    pub fn in_conflict(&self, origin: &str) -> bool {
        self.origins.get(origin).is_some_and(|s| s.conflict)
    }
}

impl Gossip {
    /// An accepted live frame of `origin`'s newest boot (call for every one: one map lookup).
    pub(super) fn hear_name(&mut self, origin: &str, boot: u64, now: Now) {
        if let Some(st) = self.names.origins.get_mut(origin)
            && st.boots.iter().flatten().any(|h| h.boot == boot)
            && !st.conflict
            && st.boots[1].is_none()
        {
            // The common case: one boot, no conflict. Only the time moves.
            st.hear(boot, now.mono_us);
            return;
        }
        let change = self.names.hear(origin, boot, now.mono_us);
        self.announce(origin, change);
    }

    fn announce(&mut self, origin: &str, change: Change) {
        match change {
            Change::Started { winner, loser } => warn!(
                name = %origin, kept_boot = winner, refused_boot = loser,
                "two live hosts use the name '{origin}': frames of the higher boot id are kept, \
                 the other's are not stored; give one a unique node.name"
            ),
            Change::Ended => info!(name = %origin, "only one host uses the name '{origin}' again"),
            Change::None => {}
        }
    }

    /// A live frame that de-duplication called stale, or that carries this node's own name:
    /// when it is another boot's (not a late frame of the current one), it is a rival's. It is
    /// checked against the rivals' window, opened, heard and flooded on to node peers (so every
    /// node and both hosts of the name learn of the conflict), never delivered.
    pub(super) fn on_rival_frame(
        &mut self,
        now: Now,
        from: PeerId,
        bytes: &Bytes,
        frame: &Frame,
        out: &mut Vec<Action>,
    ) {
        let h = &frame.header;
        let own = h.origin == self.cfg.name;
        let current = if own {
            Some(self.cfg.boot_id)
        } else {
            self.dedup.boot(&h.origin)
        };
        if current.is_none_or(|b| b == h.boot_id) {
            // A late frame of the current boot: stale as before.
            if !own {
                self.drop_frame();
            }
            return;
        }
        if self.dedup.check_rival(&h.origin, h.boot_id, h.seq) != Seen::New
            || frame.hops >= self.cfg.max_hops
        {
            if !own {
                self.drop_frame();
            }
            return;
        }
        if self.keyring.verify_parsed(bytes, frame).is_err() {
            self.auth_failed(from);
            return;
        }
        self.dedup.mark_rival(&h.origin, h.boot_id, h.seq);
        self.names.rival_frames += 1;
        let origin = h.origin.clone();
        let boot = h.boot_id;
        let change = if own {
            // This node's boot is live by definition, heard since it started.
            if let Some(st) = self.names.origins.get_mut(&origin) {
                st.hear(self.cfg.boot_id, now.mono_us);
            } else {
                let mut st = NameState::default();
                st.boots[0] = Some(Heard {
                    boot: self.cfg.boot_id,
                    first_us: 0,
                    last_us: now.mono_us,
                });
                self.names.origins.insert(origin.clone(), st);
            }
            let change = self.names.hear(&origin, boot, now.mono_us);
            if self.names.in_conflict(&origin) {
                self.names.own_conflict_frames += 1;
            }
            change
        } else {
            self.names.hear(&origin, boot, now.mono_us)
        };
        if own && let Change::Started { winner, .. } = change {
            let kept = if winner == self.cfg.boot_id {
                "this node's frames are kept"
            } else {
                "the other host's frames are kept (its boot id is higher)"
            };
            warn!(
                name = %origin, other_boot = boot, own_boot = self.cfg.boot_id,
                "another live host uses this node's name '{origin}' (boot {boot}); {kept}; \
                 give one a unique node.name"
            );
        } else {
            self.announce(&origin, change);
        }
        let distance = frame.hops.saturating_add(1);
        if distance >= self.cfg.max_hops {
            return;
        }
        let fwd = Bytes::from(with_hops(bytes, distance));
        for (&id, p) in self.peers.iter_mut() {
            if id != from && p.is_node() && p.take_credit() {
                out.push(Action::Send {
                    peer: id,
                    bytes: fwd.clone(),
                });
            }
        }
    }

    /// Marks the host rows whose name is in conflict.
    pub(super) fn mark_conflicts(&self, hosts: &mut [HostStatus]) {
        for h in hosts {
            h.name_conflict = self.names.in_conflict(&h.name);
        }
    }

    /// Frames of another live host carrying this node's own name (`mesh.name_conflicts`).
    pub fn name_conflicts(&self) -> u64 {
        self.names.own_conflict_frames
    }

    /// Frames of a losing boot flooded on but not delivered.
    pub fn rival_frames(&self) -> u64 {
        self.names.rival_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn a_restart_is_not_a_conflict() {
        let mut n = Names::new(8);
        for t in 0..10 {
            assert_eq!(n.hear("a", 1, t * S), Change::None);
        }
        // Boot 2 starts; a straggler of boot 1 arrives 300 ms later, then only boot 2.
        assert_eq!(n.hear("a", 2, 10 * S), Change::None);
        assert_eq!(n.hear("a", 1, 10 * S + 300_000), Change::None);
        for t in 11..30 {
            assert_eq!(n.hear("a", 2, t * S), Change::None);
        }
        assert!(!n.in_conflict("a"));
        assert!(
            n.origins["a"].boots[1].is_none(),
            "the old boot is forgotten"
        );
    }

    #[test]
    fn two_live_boots_alternating_are_a_conflict_until_one_stops() {
        let mut n = Names::new(8);
        let mut changes = Vec::new();
        for t in 0..6 {
            changes.push(n.hear("dup", 5, t * S));
            changes.push(n.hear("dup", 9, t * S + 500_000));
        }
        assert_eq!(
            changes
                .iter()
                .filter(|c| **c != Change::None)
                .collect::<Vec<_>>(),
            vec![&Change::Started {
                winner: 9,
                loser: 5
            }],
            "announced once"
        );
        assert!(n.in_conflict("dup"));
        // Boot 5 stops; boot 9 goes on: the conflict ends LIVE_US after boot 5's last frame.
        let mut ended = None;
        for t in 6..20 {
            if n.hear("dup", 9, t * S) == Change::Ended {
                ended = Some(t);
                break;
            }
        }
        assert_eq!(ended, Some(10), "5 s after boot 5 was last heard at 5.0 s");
        assert!(!n.in_conflict("dup"));
    }

    #[test]
    fn names_are_bounded() {
        let mut n = Names::new(2);
        n.hear("a", 1, 0);
        n.hear("b", 1, S);
        n.hear("c", 1, 2 * S);
        assert_eq!(n.origins.len(), 2);
        assert!(!n.origins.contains_key("a"), "least recently heard goes");
    }
}
