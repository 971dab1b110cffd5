//! The link protocol of the gossip machine: the three-way hello, heartbeats with credits and
//! round-trip time, the status sent to viewers, and the descriptors handed to newcomers.
//!
//! Not here: gossip frames (trees, de-duplication), which are in the parent module.

use super::dedup::Seen;
use super::peer::Pushed;
use super::tree::{CACHE_FRAMES, HAVES_PER_FRAME, MAX_GRAFT_SPAN};
use super::{Action, Delivered, Gossip, Now, Peer, PeerId, Space};
use bytes::Bytes;
use meshmon_proto::frame::with_hops;
use meshmon_proto::payload::{Graft, Have, Heartbeat, Hello, Role, Status};

/// Hosts per status frame: a host's entry is about 100-150 bytes, a frame at most 64 KiB.
pub const STATUS_HOSTS_PER_FRAME: usize = 300;
use meshmon_proto::{Frame, Header, Kind, Payload};
use tracing::{debug, warn};

/// Most of its own frames, originated while it had no node link, that a node pushes to the
/// first node that joins (the rest are there for backfill).
pub(super) const UNPUSHED_MAX: usize = 10;

impl Gossip {
    /// Sends our Hello on a link, echoing `echo` (the peer's nonce, or 0 to open).
    pub(super) fn send_hello(
        &mut self,
        p: &mut Peer,
        peer: PeerId,
        echo: u64,
        now: Now,
        out: &mut Vec<Action>,
    ) {
        let hello = Payload::Hello(Hello {
            name: self.cfg.name.clone(),
            boot_id: self.cfg.boot_id,
            role: self.cfg.role,
            version: self.cfg.version.clone(),
            window: self.cfg.window,
            nonce: p.nonce,
            echo,
        });
        if let Some(bytes) = self.seal(now, &hello, Space::Link).map(|(_, b)| b) {
            p.echoed = echo;
            out.push(Action::Send { peer, bytes });
        }
    }

    /// Sends a heartbeat on a link, with what the link's broadcast trees have to say: prunes,
    /// grafts and announcements (split over several heartbeats if they do not fit one frame).
    pub(super) fn send_heartbeat(&mut self, peer: PeerId, now: Now, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let (echo_us, held_us) = p
            .echo
            .map_or((0, 0), |(sent, at)| (sent, now.mono_us.saturating_sub(at)));
        let acked = p.received;
        let (mut pending, mut have) = if p.is_node() && self.cfg.role == Role::Node {
            self.trees.take_for(peer, now.mono_us)
        } else {
            Default::default()
        };
        let mut sent = false;
        loop {
            let mut hb = Heartbeat {
                acked,
                sent_us: now.mono_us,
                echo_us,
                held_us,
                ..Heartbeat::default()
            };
            let mut room = HAVES_PER_FRAME;
            let n = pending.prune.len().min(room);
            hb.prune.extend(pending.prune.drain(..n));
            room -= n;
            let n = pending.graft.len().min(room);
            hb.graft.extend(pending.graft.drain(..n));
            room -= n;
            let n = have.len().min(room);
            for (h, hops) in have.drain(..n) {
                hb.have.push(h);
                hb.have_hops.push(hops);
            }
            let Some(bytes) = self
                .seal(now, &Payload::Heartbeat(hb), Space::Link)
                .map(|(_, b)| b)
            else {
                break;
            };
            out.push(Action::Send { peer, bytes });
            sent = true;
            if pending.prune.is_empty() && pending.graft.is_empty() && have.is_empty() {
                break;
            }
        }
        if sent && let Some(p) = self.peers.get_mut(&peer) {
            p.acked_sent = acked;
            p.last_hb_sent_us = now.mono_us;
        }
    }

