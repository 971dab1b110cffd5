//! The event loop of the gossip simulator: the nodes (a real `Gossip` each, with what a real
//! agent originates), the links (dialled, re-dialled, cut, in order like TCP), and one binary
//! heap of events keyed by (time, sequence) so that runs are deterministic for a seed.
//!
//! Parts: `build` (a run's nodes, links and first events), `links` (connections closing,
//! re-dialling), `figures` (the figures of a finished run).
//!
//! Not here: the graph (`graph`), the statistics types (`measure`), the printed table
//! (`report`).

use super::graph::Graph;
use super::measure::{FrameRec, Histogram, Spread};
use super::report::{Figures, Heal, PartitionFigures, Report, Stale};
use super::{Fault, KillMode, MeshConfig};
use crate::error::SimError;
use crate::values::Values;
use bytes::Bytes;
use meshmon_agent_core::gossip::{
    Action, Direction, Gossip, GossipConfig, Input, Now, PeerId, TickGrid,
};
use meshmon_agent_core::net::link::{BACKOFF_CAP, BACKOFF_START};
use meshmon_agent_core::node::{collect_offset_ms, until_slot};
use meshmon_proto::frame::PROTOCOL_VERSION;
use meshmon_proto::metrics::Metric;
use meshmon_proto::payload::HostInfo;
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Flags, Frame, Key, Keyring, Kind, Payload, SeriesKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

mod build;
mod figures;
mod links;

/// The mesh task's tick: the agent's own (grafts, announcements after a repair and
/// heartbeats go out on ticks, so a slower tick here would slow every repair down).
const TICK_US: u64 = meshmon_agent_core::gossip::TICK_US;
/// Host info is re-sent this often (the agent's `HOST_INFO_EVERY`).
const HOST_INFO_EVERY_US: u64 = 30_000_000;
/// A dial into silence: SYN again after 1 s, give up at 3 s (the link task's connect timeout).
const SYN_RETRY_US: u64 = 1_000_000;
const CONNECT_TIMEOUT_US: u64 = 3_000_000;
/// The link task resets its backoff after a connection that lasted this long.
const BACKOFF_RESET_US: u64 = 10_000_000;
/// Simulated time 0 on the machines' clocks.
const MONO_START_US: u64 = 1_000_000;
const WALL_START_MS: u64 = 1_780_000_000_000;
/// The mesh key every node shares (a fixed one: the seal's cost does not depend on it).
const KEY: &str = "c2ltdWxhdGVkIG1lc2gga2V5IG9mIDMyIGJ5dGVzISE=";

/// Frame classes, as counted per node.
const LIVE: usize = 0;
const CONTROL: usize = 1;
const BACKFILL: usize = 2;

#[derive(Debug)]
enum Ev {
    /// Bytes arriving over connection `conn` of `link`, at its dialled end (`to_b`) or dialler.
    Msg {
        link: u32,
        conn: u32,
        to_b: bool,
        bytes: Bytes,
    },
    /// One end learns that connection `conn` closed.
    Closed {
        link: u32,
        conn: u32,
        at_b: bool,
    },
    /// Dial attempt `attempt`: 0 the SYN, 1 the SYN again, 2 the timeout.
    Dial {
        link: u32,
        attempt: u32,
        step: u8,
    },
    /// The handshake of `attempt` completed.
    Up {
        link: u32,
        attempt: u32,
    },
    /// Node, grid point.
    Tick(u32, u64),
    Sample(u32),
    Fault,
    Heal,
}

struct Entry {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed: the heap pops the earliest (time, sequence) first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    g: Gossip,
    alive: bool,
    /// Current links: (peer id in `g`, link, connection).
    peers: Vec<(PeerId, u32, u32)>,
    next_peer: PeerId,
    values: Values,
    encoder: SampleEncoder,
    info: HostInfo,
    next_info_us: u64,
    /// Ticks as the agent's mesh task feeds them: on a 100 ms grid that starts at `phase`
    /// (simulated µs), only when the machine has something due; `armed` is the grid point
    /// of the tick event that counts (earlier ones pushed are stale).
    grid: TickGrid,
    phase: u64,
    armed: u64,
    /// Live frames originated (the machine numbers them 1, 2, ...).
    seq: u64,
    /// In the measured window: frames and bytes received, per class.
    rx: [(u64, u64); 3],
    /// In the measured window: live frames accepted.
    deliveries: u64,
}

