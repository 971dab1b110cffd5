//! Epidemic broadcast trees (Plumtree: Leitão, Pereira, Rodrigues, SRDS 2007), one tree per
//! origin. Every link starts **eager** for every origin: a new frame is pushed on it at once.
//! A frame that arrives twice marks the link it came on **lazy** for that origin, on both
//! sides (PRUNE): from then on only announcements (IHAVE: the newest `(boot, seq)` held) travel
//! on it, batched into the next heartbeat of the link. What survives is a spanning tree per
//! origin made of the links that delivered first, with no duplicates in a stable state. When
//! an announced frame has not arrived [`GRAFT_AFTER_US`] later (a dead or slow tree link), the
//! node asks the announcer for it (GRAFT): the announcer sends the missing frames from its
//! short cache and the link is eager again for that origin, repairing the tree.
//!
//! This module is the bookkeeping only: per origin, which links are lazy, the newest frame and
//! the link it came on first (the reverse path of backfill), a short cache of recent frames
//! for grafts, and the frames announced but missing. Sending is done by the parent module.

use super::PeerId;
use super::hashing::Map;
use bytes::Bytes;
use meshmon_proto::Header;
use meshmon_proto::payload::{Graft, Have};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod graft;
pub(crate) use graft::overdue_after;

/// An announced frame missing this long is grafted from its announcer. Announcements ride
/// the heartbeat (once a second), so the eager copy normally arrived long before.
pub const GRAFT_AFTER_US: u64 = 150_000;
/// A graft unanswered this long is sent again, to the next announcer.
pub const GRAFT_RETRY_US: u64 = 500_000;
/// Tries per missing frame before it is given up (a dashboard's backfill still gets it).
pub const GRAFT_TRIES: u32 = 4;
/// Recent frames are kept this long for grafts...
pub const CACHE_US: u64 = 4_000_000;
/// ...and at most this many per origin.
pub const CACHE_FRAMES: usize = 6;
/// At most this many frames are asked for in one graft.
pub const MAX_GRAFT_SPAN: u64 = 64;
/// Announcements per heartbeat frame (about 25 bytes each; a frame holds at most 64 KiB).
pub const HAVES_PER_FRAME: usize = 1500;
/// An announcement showing a shorter path than the tree's grafts it at most this often per
/// origin (the next frame then arrives on both links, and the longer one is pruned).
pub const SHORTER_EVERY_US: u64 = 2_000_000;

/// Slack added to 1.5 intervals before an origin's next frame is overdue.
pub const OVERDUE_SLACK_US: u64 = 200_000;

/// What a duplicate did to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicate {
    /// The link it came on turned lazy.
    Pruned,
    /// It came over fewer links: its link is the parent now, the old parent was pruned. The
    /// first copy had `old_hops`.
    Shorter { old_hops: u8 },
    /// Nothing changed.
    Nothing,
}

/// One origin's tree, as this node sees it.
#[derive(Debug, Default)]
struct OriginTree {
    /// Links on which this origin's frames are announced, not pushed.
    lazy: Vec<PeerId>,
    /// The link the newest frame came on first (`None`: none, or this node's own frames).
    from: Option<PeerId>,
    /// The newest frame: (boot, seq), when it arrived (monotonic) and its hop count then.
    top: (u64, u64),
    top_us: u64,
    top_hops: u8,
    /// The first seq this node received of the newest boot: frames before it were sent
    /// before this node heard the origin, and are not asked for.
    first: u64,
    /// The hop count the newest frame carries when this node pushes it (0 for its own),
    /// `None` when it is not passed on (it came too far): such frames are not announced,
    /// since a graft could not be answered.
    top_fwd: Option<u8>,
    /// When a shorter path was last grafted for this origin (at most one per
    /// [`SHORTER_EVERY_US`]).
    shorter_us: u64,
    /// The newest frame when its successor was overdue and every lazy link was grafted
    /// (once per newest frame).
    overdue_top: (u64, u64),
    /// Recent frames as this node forwards them: (boot, seq, arrived, bytes).
    recent: VecDeque<(u64, u64, u64, Bytes)>,
}

/// A frame announced but not received.
#[derive(Debug)]
struct Missing {
    boot: u64,
    from_seq: u64,
    to_seq: u64,
    next_us: u64,
    tries: u32,
    /// Who announced it, with the hop count the frame would carry from them (`u8::MAX`:
    /// not said), fewest first: grafts go to the shortest path first.
    announcers: Vec<(PeerId, u8)>,
}

