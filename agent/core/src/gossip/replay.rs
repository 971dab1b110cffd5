//! Backfill through the mesh: a dashboard's requests travel to the origin, and the origin's
//! replays travel back, each along the reverse path (the link on which the destination's
//! newest frame arrived first), flooding only when no route is known. Replayed frames are the
//! origin's original sealed frames, verified end to end and delivered marked as replay: they
//! bypass live de-duplication and must never fire live alerts.
//!
//! Not here: deciding what is missing ([`super::backfill::GapTracker`]) or keeping the
//! origin's frames ([`super::backfill::OwnRing`]).

use super::backfill::REPLAY_CHUNK;
use super::{Action, Delivered, Gossip, Now, PeerId, Space};
use bytes::Bytes;
use meshmon_proto::frame::with_hops;
use meshmon_proto::payload::{ByteBuf, Replay, Role};
use meshmon_proto::{Flags, Frame, Payload};
use tracing::{debug, info, warn};

impl Gossip {
    /// Seals a backfill payload in the replay space and sends it towards its destination.
    pub(super) fn originate_routed(&mut self, now: Now, payload: &Payload, out: &mut Vec<Action>) {
        let dest = match payload {
            Payload::BackfillRequest(r) => r.target.clone(),
            Payload::Replay(r) => r.to.clone(),
            _ => return,
        };
        if let Some((_, bytes)) = self.seal(now, payload, Space::Replay) {
            self.send_routed(&dest, None, bytes, out);
        }
    }

    /// Sends to the route of `dest`, or floods to every node peer but `except`.
    fn send_routed(
        &mut self,
        dest: &str,
        except: Option<PeerId>,
        bytes: Bytes,
        out: &mut Vec<Action>,
    ) {
        if let Some(peer) = self.trees.route(dest)
            && Some(peer) != except
            && let Some(p) = self.peers.get_mut(&peer).filter(|p| p.is_node())
        {
            if p.take_credit() {
                out.push(Action::Send { peer, bytes });
            } else {
                self.counters.dropped += 1;
            }
            return;
        }
        for (&id, p) in self.peers.iter_mut() {
            if Some(id) == except || !p.is_node() {
                continue;
            }
            if p.take_credit() {
                out.push(Action::Send {
                    peer: id,
                    bytes: bytes.clone(),
                });
            } else {
                self.counters.dropped += 1;
            }
        }
    }

    /// An authenticated, new frame of the replay space.
    pub(super) fn on_backfill_frame(
        &mut self,
        now: Now,
        from: PeerId,
        bytes: &Bytes,
        frame: &Frame,
        plain: &[u8],
        out: &mut Vec<Action>,
    ) {
        let payload = match Payload::decode(frame.header.kind, plain) {
            Ok(p) => p,
            Err(error) => {
                debug!(origin = %frame.header.origin, %error, "undecodable backfill frame");
                return;
            }
        };
        let distance = frame.hops.saturating_add(1);
        let dest = match &payload {
            Payload::BackfillRequest(r) if r.target == self.cfg.name => {
                if r.boot_id == self.cfg.boot_id {
                    self.answer(now, &frame.header.origin, r.from_seq, r.to_seq, out);
                }
                return;
            }
            Payload::Replay(r) if r.to == self.cfg.name => {
                self.accept_replay(&frame.header.origin, r, out);
                return;
            }
            Payload::BackfillRequest(r) => r.target.clone(),
            Payload::Replay(r) => r.to.clone(),
            _ => return,
        };
        if self.cfg.role == Role::Viewer || distance >= self.cfg.max_hops {
            return;
        }
        self.send_routed(
            &dest,
            Some(from),
            Bytes::from(with_hops(bytes, distance)),
            out,
        );
    }

    fn answer(&mut self, now: Now, to: &str, from_seq: u64, to_seq: u64, out: &mut Vec<Action>) {
        let frames = self.ring.answer(from_seq, to_seq);
        info!(
            to,
            from_seq,
            to_seq,
            frames = frames.len(),
            "re-sending frames for backfill"
        );
        let mut chunk: Vec<ByteBuf> = Vec::new();
        let mut size = 0;
        let total = frames.len();
        for (i, f) in frames.into_iter().enumerate() {
            size += f.len() + 4;
            chunk.push(ByteBuf::from(f.to_vec()));
            let last = i + 1 == total;
            if size >= REPLAY_CHUNK || last {
                let replay = Payload::Replay(Replay {
                    to: to.to_owned(),
                    frames: std::mem::take(&mut chunk),
                    last,
                });
                self.originate_routed(now, &replay, out);
                size = 0;
            }
        }
    }

    fn accept_replay(&mut self, origin: &str, r: &Replay, out: &mut Vec<Action>) {
        for inner in &r.frames {
            let opened = match self.keyring.open(inner) {
                Ok(o) => o,
                Err(error) => {
                    warn!(origin, %error, "replayed frame does not verify; dropped");
                    self.counters.auth_failures += 1;
                    continue;
                }
            };
            // An origin may only replay its own live frames.
            if opened.header.origin != origin
                || opened.header.flags.contains(Flags::LINK)
                || opened.header.flags.contains(Flags::REPLAY)
            {
                warn!(origin, inner = %opened.header.origin, "replay of a foreign frame; dropped");
                continue;
            }
            if let Some(t) = &mut self.tracker {
                t.observe(
                    origin,
                    opened.header.boot_id,
                    opened.header.seq,
                    u64::MAX / 2,
                );
            }
            match Payload::decode(opened.header.kind, &opened.plaintext) {
                Ok(payload) => out.push(Action::Deliver(Box::new(Delivered {
                    header: opened.header,
                    hops: opened.hops,
                    payload,
                    from: None,
                    replay: true,
                }))),
                Err(error) => debug!(origin, %error, "undecodable replayed frame"),
            }
        }
    }
}