struct Link {
    a: usize,
    b: usize,
    base_us: u64,
    up: bool,
    conn: u32,
    peer_a: PeerId,
    peer_b: PeerId,
    /// Last arrival time scheduled towards b and towards a (links keep order).
    fifo: [u64; 2],
    attempt: u32,
    dialing: bool,
    backoff_us: u64,
    started_us: u64,
}

pub(super) struct Sim {
    cfg: MeshConfig,
    fault: Fault,
    graph: Graph,
    rng: StdRng,
    now: u64,
    heap: BinaryHeap<Entry>,
    seq: u64,
    events: u64,
    nodes: Vec<Node>,
    links: Vec<Link>,
    names: HashMap<String, u32>,
    frames: Vec<Vec<FrameRec>>,
    out: Vec<Action>,
    /// Nodes that count: those that survive the run.
    counted: Vec<bool>,
    survivors: usize,
    victims: Vec<usize>,
    /// Partition side of every node (all 0 without a partition).
    side: Vec<u8>,
    side_size: [u32; 2],
    partitioned: bool,
    // Timeline, simulated µs.
    w0: u64,
    w1: u64,
    end: u64,
    heal_at: u64,
    /// Frames originated in [judge_from, judge_to] are judged late or missing after the fault.
    judge_from: u64,
    judge_to: u64,
    late_us: Option<u64>,
    heal_last: u64,
    late: u64,
    hist: Histogram,
    memory: (Spread, Spread),
    /// Median bytes per origin: dedup, hosts, descriptors, trees.
    memory_parts: [f64; 4],
    dropped_at_w0: u64,
    dropped_in_window: u64,
}

fn class(kind: Kind, flags: Flags) -> usize {
    if flags.contains(Flags::REPLAY) || matches!(kind, Kind::BackfillRequest | Kind::Replay) {
        BACKFILL
    } else if flags.contains(Flags::LINK) {
        CONTROL
    } else if matches!(
        kind,
        Kind::HostInfo | Kind::Samples | Kind::SeriesTable | Kind::AlertSync
    ) {
        LIVE
    } else {
        CONTROL
    }
}