impl Missing {
    fn add(&mut self, peer: PeerId, hops: u8) {
        if self.announcers.iter().any(|(p, _)| *p == peer) {
            return;
        }
        let at = self.announcers.partition_point(|(_, h)| *h <= hops);
        self.announcers.insert(at, (peer, hops));
    }
}

/// What to tell one link in its next heartbeat.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) prune: Vec<String>,
    pub(crate) graft: Vec<Graft>,
}

/// The trees of every origin.
#[derive(Debug, Default)]
pub(crate) struct Trees {
    origins: Map<String, OriginTree>,
    missing: Map<String, Missing>,
    pending: BTreeMap<PeerId, Pending>,
    /// When each link was last sent announcements.
    announced_us: Map<PeerId, u64>,
    /// Links whose announcements go out on the next tick rather than with the next
    /// heartbeat: this node just received a frame it was missing, so the neighbours it
    /// announces that origin to probably miss it too (one dead parent orphans a whole
    /// region, and a repair then crosses it at a round trip per level, not a second).
    announce_now: BTreeSet<PeerId>,
    /// Per link, origins whose newest frame a push could not take to it (the link's credit
    /// window was used up): they are announced to it on the next tick although the link is
    /// eager, so that it grafts them. Without this nothing would tell it of the loss: an
    /// eager link gets no announcements, and a node whose only live link is the parent has
    /// no lazy neighbour to hear from; the drops of a burst hit the same origins every
    /// interval (the burst's order repeats), so the next frame would be lost too.
    owed: BTreeMap<PeerId, BTreeSet<String>>,
    /// Bytes held by the caches.
    cached_bytes: usize,
    max_origins: usize,
    /// The earliest graft timer armed since the gossip machine last looked (`wake`).
    wake_hint: u64,
}

impl Trees {
    pub(crate) fn new(max_origins: usize) -> Trees {
        Trees {
            max_origins: max_origins.max(1),
            ..Trees::default()
        }
    }

    /// The links on which this origin's frames are announced, not pushed (every other link
    /// to a node is eager for it).
    pub(crate) fn lazy(&self, origin: &str) -> &[PeerId] {
        self.origins.get(origin).map_or(&[], |t| t.lazy.as_slice())
    }

    /// The link the newest frame of `origin` came on first: the reverse path towards it.
    pub(crate) fn route(&self, origin: &str) -> Option<PeerId> {
        self.origins.get(origin).and_then(|t| t.from)
    }

    /// A new live frame of `origin` (`from` = `None` for this node's own), with the bytes
    /// this node forwards (kept for grafts; `None` when it is not forwarded).
    pub(crate) fn on_frame(
        &mut self,
        h: &Header,
        from: Option<PeerId>,
        hops: u8,
        now_us: u64,
        bytes: Option<&Bytes>,
    ) {
        let (origin, boot, seq) = (h.origin.as_str(), h.boot_id, h.seq);
        if !self.origins.contains_key(origin) {
            if self.origins.len() >= self.max_origins {
                self.evict();
            }
            self.origins
                .insert(origin.to_owned(), OriginTree::default());
        }
        let Some(t) = self.origins.get_mut(origin) else {
            return;
        };
        if boot > t.top.0 || (boot == t.top.0 && seq < t.first) {
            t.first = seq;
        }
        if (boot, seq) > t.top {
            t.top = (boot, seq);
            t.top_us = now_us;
            t.top_hops = hops;
            t.top_fwd = match from {
                None => Some(0),
                Some(_) => bytes.map(|_| hops.saturating_add(1)),
            };
            t.from = from;
            // The newest frame came first on a link pruned a moment ago (the push crossed
            // the prune, or a repair made it the fastest path): it is the parent now, so
            // the prune is taken back while it still waits for its heartbeat.
            if let Some(p) = from
                && t.lazy.contains(&p)
                && let Some(pending) = self.pending.get_mut(&p)
                && let Some(i) = pending.prune.iter().position(|o| o == origin)
            {
                pending.prune.swap_remove(i);
                t.lazy.retain(|l| *l != p);
                if pending.prune.is_empty() && pending.graft.is_empty() {
                    self.pending.remove(&p);
                }
            }
        }
        if let Some(b) = bytes {
            t.recent.push_back((boot, seq, now_us, b.clone()));
            self.cached_bytes += b.len();
            while t.recent.len() > CACHE_FRAMES {
                if let Some((_, _, _, old)) = t.recent.pop_front() {
                    self.cached_bytes -= old.len();
                }
            }
        }
        if from.is_some()
            && self
                .missing
                .get(origin)
                .is_some_and(|m| m.boot == boot && (m.from_seq..=m.to_seq).contains(&seq))
            && t.top_fwd.is_some()
        {
            self.announce_now
                .extend(t.lazy.iter().filter(|p| Some(**p) != from));
        }
        // A newer boot makes an older boot's missing frames moot; within a boot, what is
        // still missing is checked when the graft is due (`due_grafts`), since a newer frame
        // arriving does not bring the ones before it.
        if self.missing.get(origin).is_some_and(|m| m.boot < boot) {
            self.missing.remove(origin);
        }
    }

