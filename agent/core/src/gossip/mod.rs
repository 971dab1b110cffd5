//! The gossip state machine, without I/O: fed with inputs (a link came up or went down, bytes
//! arrived from a peer, a local payload to originate, a clock tick) it returns actions (send
//! these bytes to peer P, drop peer P, deliver this frame locally). The socket layer in
//! [`crate::net`] performs them; tests drive it with a fake clock and no sockets.
//!
//! It owns: the link protocol (Hello, Heartbeat, credits, RTT), authentication of every frame
//! at the first hop, de-duplication and anti-replay ([`dedup`]), hop limits, pushing frames
//! along one broadcast tree per origin ([`tree`]), per-peer rate limits, the host table and
//! the status sent to viewers. It does not own sockets, collectors or the store.
//!
//! # Layout
//! - [`dedup`]: per-origin replay windows.
//! - [`peer`]: per-link state, credits, token bucket.
//! - `live`: live gossip frames in and out.
//! - `link`: hello, heartbeats, status and descriptors for newcomers.
//! - [`backfill`]: the origin's ring of recent frames and a dashboard's gap tracker.
//! - [`clock`]: the neighbours' clock offsets from heartbeats, and this node's.
//! - [`names`]: two live hosts with one name (detection, the rivals' frames).
//! - `replay`: routing backfill requests and replays through the mesh.
//! - [`tree`]: epidemic broadcast trees (eager and lazy links per origin, grafts).
//! - `wake`: when the next tick is needed (only ticks with something due are fed).

pub mod backfill;
pub mod clock;
pub mod dedup;
pub mod hashing;
mod link;
mod live;
pub mod memory;
pub mod names;
pub mod peer;
mod replay;
#[cfg(test)]
mod tests;
pub mod tree;
mod wake;

use backfill::{GapTracker, OwnRing};
use bytes::Bytes;
use dedup::Dedup;
use hashing::Map;
use meshmon_proto::payload::{HostStatus, LinkStatus, Role, Status};
use meshmon_proto::{Flags, Frame, Header, Keyring, Kind, Payload};
pub use peer::{Direction, Peer, PeerId};
use std::collections::BTreeMap;
use tracing::{debug, warn};
use tree::Trees;
pub use wake::TickGrid;

/// How often the mesh task ticks the machine by default: heartbeats and status are sent on
/// the last tick before they are due, so they are at most a second apart.
pub const TICK_US: u64 = 100_000;

/// Tunables of the machine. [`GossipConfig::new`] gives the production defaults.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// This node's name (the origin of its frames).
    pub name: String,
    /// This run's boot id.
    pub boot_id: u64,
    /// Node (forwards) or viewer (only receives).
    pub role: Role,
    /// Agent version announced in Hello.
    pub version: String,
    /// Frames travel at most this many links.
    pub max_hops: u8,
    /// Credit window announced to peers.
    pub window: u32,
    /// Heartbeats go out at least this often on every link (they also carry the trees'
    /// announcements, prunes and grafts).
    pub heartbeat_us: u64,
    /// How often the socket layer feeds [`Input::Tick`]; periodic sends are scheduled on the
    /// last tick before they would be late.
    pub tick_us: u64,
    /// A peer silent this long is dropped.
    pub dead_after_us: u64,
    /// Per-peer rate limit, frames per second, and its burst.
    pub peer_rate: u32,
    pub peer_burst: u32,
    /// Origins tracked for de-duplication and in the host table.
    pub max_origins: usize,
    /// Decode and deliver every payload (dashboard nodes, viewers); otherwise only host info.
    pub deliver_all: bool,
    /// Status to viewers this often.
    pub status_every_us: u64,
    /// Track gaps in every origin's sequence and ask for them again (dashboard nodes).
    pub backfill: bool,
}

impl GossipConfig {
    /// Production defaults for a node named `name`.
    pub fn new(name: &str, boot_id: u64, max_hops: u8) -> GossipConfig {
        GossipConfig {
            name: name.to_owned(),
            boot_id,
            role: Role::Node,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_hops,
            window: 1024,
            heartbeat_us: 1_000_000,
            tick_us: TICK_US,
            dead_after_us: 5_000_000,
            peer_rate: 25_000,
            peer_burst: 50_000,
            max_origins: 65_536,
            deliver_all: false,
            status_every_us: 1_000_000,
            backfill: false,
        }
    }
}

