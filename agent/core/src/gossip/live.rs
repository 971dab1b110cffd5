//! Live gossip frames: accepting them (de-duplication, hop limit, authentication, the host
//! table), delivering them locally and pushing them on along each origin's tree ([`super::tree`]);
//! and originating this node's own.
//!
//! Not here: link frames (`link`) or backfill traffic (`replay`).

use super::dedup::Seen;
use super::peer::Pushed;
use super::tree::{CACHE_FRAMES, Duplicate};
use super::{Action, Delivered, Gossip, Now, PeerId, Space};
use bytes::Bytes;
use meshmon_proto::frame::with_hops;
use meshmon_proto::payload::{Have, HostInfo, HostStatus, Role};
use meshmon_proto::{Flags, Frame, Header, Kind, Payload};
use tracing::debug;

impl Gossip {
    pub(super) fn on_gossip_frame(
        &mut self,
        now: Now,
        from: PeerId,
        bytes: &Bytes,
        frame: Frame,
        out: &mut Vec<Action>,
    ) {
        let h = &frame.header;
        let sender_ok = self.peers.get(&from).is_some_and(|p| match self.cfg.role {
            Role::Node => p.is_node(),
            Role::Viewer => p.hello.is_some(),
        });
        let replay = h.flags.contains(Flags::REPLAY);
        if !sender_ok || h.origin == self.cfg.name {
            // Gossip before Hello, gossip from a viewer, or our own frame coming back (or
            // another live host's with our name: `names`).
            if h.origin != self.cfg.name {
                self.drop_frame();
            } else if sender_ok && !replay && h.boot_id != self.cfg.boot_id {
                self.on_rival_frame(now, from, bytes, &frame, out);
            }
            return;
        }
        // Replay traffic counts in a sequence space of its own; live frames use the origin
        // name as is (no allocation on the hot path).
        let dedup_key: std::borrow::Cow<'_, str> = if replay {
            format!("{}\u{0}replay", h.origin).into()
        } else {
            h.origin.as_str().into()
        };
        match self.dedup.check(&dedup_key, h.boot_id, h.seq) {
            Seen::New => {}
            Seen::Duplicate => {
                self.counters.duplicates += 1;
                // A second copy on a link that pushes this origin: that link is not on the
                // origin's tree (PRUNE, section 6 of PROTOCOL.md). Not so for a descriptor:
                // every join hands the newcomer all of them at once, whatever the trees, so
                // its copy says nothing about the link's path.
                if !replay && self.cfg.role == Role::Node {
                    let dup = if matches!(h.kind, Kind::HostInfo | Kind::SeriesTable) {
                        Duplicate::Nothing
                    } else {
                        self.trees
                            .on_duplicate(&h.origin, h.boot_id, h.seq, frame.hops, from)
                    };
                    match dup {
                        Duplicate::Pruned => self.counters.prunes += 1,
                        Duplicate::Shorter { old_hops } => {
                            self.counters.prunes += 1;
                            // The first copy came too far to be passed on: pass this one on.
                            if old_hops.saturating_add(1) >= self.cfg.max_hops {
                                self.forward_shorter_copy(from, bytes, &frame, out);
                            }
                        }
                        Duplicate::Nothing => {}
                    }
                    if !matches!(dup, Duplicate::Shorter { .. }) {
                        self.keep_shorter_copy(now, bytes, &frame);
                    }
                }
                return;
            }
            Seen::Stale if !replay && self.cfg.role == Role::Node => {
                // Maybe another live host with this name (`names`); else a late frame.
                self.on_rival_frame(now, from, bytes, &frame, out);
                return;
            }
            Seen::Stale => {
                self.drop_frame();
                return;
            }
        }
        if frame.hops >= self.cfg.max_hops && self.cfg.role == Role::Node {
            self.drop_frame();
            return;
        }
        // Only a frame read here is decrypted; one only passed on has its seal verified.
        let wanted = self.reads(frame.header.kind);
        let plain = if replay || wanted {
            self.keyring.open_parsed(bytes, &frame)
        } else {
            self.keyring
                .verify_parsed(bytes, &frame)
                .map(|()| Vec::new())
        };
        let Ok(plain) = plain else {
            self.auth_failed(from);
            return;
        };
        let prev_top = self.dedup.mark(&dedup_key, h.boot_id, h.seq);
        self.counters.accepted += 1;
        if !replay && self.cfg.role == Role::Node && prev_top > 0 && h.seq > prev_top + 1 {
            self.skipped(now, from, &frame, prev_top);
        }
        let distance = frame.hops.saturating_add(1);
        if replay {
            self.on_backfill_frame(now, from, bytes, &frame, &plain, out);
            return;
        }
        let forward =
            (distance < self.cfg.max_hops).then(|| Bytes::from(with_hops(bytes, distance)));
        self.trees.on_frame(
            &frame.header,
            Some(from),
            frame.hops,
            now.mono_us,
            forward.as_ref().filter(|_| self.cfg.role == Role::Node),
        );
        if let Some(t) = &mut self.tracker {
            t.observe(
                &frame.header.origin,
                frame.header.boot_id,
                frame.header.seq,
                now.wall_ms,
            );
        }
        if distance < self.cfg.max_hops {
            self.remember_descriptor(&frame.header, bytes, distance);
        }
        let interval_ms = self.touch_host(&frame.header, distance, now);
        self.expect_next(now, interval_ms);
        self.hear_name(&frame.header.origin, frame.header.boot_id, now);