    /// A duplicate of `origin` arrived on `peer` with `hops`. Normally that link turns lazy
    /// for the origin ([`Trees::prune`]). But a copy of the newest frame that came over fewer
    /// links than the first one shows a shorter path: then the link it came on becomes the
    /// origin's parent and the old parent is pruned instead, so trees converge to the fewest
    /// hops (first arrivals alone can build deep trees that the hop limit cuts).
    pub(crate) fn on_duplicate(
        &mut self,
        origin: &str,
        boot: u64,
        seq: u64,
        hops: u8,
        peer: PeerId,
    ) -> Duplicate {
        let shorter = self.origins.get(origin).and_then(|t| {
            (t.top == (boot, seq) && hops < t.top_hops)
                .then_some(t.from)
                .flatten()
                .filter(|parent| *parent != peer)
                .map(|parent| (parent, t.top_hops))
        });
        let Some((parent, old_hops)) = shorter else {
            // A late copy of an older frame from the parent of the newest (a repair's gap,
            // frames pushed after a late first link) says nothing about the tree: pruning
            // the parent for it would orphan this node until a graft.
            if self
                .origins
                .get(origin)
                .is_some_and(|t| t.from == Some(peer) && (boot, seq) < t.top)
            {
                return Duplicate::Nothing;
            }
            return if self.prune(origin, peer) {
                Duplicate::Pruned
            } else {
                Duplicate::Nothing
            };
        };
        self.prune(origin, parent);
        if let Some(t) = self.origins.get_mut(origin) {
            t.lazy.retain(|p| *p != peer);
            t.from = Some(peer);
            t.top_hops = hops;
        }
        Duplicate::Shorter { old_hops }
    }

    /// A shorter copy of the newest frame of `origin` is passed on after all (the first came
    /// too far): it is what grafts get from now on, and it is announced.
    pub(crate) fn forwarded_shorter(&mut self, origin: &str, hops: u8, bytes: &Bytes) {
        let Some(t) = self.origins.get_mut(origin) else {
            return;
        };
        t.top_fwd = Some(hops);
        let (boot, seq) = t.top;
        if let Some(r) = t.recent.iter_mut().find(|r| (r.0, r.1) == (boot, seq)) {
            self.cached_bytes = self.cached_bytes - r.3.len() + bytes.len();
            r.3 = bytes.clone();
        } else {
            t.recent.push_back((boot, seq, t.top_us, bytes.clone()));
            self.cached_bytes += bytes.len();
            if t.recent.len() > CACHE_FRAMES
                && let Some((_, _, _, old)) = t.recent.pop_front()
            {
                self.cached_bytes -= old.len();
            }
        }
    }

    /// `peer` announced a frame of `origin` this node already has, reachable over it in
    /// `hops`. When that is fewer hops than this node's copy came over, the link is grafted
    /// (nothing asked for, the push resumes): the next frame arrives on both links and the
    /// longer one is pruned ([`Trees::on_duplicate`]), so trees shorten towards the hop
    /// limit's shortest paths even where no duplicate ever shows them (Plumtree's
    /// optimisation). True when a graft was queued.
    pub(crate) fn heard_shorter(
        &mut self,
        origin: &str,
        peer: PeerId,
        hops: u8,
        now_us: u64,
    ) -> bool {
        let Some(t) = self.origins.get_mut(origin) else {
            return false;
        };
        if t.from.is_none()
            || t.from == Some(peer)
            || hops >= t.top_hops
            || (t.shorter_us > 0 && now_us < t.shorter_us.saturating_add(SHORTER_EVERY_US))
        {
            return false;
        }
        // Only the peer is asked to push: this node keeps announcing to it (a push the other
        // way would reach it as a duplicate, and its prune would undo the graft). When this
        // node's copy of the newest frame came too far to be passed on, that frame is asked
        // for again: the shorter copy is passed on and kept for grafts.
        t.shorter_us = now_us;
        let (boot, seq) = t.top;
        let from = if t.top_fwd.is_none() { seq } else { seq + 1 };
        self.pending
            .entry(peer)
            .or_default()
            .graft
            .push(Graft(origin.to_owned(), boot, from, seq));
        true
    }