    /// The tree part of a node peer's heartbeat: it pruned or grafted origins on this link,
    /// and announces the newest frames it holds of origins it no longer pushes to us.
    fn on_tree_control(&mut self, now: Now, from: PeerId, hb: &Heartbeat, out: &mut Vec<Action>) {
        for origin in &hb.prune {
            if self.trees.pruned_by(origin, from) {
                self.counters.grafts += 1;
            }
        }
        for Graft(origin, boot, first, last) in &hb.graft {
            let last = (*last).min(first.saturating_add(MAX_GRAFT_SPAN - 1));
            let frames = self.trees.grafted_by(origin, from, *boot, *first, last);
            debug!(peer = from, %origin, first, last, frames = frames.len(), "graft");
            let Some(p) = self.peers.get_mut(&from) else {
                return;
            };
            let mut short = false;
            for bytes in frames {
                match p.push(&bytes) {
                    Pushed::Sent(bytes) => out.push(Action::Send { peer: from, bytes }),
                    Pushed::Queued => {}
                    Pushed::Dropped => {
                        self.counters.dropped += 1;
                        short = true;
                    }
                }
            }
            // Announced again on the next tick, so the peer's graft is not spent on frames
            // that never left.
            if short {
                self.trees.push_failed(origin, from);
            }
        }
        // Hop counts are used only when there is one per announcement.
        let hops = (hb.have_hops.len() == hb.have.len()).then_some(hb.have_hops.as_slice());
        for (i, have) in hb.have.iter().enumerate() {
            if have.0 == self.cfg.name {
                continue;
            }
            let hops = hops.map_or(u8::MAX, |h| h[i]);
            if let Some(lacking) = self.lacking(have) {
                self.trees
                    .announced(&have.0, from, have, hops, lacking, now.mono_us);
            } else if hops < self.cfg.max_hops
                && self.trees.heard_shorter(&have.0, from, hops, now.mono_us)
            {
                self.counters.grafts += 1;
            }
        }
    }

    /// The oldest frame of an announced origin this node lacks, up to the announced one:
    /// a gap among the last [`CACHE_FRAMES`] the announcer still holds (its tree link lost
    /// them), else the frames after the newest held. `None`: nothing lacking.
    fn lacking(&self, have: &Have) -> Option<u64> {
        let (origin, boot, seq) = (have.0.as_str(), have.1, have.2);
        if self.dedup.check(origin, boot, seq) == Seen::Stale {
            return None;
        }
        let top = self.dedup.top(origin, boot);
        if top == 0 {
            return Some(seq);
        }
        let gap = self.trees.first_seq(origin, boot).and_then(|first| {
            let lo = first.max(seq.saturating_sub(CACHE_FRAMES as u64 - 1));
            self.dedup.first_new(origin, boot, lo..=top.min(seq))
        });
        gap.or_else(|| (seq > top).then_some(top + 1))
    }

    pub(super) fn maybe_ack(&mut self, peer: PeerId, now: Now, out: &mut Vec<Action>) {
        let quarter = u64::from(self.cfg.window / 4).max(1);
        if self
            .peers
            .get(&peer)
            .is_some_and(|p| p.received - p.acked_sent >= quarter)
        {
            self.send_heartbeat(peer, now, out);
        }
    }

    pub(super) fn on_link_frame(
        &mut self,
        now: Now,
        from: PeerId,
        bytes: &[u8],
        frame: &Frame,
        out: &mut Vec<Action>,
    ) {
        let Ok(plain) = self.keyring.open_parsed(bytes, frame) else {
            self.auth_failed(from);
            return;
        };
        let payload = match Payload::decode(frame.header.kind, &plain) {
            Ok(p) => p,
            Err(error) => {
                debug!(peer = from, %error, "undecodable link frame");
                self.counters.malformed += 1;
                self.drop_frame();
                return;
            }
        };
        match payload {
            Payload::Hello(h) => {
                // Heartbeats (and status, for a viewer) start on the next tick.
                self.wake_now(now);
                if h.name == self.cfg.name && h.boot_id == self.cfg.boot_id {
                    warn!(peer = from, "link to itself; dropping it");
                    out.push(Action::Disconnect { peer: from });
                    self.peers.remove(&from);
                    return;
                }
                let Some(mut p) = self.peers.remove(&from) else {
                    return;
                };
                // The three-way hello: answer a new nonce with ours and its echo; accept the
                // link once the peer echoes our nonce. A Hello echoing anything else is a
                // replay from another connection.
                let accepted_now = if h.echo == p.nonce {
                    let first = p.hello.is_none();
                    p.window = u64::from(h.window.max(1));
                    p.hello = Some((h.name, h.role));
                    first
                } else if h.echo == 0 {
                    false
                } else {
                    self.peers.insert(from, p);
                    self.auth_failed(from);
                    return;
                };
                if h.nonce != 0 && p.echoed != h.nonce {
                    self.send_hello(&mut p, from, h.nonce, now, out);
                }
                let joined_node = accepted_now && p.is_node();
                let joined_viewer = accepted_now && p.is_viewer();
                self.peers.insert(from, p);
                // Viewers get the status at once instead of waiting for the next tick.
                if joined_viewer {
                    self.send_status_to(from, now, out);
                }
                // A new neighbour learns every origin's host info and series table at once
                // (it floods them on; nodes that have them drop them as duplicates).
                if (joined_viewer || joined_node) && self.cfg.role == Role::Node {
                    self.send_descriptors_to(from, out);
                }
                if joined_node && self.cfg.role == Role::Node {
                    self.push_unpushed_to(from, out);
                }
            }
            Payload::Heartbeat(hb) => {
                let mut tree = false;
                let mut accepted = false;
                if let Some(p) = self.peers.get_mut(&from).filter(|p| p.hello.is_some()) {
                    p.acked_by_peer = p.acked_by_peer.max(hb.acked.min(p.sent));
                    if hb.echo_us != 0 {
                        let rtt = now
                            .mono_us
                            .saturating_sub(hb.echo_us)
                            .saturating_sub(hb.held_us);
                        p.rtt_us = Some(rtt);
                    }
                    p.echo = Some((hb.sent_us, now.mono_us));
                    tree = p.is_node() && self.cfg.role == Role::Node;
                    accepted = true;
                }
                if accepted {
                    self.observe_clock(from, now, frame.header.ts_ms, hb.echo_us, hb.held_us);
                    self.drain_backlog(from, out);
                }
                if tree {
                    self.on_tree_control(now, from, &hb, out);
                }
            }
            other => {
                if self.cfg.role == Role::Viewer {
                    out.push(Action::Deliver(Box::new(Delivered {
                        header: frame.header.clone(),
                        hops: frame.hops,
                        payload: other,
                        from: Some(from),
                        replay: false,
                    })));
                }
            }
        }
    }