/// The time of an input: a monotonic clock for intervals, the wall clock for timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic microseconds.
    pub mono_us: u64,
    /// Milliseconds since the Unix epoch.
    pub wall_ms: u64,
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// A link is connected at the transport level.
    PeerUp {
        peer: PeerId,
        direction: Direction,
        addr: String,
    },
    /// A link is gone.
    PeerDown { peer: PeerId },
    /// One message arrived from a peer.
    Message { peer: PeerId, bytes: Bytes },
    /// Originate a gossip payload from this node.
    Local(Payload),
    /// Time passed (call every [`GossipConfig::tick_us`]).
    Tick,
    /// What the store already holds of an origin (dashboard nodes, at start): frames up to
    /// `seq` of boot `boot_id`. Later gaps from there are asked for.
    Resume {
        origin: String,
        boot_id: u64,
        seq: u64,
    },
    /// Frames this node accepted but lost on the way to its store (a full queue): ask the mesh
    /// for them again (dashboard nodes).
    Want(backfill::Wanted),
}

/// A frame accepted for local consumers.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub header: Header,
    pub hops: u8,
    pub payload: Payload,
    /// The link it came on; `None` for this node's own frames.
    pub from: Option<PeerId>,
    /// Re-sent historic data (backfill), not live: store it, never alert on it.
    pub replay: bool,
}

/// Something for the socket layer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send these bytes to this peer (never blocks: credits were already taken).
    Send { peer: PeerId, bytes: Bytes },
    /// Drop this link (dead, or talking nonsense); outbound links are re-dialled.
    Disconnect { peer: PeerId },
    /// Hand this frame to local consumers.
    Deliver(Box<Delivered>),
}

/// Counters of the whole node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub frames_in: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub dropped: u64,
    pub auth_failures: u64,
    pub malformed: u64,
    pub frames_in_per_s: f64,
    /// Links turned lazy for an origin because a duplicate arrived on them.
    pub prunes: u64,
    /// Grafts sent: an announced frame had not arrived.
    pub grafts: u64,
}

/// The three sequence spaces of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    /// Link-local frames.
    Link,
    /// Live gossip.
    Gossip,
    /// Backfill requests and replays.
    Replay,
}

/// The gossip machine of one node (or viewer).
pub struct Gossip {
    cfg: GossipConfig,
    keyring: Keyring,
    peers: BTreeMap<PeerId, Peer>,
    dedup: Dedup,
    hosts: Map<String, HostStatus>,
    seq: u64,
    link_seq: u64,
    counters: Counters,
    last_status_us: u64,
    rate_mark: (u64, u64),
    /// The latest host-info and series-table frames of every origin, sealed, as received,
    /// with the hop count a neighbouring node must see (this node's distance from the
    /// origin), so a newcomer can name hosts and decode samples at once (bounded like the host
    /// table).
    descriptors: Map<String, [Option<(Bytes, u8)>; 2]>,
    replay_seq: u64,
    status_epoch: u64,
    /// This node's own recent frames, for backfill requests.
    ring: OwnRing,
    /// The first of this node's frames originated while it had no node link (at start, or
    /// cut off): the first node that joins gets them pushed, so that its dashboards see
    /// them live (an alert's identity includes the time of the first frame over its
    /// threshold, and every dashboard node must see that frame).
    unpushed_from: Option<u64>,
    /// Missing sequence ranges per origin (dashboard nodes only).
    tracker: Option<GapTracker>,
    /// Per origin: its broadcast tree (eager and lazy links), the link its newest frame
    /// arrived on first (the reverse path backfill takes), recent frames for grafts.
    trees: Trees,
    /// Clock offset filters per link.
    clocks: clock::Clocks,
    /// Boots heard per origin name: two live hosts with one name.
    names: names::Names,
    /// When the next tick is needed ([`Gossip::next_tick_us`]).
    wake_us: u64,
}

impl Gossip {
    /// A machine with no links yet.
    pub fn new(cfg: GossipConfig, keyring: Keyring) -> Gossip {
        let cfg_backfill = cfg.backfill;
        let cfg_max_origins = cfg.max_origins;
        Gossip {
            dedup: Dedup::new(cfg.max_origins),
            cfg,
            keyring,
            peers: BTreeMap::new(),
            hosts: Map::default(),
            seq: 0,
            link_seq: 0,
            counters: Counters::default(),
            last_status_us: 0,
            rate_mark: (0, 0),
            descriptors: Map::default(),
            replay_seq: 0,
            status_epoch: 0,
            ring: OwnRing::default(),
            unpushed_from: None,
            tracker: cfg_backfill.then(GapTracker::default),
            trees: Trees::new(cfg_max_origins),
            clocks: clock::Clocks::default(),
            names: names::Names::new(cfg_max_origins),
            wake_us: 0,
        }
    }