    /// Whether a copy of `(boot, seq)` of `origin` that can be passed on would be worth
    /// keeping: the frame is among the recent ones, and this node's copy came too far to be
    /// kept for grafts.
    pub(crate) fn wants_copy(&self, origin: &str, boot: u64, seq: u64) -> bool {
        self.origins.get(origin).is_some_and(|t| {
            t.top.0 == boot
                && seq <= t.top.1
                && seq + CACHE_FRAMES as u64 > t.top.1
                && !t.recent.iter().any(|r| (r.0, r.1) == (boot, seq))
        })
    }

    /// Keeps a copy that can be passed on of a frame this node holds only from too far
    /// away ([`Trees::wants_copy`]), to answer grafts with.
    /// `hops` is the count the copy carries when passed on.
    pub(crate) fn keep_copy(
        &mut self,
        origin: &str,
        (boot, seq): (u64, u64),
        hops: u8,
        now_us: u64,
        bytes: &Bytes,
    ) {
        let Some(t) = self.origins.get_mut(origin) else {
            return;
        };
        if (boot, seq) == t.top && t.top_fwd.is_none() {
            t.top_fwd = Some(hops);
        }
        t.recent.push_back((boot, seq, now_us, bytes.clone()));
        self.cached_bytes += bytes.len();
        while t.recent.len() > CACHE_FRAMES {
            if let Some((_, _, _, old)) = t.recent.pop_front() {
                self.cached_bytes -= old.len();
            }
        }
    }

    /// Queues a graft with an empty range for `peer`: it pushes `origin` again from the frame
    /// after `top`, and resends nothing.
    fn ask_to_push(&mut self, origin: &str, peer: PeerId, (boot, seq): (u64, u64)) {
        self.pending.entry(peer).or_default().graft.push(Graft(
            origin.to_owned(),
            boot,
            seq.saturating_add(1),
            seq,
        ));
    }

    /// A duplicate of `origin` arrived on `peer`: the link turns lazy for it, and the peer is
    /// told to stop pushing (it turns lazy on its side too). False when the link already was
    /// lazy on this side; the peer is told again all the same, since it pushes (a link this
    /// node announces on may still push towards it, after a graft of a shorter path).
    pub(crate) fn prune(&mut self, origin: &str, peer: PeerId) -> bool {
        let Some(t) = self.origins.get_mut(origin) else {
            return false;
        };
        let newly = !t.lazy.contains(&peer);
        if newly {
            t.lazy.push(peer);
        }
        let pending = self.pending.entry(peer).or_default();
        if !pending.prune.iter().any(|o| o == origin) {
            pending.prune.push(origin.to_owned());
        }
        newly
    }

    /// The peer pruned us for `origin`: announce it on that link from now on. When the peer
    /// is this node's parent for the origin (a duplicate pushed the other way made it prune,
    /// typically right after this node took it as the shorter path), it is grafted back with
    /// an empty range at once, so that it keeps pushing: otherwise the tree would lose this
    /// node until an announcement and a graft a second later. True when a graft was queued.
    pub(crate) fn pruned_by(&mut self, origin: &str, peer: PeerId) -> bool {
        let Some(t) = self.origins.get_mut(origin) else {
            return false;
        };
        if !t.lazy.contains(&peer) {
            t.lazy.push(peer);
        }
        if t.from != Some(peer) {
            return false;
        }
        let top = t.top;
        self.ask_to_push(origin, peer, top);
        true
    }

    /// The peer grafted `origin`: push it on that link again. Returns the cached frames of
    /// `boot` with `seq` in `from..=to`, to send at once.
    pub(crate) fn grafted_by(
        &mut self,
        origin: &str,
        peer: PeerId,
        boot: u64,
        from: u64,
        to: u64,
    ) -> Vec<Bytes> {
        let Some(t) = self.origins.get_mut(origin) else {
            return Vec::new();
        };
        t.lazy.retain(|p| *p != peer);
        t.recent
            .iter()
            .filter(|(b, s, _, _)| *b == boot && (from..=to).contains(s))
            .map(|(_, _, _, bytes)| bytes.clone())
            .collect()
    }

    /// The first seq this node received of `origin`'s boot `boot` (`None`: none of it yet).
    /// A frame between it and the newest that never came is a gap worth grafting.
    pub(crate) fn first_seq(&self, origin: &str, boot: u64) -> Option<u64> {
        self.origins
            .get(origin)
            .filter(|t| t.top.0 == boot && t.top.1 > 0)
            .map(|t| t.first)
    }