    /// Keeps the latest host info or series table of an origin: the bytes as received, and
    /// the hop count a neighbouring node must see (this node's distance from the origin).
    pub(super) fn remember_descriptor(&mut self, h: &Header, bytes: &Bytes, distance: u8) {
        let slot = match h.kind {
            Kind::HostInfo => 0,
            Kind::SeriesTable => 1,
            _ => return,
        };
        if !self.descriptors.contains_key(&h.origin)
            && self.descriptors.len() >= self.cfg.max_origins
        {
            return;
        }
        self.descriptors.entry(h.origin.clone()).or_default()[slot] =
            Some((bytes.clone(), distance));
    }

    /// Hands a newcomer every origin's latest descriptors: to a node as forwarded (hop count
    /// + 1, like any forwarded frame), to a viewer as received (section 5.5 of PROTOCOL.md).
    pub(super) fn send_descriptors_to(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let viewer = p.is_viewer();
        for (bytes, distance) in self.descriptors.values().flatten().flatten() {
            let bytes = if viewer || bytes.get(1) == Some(distance) {
                bytes.clone()
            } else {
                Bytes::from(with_hops(bytes, *distance))
            };
            if let Some(bytes) = p.send_or_queue(bytes) {
                out.push(Action::Send { peer, bytes });
            }
        }
    }

    /// Sends what waits on `peer`'s backlog, as far as its credits go.
    fn drain_backlog(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        while let Some(bytes) = p.next_from_backlog() {
            out.push(Action::Send { peer, bytes });
        }
    }

    /// Pushes to `peer` (the first node link after a time without any) this node's own
    /// frames that reached no node, at most [`UNPUSHED_MAX`] of the newest, host info and
    /// series table left out (the descriptors just went). The peer floods them on as live
    /// frames.
    fn push_unpushed_to(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        let Some(from) = self.unpushed_from.take() else {
            return;
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let skip = [Kind::HostInfo, Kind::SeriesTable];
        for bytes in self.ring.since(from, UNPUSHED_MAX, &skip) {
            if let Some(bytes) = p.send_or_queue(bytes) {
                out.push(Action::Send { peer, bytes });
            }
        }
    }

    pub(super) fn send_status_to(&mut self, peer: PeerId, now: Now, out: &mut Vec<Action>) {
        let mut full = self.status();
        self.status_epoch += 1;
        let hosts = std::mem::take(&mut full.hosts);
        let pages: Vec<Vec<_>> = if hosts.is_empty() {
            vec![Vec::new()]
        } else {
            hosts
                .chunks(STATUS_HOSTS_PER_FRAME)
                .map(<[_]>::to_vec)
                .collect()
        };
        let parts = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        for (i, page) in pages.into_iter().enumerate() {
            let mut st = if i == 0 {
                full.clone()
            } else {
                Status {
                    node: full.node.clone(),
                    ..Status::default()
                }
            };
            st.hosts = page;
            st.epoch = self.status_epoch;
            st.part = u32::try_from(i).unwrap_or(u32::MAX);
            st.parts = parts;
            let Some(bytes) = self
                .seal(now, &Payload::Status(st), Space::Link)
                .map(|(_, b)| b)
            else {
                return;
            };
            if let Some(p) = self.peers.get_mut(&peer)
                && p.take_credit()
            {
                out.push(Action::Send { peer, bytes });
            }
        }
    }
}