    /// Feeds one input; actions are appended to `out`.
    pub fn handle(&mut self, now: Now, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::PeerUp {
                peer,
                direction,
                addr,
            } => {
                let mut p = Peer::new(
                    direction,
                    addr,
                    now.mono_us,
                    self.cfg.peer_rate,
                    self.cfg.peer_burst,
                );
                if direction == Direction::Out {
                    self.send_hello(&mut p, peer, 0, now, out);
                }
                self.peers.insert(peer, p);
            }
            Input::PeerDown { peer } => {
                self.peers.remove(&peer);
                self.trees.peer_down(peer);
            }
            Input::Message { peer, bytes } => {
                self.on_message(now, peer, bytes, out);
                self.after_input(now);
                return;
            }
            Input::Local(payload) => {
                self.originate(now, payload, out);
                self.after_input(now);
                return;
            }
            Input::Tick => {
                self.on_tick(now, out);
                self.plan_wake(now);
                return;
            }
            Input::Resume {
                origin,
                boot_id,
                seq,
            } => {
                if let Some(t) = &mut self.tracker {
                    t.resume(&origin, boot_id, seq);
                }
            }
            Input::Want(w) => {
                if let Some(t) = &mut self.tracker {
                    t.want(&w.origin, w.boot_id, w.from_seq, w.to_seq, now.wall_ms);
                }
            }
        }
        // A link up or down, a resume or a want: rare, so the next tick looks at everything.
        self.wake_now(now);
    }

    /// Bytes held by the backfill ring of this node's own frames.
    pub fn ring_memory(&self) -> usize {
        self.ring.memory()
    }

    /// Approximate bytes kept for the broadcast trees (per origin: its links, its newest
    /// frame, recent frames for grafts).
    pub fn tree_memory(&self) -> usize {
        self.trees.memory()
    }

    /// Origins tracked by the broadcast trees.
    pub fn tree_origins(&self) -> usize {
        self.trees.len()
    }

    /// Frames held by the backfill ring.
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }

    /// Open gaps of an origin (dashboard nodes), as (from, to) sequence ranges.
    pub fn gaps(&self, origin: &str) -> Vec<(u64, u64)> {
        self.tracker
            .as_ref()
            .map(|t| t.gaps(origin))
            .unwrap_or_default()
    }

    /// Node-wide counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Peers whose Hello said they are mesh nodes.
    pub fn node_peers(&self) -> usize {
        self.peers.values().filter(|p| p.is_node()).count()
    }

    /// The links, for tests and the status.
    pub fn peers(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    /// The host table, sorted by name.
    pub fn hosts(&self) -> Vec<HostStatus> {
        let mut v: Vec<HostStatus> = self.hosts.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// What viewers are told about this node.
    pub fn status(&self) -> Status {
        let mut hosts = self.hosts();
        self.mark_conflicts(&mut hosts);
        if let Some(me) = hosts.iter_mut().find(|h| h.name == self.cfg.name) {
            me.clock_offset_ms = self.clock_offset_ms();
        }
        Status {
            node: self.cfg.name.clone(),
            hosts,
            links: self
                .peers
                .iter()
                .map(|(id, p)| LinkStatus {
                    clock_offset_ms: self.link_clock_offset_ms(*id),
                    ..p.status()
                })
                .collect(),
            frames_dropped: self.counters.dropped,
            auth_failures: self.counters.auth_failures,
            dashboard: self.hosts.get(&self.cfg.name).is_some_and(|h| h.dashboard),
            ..Status::default()
        }
    }

    pub(crate) fn seal(
        &mut self,
        now: Now,
        payload: &Payload,
        space: Space,
    ) -> Option<(Header, Bytes)> {
        let (counter, flags) = match space {
            Space::Link => (&mut self.link_seq, Flags::LINK),
            Space::Gossip => (&mut self.seq, Flags::default()),
            Space::Replay => (&mut self.replay_seq, Flags::REPLAY),
        };
        *counter += 1;
        let header = Header {
            kind: payload.kind(),
            flags,
            origin: self.cfg.name.clone(),
            boot_id: self.cfg.boot_id,
            seq: *counter,
            ts_ms: now.wall_ms,
        };
        let sealed = payload
            .encode()
            .and_then(|body| self.keyring.seal(&header, 0, &body));
        match sealed {
            Ok(b) => Some((header, Bytes::from(b))),
            Err(error) => {
                warn!(%error, kind = ?payload.kind(), "cannot seal frame");
                None
            }
        }
    }

    fn drop_frame(&mut self) {
        self.counters.dropped += 1;
    }

    fn on_message(&mut self, now: Now, from: PeerId, bytes: Bytes, out: &mut Vec<Action>) {
        self.counters.frames_in += 1;
        let Some(p) = self.peers.get_mut(&from) else {
            self.drop_frame();
            return;
        };
        p.last_rx_us = now.mono_us;
        p.frames_in += 1;
        // Every frame but Hello and Heartbeat costs the sender a credit, whatever happens to it
        // here (malformed, rate-limited, duplicate): count it first so it is acknowledged and
        // a sender is never stalled by frames we dropped.
        let frame = Frame::decode(&bytes);
        let control = frame.as_ref().is_ok_and(|f| {
            f.header.flags.contains(Flags::LINK)
                && matches!(f.header.kind, Kind::Hello | Kind::Heartbeat)
        });
        if !control {
            p.received += 1;
        }
        let limited = !p.bucket.take(now.mono_us);
        if limited {
            p.rate_limited += 1;
        }
        let frame = match frame {
            Ok(f) if !limited => f,
            Ok(_) => {
                self.drop_frame();
                self.maybe_ack(from, now, out);
                return;
            }
            Err(meshmon_proto::DecodeError::Version(v)) => {
                // A node of another protocol version (a mesh mid-upgrade): say so once per link.
                if let Some(p) = self.peers.get_mut(&from)
                    && !p.version_warned
                {
                    p.version_warned = true;
                    warn!(peer = %p.addr, theirs = v, ours = meshmon_proto::PROTOCOL_VERSION,
                        "peer speaks another meshmon protocol version; its frames are dropped \
                         until every node of the mesh runs the same major release");
                }
                self.counters.malformed += 1;
                self.drop_frame();
                self.maybe_ack(from, now, out);
                return;
            }
            Err(error) => {
                debug!(peer = from, %error, "malformed frame");
                self.counters.malformed += 1;
                self.drop_frame();
                self.maybe_ack(from, now, out);
                return;
            }
        };
        let link = frame.header.flags.contains(Flags::LINK);
        if link {
            self.on_link_frame(now, from, &bytes, &frame, out);
        } else {
            self.on_gossip_frame(now, from, &bytes, frame, out);
        }
        self.maybe_ack(from, now, out);
    }

    fn auth_failed(&mut self, from: PeerId) {
        self.counters.auth_failures += 1;
        self.drop_frame();
        if let Some(p) = self.peers.get_mut(&from) {
            p.auth_failures += 1;
        }
    }

    fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        self.ring.prune(now.wall_ms);
        self.trees.prune_cache(now.mono_us);
        // Grafts (and prunes) ride the next heartbeat of their link, sent below at once.
        let dedup = &self.dedup;
        self.counters.grafts += self.trees.due_grafts(now.mono_us, |origin, boot, seq| {
            dedup.check(origin, boot, seq) != dedup::Seen::New
        });
        let hosts = &self.hosts;
        self.counters.grafts += self.trees.graft_overdue(now.mono_us, |origin| {
            hosts
                .get(origin)
                .map(|h| h.interval_ms.saturating_mul(1000))
        });
        let wanted = self
            .tracker
            .as_mut()
            .map(|t| t.due(now.wall_ms))
            .unwrap_or_default();
        for w in wanted {
            debug!(origin = %w.origin, from = w.from_seq, to = w.to_seq, "asking for missing frames");
            let req = Payload::BackfillRequest(meshmon_proto::payload::BackfillRequest {
                target: w.origin,
                boot_id: w.boot_id,
                from_seq: w.from_seq,
                to_seq: w.to_seq,
            });
            self.originate_routed(now, &req, out);
        }
        let dead: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.mono_us.saturating_sub(p.last_rx_us) > self.cfg.dead_after_us)
            .map(|(id, _)| *id)
            .collect();
        for peer in dead {
            if let Some(p) = self.peers.remove(&peer) {
                warn!(peer = %p.addr, name = ?p.hello.as_ref().map(|h| &h.0), "link silent for 5 s; dropping it");
            }
            self.trees.peer_down(peer);
            out.push(Action::Disconnect { peer });
        }
        // Heartbeats almost due go out with the ones that are (`wake`).
        let hb_every = self
            .cfg
            .heartbeat_us
            .saturating_sub(wake::HEARTBEAT_ALIGN_US);
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                p.hello.is_some()
                    && (self.due(now, p.last_hb_sent_us, hb_every) || self.trees.has_pending(**id))
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in due {
            self.send_heartbeat(peer, now, out);
        }
        if self.due(now, self.last_status_us, self.cfg.status_every_us) {
            self.last_status_us = now.mono_us;
            let viewers: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.is_viewer())
                .map(|(id, _)| *id)
                .collect();
            for v in viewers {
                self.send_status_to(v, now, out);
            }
        }
        let (mark_us, mark_in) = self.rate_mark;
        let dt = now.mono_us.saturating_sub(mark_us);
        if dt >= 1_000_000 {
            self.counters.frames_in_per_s =
                (self.counters.frames_in - mark_in) as f64 * 1e6 / dt as f64;
            self.rate_mark = (now.mono_us, self.counters.frames_in);
        }
    }
}