    /// A push of `origin`'s newest frame to `peer` found no credit: it is announced to the
    /// peer on the next tick instead ([`Trees::take_for`]).
    pub(crate) fn push_failed(&mut self, origin: &str, peer: PeerId) {
        let owed = self.owed.entry(peer).or_default();
        if !owed.contains(origin) {
            owed.insert(origin.to_owned());
        }
        self.announce_now.insert(peer);
    }

    /// Whether the link has prunes or grafts waiting for a heartbeat.
    pub(crate) fn has_pending(&self, peer: PeerId) -> bool {
        self.pending.contains_key(&peer) || self.announce_now.contains(&peer)
    }

    /// Whether any link has prunes, grafts or announcements waiting for the next tick.
    pub(crate) fn any_pending(&self) -> bool {
        !self.pending.is_empty() || !self.announce_now.is_empty()
    }

    /// What the next heartbeat to `peer` carries: its prunes and grafts, and announcements of
    /// every origin that is lazy on that link, advanced since the last ones, and did not come
    /// from it, and of the origins whose push to it failed ([`Trees::push_failed`]).
    /// Announcements are split in frames of [`HAVES_PER_FRAME`].
    pub(crate) fn take_for(&mut self, peer: PeerId, now_us: u64) -> (Pending, Vec<(Have, u8)>) {
        let pending = self.pending.remove(&peer).unwrap_or_default();
        self.announce_now.remove(&peer);
        let owed = self.owed.remove(&peer).unwrap_or_default();
        let since = self.announced_us.insert(peer, now_us).unwrap_or(0);
        let mut haves = Vec::new();
        for (origin, t) in &self.origins {
            let Some(hops) = t.top_fwd else {
                continue;
            };
            let lazy_news = t.top_us >= since && t.lazy.contains(&peer);
            if (lazy_news || owed.contains(origin)) && t.top.1 > 0 && t.from != Some(peer) {
                haves.push((Have(origin.clone(), t.top.0, t.top.1), hops));
            }
        }
        (pending, haves)
    }

    /// A link is gone: forget it everywhere.
    pub(crate) fn peer_down(&mut self, peer: PeerId) {
        for t in self.origins.values_mut() {
            t.lazy.retain(|p| *p != peer);
            if t.from == Some(peer) {
                t.from = None;
            }
        }
        for m in self.missing.values_mut() {
            m.announcers.retain(|(p, _)| *p != peer);
        }
        self.pending.remove(&peer);
        self.announce_now.remove(&peer);
        self.owed.remove(&peer);
        self.announced_us.remove(&peer);
    }

    /// Drops cached frames older than [`CACHE_US`].
    pub(crate) fn prune_cache(&mut self, now_us: u64) {
        let mut freed = 0;
        for t in self.origins.values_mut() {
            while t
                .recent
                .front()
                .is_some_and(|(_, _, at, _)| now_us.saturating_sub(*at) > CACHE_US)
            {
                if let Some((_, _, _, b)) = t.recent.pop_front() {
                    freed += b.len();
                }
            }
        }
        self.cached_bytes -= freed;
    }

    /// Approximate bytes of state: per origin its entry, lazy links and cached frames.
    pub(crate) fn memory(&self) -> usize {
        let per = std::mem::size_of::<OriginTree>() + 48;
        self.origins
            .iter()
            .map(|(k, t)| per + k.len() + t.lazy.capacity() * 8 + t.recent.len() * 48)
            .sum::<usize>()
            + self.cached_bytes
            + self.missing.len() * (std::mem::size_of::<Missing>() + 48)
            + self.owed.values().map(|o| 48 + o.len() * 48).sum::<usize>()
    }

    /// Origins tracked.
    pub(crate) fn len(&self) -> usize {
        self.origins.len()
    }

    /// Links lazy for `origin` (tests and the status).
    #[cfg(test)]
    pub(crate) fn lazy_links(&self, origin: &str) -> Vec<PeerId> {
        self.lazy(origin).to_vec()
    }

    fn evict(&mut self) {
        if let Some(oldest) = self
            .origins
            .iter()
            .min_by_key(|(_, t)| t.top_us)
            .map(|(k, _)| k.clone())
            && let Some(t) = self.origins.remove(&oldest)
        {
            self.cached_bytes -= t.recent.iter().map(|r| r.3.len()).sum::<usize>();
        }
    }
}