/// The class of a message: read from the first header bytes when they have the usual shape
/// (a six-element MessagePack array whose kind and flags are one byte each), else decoded.
fn peek_class(bytes: &[u8]) -> usize {
    match bytes.get(..7) {
        Some(&[v, _, _, _, 0x96, k, f]) if v == PROTOCOL_VERSION && k < 0x80 && f < 0x80 => {
            class(Kind::from_u8(k), Flags(f))
        }
        _ => Frame::decode(bytes).map_or(CONTROL, |f| class(f.header.kind, f.header.flags)),
    }
}

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Sim {
    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn clock(&self) -> Now {
        Now {
            mono_us: MONO_START_US + self.now,
            wall_ms: WALL_START_MS + self.now / 1000,
        }
    }

    fn in_window(&self, t: u64) -> bool {
        (self.w0..self.w1).contains(&t)
    }

    pub(super) fn run(mut self) -> Result<Report, SimError> {
        let started = Instant::now();
        // Every node starts within the first second: dials its links, ticks, samples.
        for i in 0..self.nodes.len() {
            let start = self.rng.random_range(0..1_000_000u64);
            self.push(start, Ev::Sample(i as u32));
            let tick = start + self.rng.random_range(0..TICK_US);
            self.nodes[i].phase = tick;
            self.push(tick, Ev::Tick(i as u32, 0));
        }
        for l in 0..self.links.len() {
            let at = self.rng.random_range(0..1_000_000u64);
            self.links[l].attempt = 1;
            self.links[l].dialing = true;
            self.push(
                at,
                Ev::Dial {
                    link: l as u32,
                    attempt: 1,
                    step: 0,
                },
            );
        }
        self.push(self.w1, Ev::Fault);
        if self.fault == Fault::Partition {
            self.push(self.heal_at, Ev::Heal);
        }
        let mut window_open = false;
        while let Some(e) = self.heap.pop() {
            if e.at > self.end {
                break;
            }
            self.now = e.at;
            self.events += 1;
            if !window_open && self.now >= self.w0 {
                window_open = true;
                self.dropped_at_w0 = self.nodes.iter().map(|n| n.g.counters().dropped).sum();
            }
            self.step(e.ev);
        }
        self.now = self.end;
        Ok(self.report(started.elapsed()))
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Msg {
                link,
                conn,
                to_b,
                bytes,
            } => self.on_msg(link as usize, conn, to_b, bytes),
            Ev::Closed { link, conn, at_b } => self.on_closed(link as usize, conn, at_b),
            Ev::Dial {
                link,
                attempt,
                step,
            } => self.on_dial(link as usize, attempt, step),
            Ev::Up { link, attempt } => self.on_up(link as usize, attempt),
            Ev::Tick(n, at) => {
                let node = &mut self.nodes[n as usize];
                if node.alive && node.armed == at {
                    node.grid.fired(self.now.saturating_sub(node.phase));
                    self.input(n as usize, Input::Tick);
                }
            }
            Ev::Sample(n) => self.on_sample(n as usize),
            Ev::Fault => self.on_fault(),
            Ev::Heal => self.partitioned = false,
        }
    }

    /// Feeds one input to node `n` and performs its actions.
    fn input(&mut self, n: usize, input: Input) {
        let now = self.clock();
        let mut out = std::mem::take(&mut self.out);
        self.nodes[n].g.handle(now, input, &mut out);
        for a in out.drain(..) {
            match a {
                Action::Send { peer, bytes } => self.send(n, peer, bytes),
                Action::Disconnect { peer } => self.disconnect(n, peer),
                Action::Deliver(_) => {}
            }
        }
        self.out = out;
        // The machine may want its next tick earlier (or, after a tick, later).
        let node = &mut self.nodes[n];
        let due = node
            .g
            .next_tick_us()
            .saturating_sub(MONO_START_US + node.phase);
        let at = node.grid.next(due);
        if node.alive && at != node.armed {
            node.armed = at;
            let when = node.phase + at;
            self.push(when, Ev::Tick(n as u32, at));
        }
    }

    fn cut(&self, l: &Link) -> bool {
        self.partitioned && self.side[l.a] != self.side[l.b]
    }

    fn send(&mut self, n: usize, peer: PeerId, bytes: Bytes) {
        let Some(&(_, link, conn)) = self.nodes[n].peers.iter().find(|p| p.0 == peer) else {
            return;
        };
        let l = &self.links[link as usize];
        if !l.up || l.conn != conn || self.cut(l) {
            return;
        }
        if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
            return;
        }
        let to_b = l.a == n;
        let jitter = if self.cfg.jitter.is_zero() {
            0
        } else {
            let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
            (-(us(self.cfg.jitter) as f64) * u.ln()) as u64
        };
        let l = &mut self.links[link as usize];
        let dir = usize::from(!to_b);
        let at = (self.now + l.base_us + jitter).max(l.fifo[dir]);
        l.fifo[dir] = at;
        self.push(
            at,
            Ev::Msg {
                link,
                conn,
                to_b,
                bytes,
            },
        );
    }

    fn on_msg(&mut self, link: usize, conn: u32, to_b: bool, bytes: Bytes) {
        let l = &self.links[link];
        if !l.up || l.conn != conn || self.cut(l) {
            return;
        }
        let (n, peer) = if to_b {
            (l.b, l.peer_b)
        } else {
            (l.a, l.peer_a)
        };
        if !self.nodes[n].alive {
            return;
        }
        let c = peek_class(&bytes);
        let counting = self.in_window(self.now);
        if counting {
            let rx = &mut self.nodes[n].rx[c];
            rx.0 += 1;
            rx.1 += bytes.len() as u64;
        }
        let before = self.nodes[n].g.counters().accepted;
        let header = (c == LIVE).then(|| bytes.clone());
        self.input(n, Input::Message { peer, bytes });
        if let Some(b) = header
            && self.nodes[n].g.counters().accepted > before
            && let Ok(f) = Frame::decode(&b)
        {
            self.delivered(n, &f.header.origin, f.header.seq, counting);
        }
    }

    fn delivered(&mut self, n: usize, origin: &str, seq: u64, counting: bool) {
        if counting {
            self.nodes[n].deliveries += 1;
        }
        let Some(&o) = self.names.get(origin) else {
            return;
        };
        let o = o as usize;
        let Some(rec) = usize::try_from(seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|s| self.frames[o].get_mut(s))
        else {
            return;
        };
        let latency = self.now - rec.orig_us;
        if (self.w0..self.w1).contains(&rec.orig_us) {
            self.hist.add(latency);
        }
        if self.counted[n] && self.counted[o] {
            rec.got += 1;
            if self.side[n] == self.side[o] {
                rec.got_same_side += 1;
            }
            if let Some(late) = self.late_us
                && (self.judge_from..=self.judge_to).contains(&rec.orig_us)
                && latency > late
            {
                self.late += 1;
                self.heal_last = self.heal_last.max(self.now.saturating_sub(self.heal_at));
            }
        }
    }

    fn on_sample(&mut self, n: usize) {
        if !self.nodes[n].alive {
            return;
        }
        let now = self.now;
        let mut payloads = Vec::with_capacity(3);
        let node = &mut self.nodes[n];
        if now >= node.next_info_us {
            payloads.push(Payload::HostInfo(node.info.clone()));
            node.next_info_us = now + HOST_INFO_EVERY_US;
        }
        let mut values = node.values.take(std::time::Duration::from_micros(now));
        // What the mesh task appends to every interval's values.
        let c = node.g.counters();
        values.push((
            SeriesKey::new(Metric::MeshPeers),
            node.g.node_peers() as f64,
        ));
        values.push((
            SeriesKey::new(Metric::MeshFramesInPerS),
            c.frames_in_per_s.round(),
        ));
        values.push((SeriesKey::new(Metric::MeshFramesDropped), c.dropped as f64));
        values.push((
            SeriesKey::new(Metric::MeshAuthFailures),
            c.auth_failures as f64,
        ));
        payloads.extend(node.encoder.encode(&values));
        for p in payloads {
            self.nodes[n].seq += 1;
            self.frames[n].push(FrameRec {
                orig_us: now,
                got: 0,
                got_same_side: 0,
            });
            self.input(n, Input::Local(p));
        }
        let interval = us(self.cfg.interval).max(1);
        let next = if self.cfg.aligned {
            // The node's next slot on the wall clock (simulated time 0 is a boundary), as the
            // agent picks it from the hosts it knows, plus this collection's own time.
            let name = format!("host-{n:05}");
            let hosts = self.nodes[n].g.host_count();
            let offset = if self.cfg.one_instant {
                0
            } else {
                collect_offset_ms(&name, hosts, interval / 1000) * 1000
            };
            let at = now + 1 + until_slot(now + 1, interval, offset);
            let jitter = us(super::COLLECT_JITTER).max(1);
            at + self.rng.random_range(0..jitter)
        } else {
            now + interval
        };
        self.push(next, Ev::Sample(n as u32));
    }

    fn on_fault(&mut self) {
        // The measured window ends here: the state per node, and the threshold of lateness.
        let mut total = Vec::new();
        let mut per_origin = Vec::new();
        let mut parts: [Vec<f64>; 4] = Default::default();
        for node in &self.nodes {
            let m = node.g.memory();
            let o = m.origins.max(1) as f64;
            total.push(m.total() as f64);
            per_origin.push(m.per_origin() as f64 / o);
            for (v, b) in parts
                .iter_mut()
                .zip([m.dedup, m.hosts, m.descriptors, m.trees])
            {
                v.push(b as f64 / o);
            }
        }
        self.memory = (Spread::of(&mut total), Spread::of(&mut per_origin));
        self.memory_parts = parts.each_mut().map(|v| Spread::of(v).median);
        let dropped: u64 = self.nodes.iter().map(|n| n.g.counters().dropped).sum();
        self.dropped_in_window = dropped - self.dropped_at_w0;
        self.late_us = Some((self.hist.max() as f64 * self.cfg.late_factor) as u64);
        match self.fault {
            Fault::Kill => {
                for v in self.victims.clone() {
                    self.nodes[v].alive = false;
                    if self.cfg.kill_mode == KillMode::Exit {
                        let conns: Vec<(u32, u32)> =
                            self.nodes[v].peers.iter().map(|p| (p.1, p.2)).collect();
                        for (link, conn) in conns {
                            self.close(link as usize, conn, v);
                        }
                    }
                }
            }
            Fault::Partition => self.partitioned = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::Header;

    #[test]
    fn peeked_class_matches_the_decoded_one() {
        let k = Keyring::new(vec![Key::NULL]).expect("ring");
        for (kind, flags, want) in [
            (Kind::Samples, Flags::default(), LIVE),
            (Kind::HostInfo, Flags::default(), LIVE),
            (Kind::Heartbeat, Flags::LINK, CONTROL),
            (Kind::Replay, Flags::REPLAY, BACKFILL),
            (Kind::Other(0x40), Flags::LINK, CONTROL),
        ] {
            let h = Header {
                kind,
                flags,
                origin: "host-00001".into(),
                boot_id: 1_780_000_000_000_000,
                seq: 123_456,
                ts_ms: WALL_START_MS,
            };
            let bytes = k.seal(&h, 3, b"\x90").expect("seals");
            assert_eq!(peek_class(&bytes), want, "{kind:?}");
            let f = Frame::decode(&bytes).expect("decodes");
            assert_eq!(class(f.header.kind, f.header.flags), want);
        }
        assert_eq!(peek_class(b"junk"), CONTROL);
    }
}