        if wanted {
            match Payload::decode(frame.header.kind, &plain) {
                Ok(payload) => {
                    if let Payload::HostInfo(info) = &payload {
                        self.set_host_info(&frame.header.origin, info);
                    }
                    out.push(Action::Deliver(Box::new(Delivered {
                        header: frame.header.clone(),
                        hops: frame.hops,
                        payload,
                        from: Some(from),
                        replay: false,
                    })));
                }
                Err(error) => {
                    // Authentic but unreadable (a newer kind): still forwarded below.
                    debug!(origin = %frame.header.origin, %error, "undecodable payload");
                }
            }
        }
        if self.cfg.role == Role::Viewer {
            return;
        }
        self.push(
            &frame.header.origin,
            from,
            Some(bytes),
            forward.as_ref(),
            out,
        );
    }

    /// Pushes a received frame on: to every viewer as received (`to_viewers`), and to the node
    /// peers that are eager for its origin as forwarded (`to_nodes`); the lazy ones hear of it
    /// in their next heartbeat (announcements). Never back to `from`; a peer out of credit
    /// costs a counted drop.
    fn push(
        &mut self,
        origin: &str,
        from: PeerId,
        to_viewers: Option<&Bytes>,
        to_nodes: Option<&Bytes>,
        out: &mut Vec<Action>,
    ) {
        let lazy = self.trees.lazy(origin);
        let mut failed = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            if id == from {
                continue;
            }
            let bytes = if p.is_viewer() {
                to_viewers
            } else if p.is_node() && !lazy.contains(&id) {
                to_nodes
            } else {
                None
            };
            let Some(bytes) = bytes else {
                continue;
            };
            match p.push(bytes) {
                Pushed::Sent(bytes) => out.push(Action::Send { peer: id, bytes }),
                Pushed::Queued => {}
                Pushed::Dropped => {
                    self.counters.dropped += 1;
                    if p.is_node() {
                        failed.push(id);
                    }
                }
            }
        }
        for id in failed {
            self.trees.push_failed(origin, id);
        }
    }

    /// A pushed frame skipped frames after the newest held (`prev_top`): those of them the
    /// sender may still hold are taken as announced by it, and grafted if they have not
    /// arrived by another path meanwhile (section 6 of PROTOCOL.md).
    fn skipped(&mut self, now: Now, from: PeerId, frame: &Frame, prev_top: u64) {
        let h = &frame.header;
        let lo = (prev_top + 1).max(h.seq.saturating_sub(CACHE_FRAMES as u64));
        let Some(first) = self.dedup.first_new(&h.origin, h.boot_id, lo..=h.seq - 1) else {
            return;
        };
        let have = Have(h.origin.clone(), h.boot_id, h.seq - 1);
        self.trees
            .announced(&h.origin, from, &have, frame.hops, first, now.mono_us);
    }

    /// A copy of an accepted frame that came over fewer links than the first, which was too
    /// far to be passed on: verified, then pushed on like a new frame (not delivered again).
    fn forward_shorter_copy(
        &mut self,
        from: PeerId,
        bytes: &Bytes,
        frame: &Frame,
        out: &mut Vec<Action>,
    ) {
        let distance = frame.hops.saturating_add(1);
        if distance >= self.cfg.max_hops || self.keyring.verify_parsed(bytes, frame).is_err() {
            return;
        }
        let forward = Bytes::from(with_hops(bytes, distance));
        self.trees
            .forwarded_shorter(&frame.header.origin, distance, &forward);
        self.push(&frame.header.origin, from, None, Some(&forward), out);
    }

    /// A duplicate of a recent frame that this node holds only from too far away to pass
    /// on (so it could not answer a graft for it) came over fewer links: that copy is kept
    /// for grafts. Without it, a node whose neighbours all got a frame over a long path
    /// after a repair could never fetch it.
    fn keep_shorter_copy(&mut self, now: Now, bytes: &Bytes, frame: &Frame) {
        let h = &frame.header;
        let distance = frame.hops.saturating_add(1);
        if distance >= self.cfg.max_hops
            || !self.trees.wants_copy(&h.origin, h.boot_id, h.seq)
            || self.keyring.verify_parsed(bytes, frame).is_err()
        {
            return;
        }
        let forward = Bytes::from(with_hops(bytes, distance));
        self.trees.keep_copy(
            &h.origin,
            (h.boot_id, h.seq),
            distance,
            now.mono_us,
            &forward,
        );
    }

    /// Records a frame of `h.origin` in the host table; returns the host's interval (0 while
    /// its host info has not come).
    pub(super) fn touch_host(&mut self, h: &Header, hops: u8, now: Now) -> u64 {
        // A known host (every frame but a host's first): no allocation on the hot path.
        if let Some(e) = self.hosts.get_mut(&h.origin) {
            e.boot_id = h.boot_id;
            e.last_seen_ms = now.wall_ms;
            e.hops = hops;
            e.frames += 1;
            return e.interval_ms;
        }
        if self.hosts.len() >= self.cfg.max_origins
            && let Some(oldest) = self
                .hosts
                .values()
                .min_by_key(|e| e.last_seen_ms)
                .map(|e| e.name.clone())
        {
            self.hosts.remove(&oldest);
        }
        let e = self
            .hosts
            .entry(h.origin.clone())
            .or_insert_with(|| HostStatus {
                name: h.origin.clone(),
                ..HostStatus::default()
            });
        if e.boot_id != h.boot_id {
            e.boot_id = h.boot_id;
        }
        e.last_seen_ms = now.wall_ms;
        e.hops = hops;
        e.frames += 1;
        e.interval_ms
    }

    /// Hosts in the host table (this node included once it has sent a frame).
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    pub(super) fn set_host_info(&mut self, origin: &str, info: &HostInfo) {
        if let Some(e) = self.hosts.get_mut(origin) {
            e.version = info.version.clone();
            e.os = info.os.clone();
            e.tags = info.tags.clone();
            e.interval_ms = info.interval_ms;
            e.dashboard = info.dashboard;
        }
    }

    pub(super) fn originate(&mut self, now: Now, payload: Payload, out: &mut Vec<Action>) {
        if self.cfg.role == Role::Viewer || payload.is_link() {
            return;
        }
        if matches!(payload, Payload::BackfillRequest(_) | Payload::Replay(_)) {
            self.originate_routed(now, &payload, out);
            return;
        }
        let Some((header, bytes)) = self.seal(now, &payload, Space::Gossip) else {
            return;
        };
        let key = matches!(&payload, Payload::Samples(s) if s.k);
        self.ring
            .push(header.seq, header.ts_ms, header.kind, key, bytes.clone());
        self.touch_host(&header, 0, now);
        self.remember_descriptor(&header, &bytes, 0);
        self.trees
            .on_frame(&header, None, 0, now.mono_us, Some(&bytes));
        if let Payload::HostInfo(info) = &payload {
            let name = self.cfg.name.clone();
            self.set_host_info(&name, info);
        }
        let lazy = self.trees.lazy(&header.origin);
        let mut reached_a_node = false;
        let mut failed = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            reached_a_node |= p.is_node();
            let push = p.is_viewer() || (p.is_node() && !lazy.contains(&id));
            if !push {
                continue;
            }
            match p.push(&bytes) {
                Pushed::Sent(bytes) => out.push(Action::Send { peer: id, bytes }),
                Pushed::Queued => {}
                Pushed::Dropped if p.is_node() => failed.push(id),
                Pushed::Dropped => {}
            }
        }
        for id in failed {
            self.trees.push_failed(&header.origin, id);
        }
        if !reached_a_node && self.unpushed_from.is_none() {
            self.unpushed_from = Some(header.seq);
        }
        if self.reads(header.kind) {
            out.push(Action::Deliver(Box::new(Delivered {
                header,
                hops: 0,
                payload,
                from: None,
                replay: false,
            })));
        }
    }

    /// Whether frames of `kind` are decoded and delivered here: host info always (the host
    /// table), every kind where a local stage reads samples (`deliver_all`). Live frames of
    /// other kinds that arrive here are verified, not decrypted.
    fn reads(&self, kind: Kind) -> bool {
        self.cfg.deliver_all || kind == Kind::HostInfo
    }
}
