//! The event loop of the gossip simulator: the nodes (a real `Gossip` each, with what a real
//! agent originates), the links (dialled, re-dialled, cut, in order like TCP), and one binary
//! heap of events keyed by (time, sequence) so that runs are deterministic for a seed.
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
use meshmon_agent_core::gossip::{Action, Direction, Gossip, GossipConfig, Input, Now, PeerId};
use meshmon_agent_core::net::link::{BACKOFF_CAP, BACKOFF_START};
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

/// The mesh task's tick.
const TICK_US: u64 = 250_000;
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
    Tick(u32),
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
    pub(super) fn new(cfg: &MeshConfig, fault: Fault) -> Result<Sim, SimError> {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let n = cfg.nodes;
        let graph = Graph::random(n, cfg.min_degree, cfg.max_degree, cfg.mean_degree, &mut rng);
        if !graph.connected(&vec![true; n]) {
            return Err(SimError::Config("the random graph is not connected".into()));
        }
        let key = Key::from_base64(KEY).map_err(|e| SimError::Config(format!("key: {e}")))?;
        let keyring =
            Keyring::new(vec![key]).map_err(|e| SimError::Config(format!("keyring: {e}")))?;
        let dashboards: Vec<usize> = (0..cfg.dashboards).collect();
        let mut counted = vec![true; n];
        let mut victims = Vec::new();
        let mut side = vec![0u8; n];
        match fault {
            Fault::Kill => {
                let k = (n as f64 * cfg.kill_fraction).round() as usize;
                victims = graph.victims(k, &dashboards, &mut rng).ok_or_else(|| {
                    SimError::Config(format!("no {k} victims leave the graph connected"))
                })?;
                for &v in &victims {
                    counted[v] = false;
                }
            }
            Fault::Partition => {
                side = graph
                    .halves(&mut rng)
                    .ok_or_else(|| SimError::Config("no two connected halves found".into()))?;
            }
        }
        let side_size = [
            side.iter().filter(|s| **s == 0).count() as u32,
            side.iter().filter(|s| **s == 1).count() as u32,
        ];
        let interval_ms = u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX);
        let mut nodes = Vec::with_capacity(n);
        let mut names = HashMap::with_capacity(n);
        for i in 0..n {
            let name = format!("host-{i:05}");
            let dashboard = i < cfg.dashboards;
            let mut gc = GossipConfig::new(&name, WALL_START_MS * 1000 + i as u64, cfg.max_hops);
            gc.deliver_all = dashboard;
            gc.backfill = dashboard;
            names.insert(name, i as u32);
            nodes.push(Node {
                g: Gossip::new(gc, keyring.clone()),
                alive: true,
                peers: Vec::new(),
                next_peer: 1,
                values: Values::new(
                    i,
                    n,
                    cfg.series.saturating_sub(4).max(3),
                    crate::config::Pattern::RandomWalk,
                    cfg.seed,
                ),
                encoder: SampleEncoder::new(),
                info: HostInfo {
                    os: "Debian GNU/Linux 13 (trixie)".into(),
                    kernel: "6.12.48+deb13-amd64".into(),
                    arch: "x86_64".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    tags: vec!["sim".into(), format!("rack-{}", i % 40)],
                    interval_ms,
                    boot_time_s: WALL_START_MS / 1000 - 86_400 - i as u64,
                    cores: 4 + (i % 4) as u32 * 4,
                    dashboard,
                },
                next_info_us: 0,
                seq: 0,
                rx: [(0, 0); 3],
                deliveries: 0,
            });
        }
        let (lo, hi) = (us(cfg.latency.0), us(cfg.latency.1));
        let links = graph
            .edges
            .iter()
            .map(|&(a, b)| Link {
                a,
                b,
                base_us: if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                },
                up: false,
                conn: 0,
                peer_a: 0,
                peer_b: 0,
                fifo: [0, 0],
                attempt: 0,
                dialing: false,
                backoff_us: us(BACKOFF_START),
                started_us: 0,
            })
            .collect();
        let w0 = us(cfg.warmup);
        let w1 = w0 + us(cfg.measure);
        let (heal_at, end) = match fault {
            Fault::Kill => (w1, w1 + us(cfg.after)),
            Fault::Partition => {
                let h = w1 + us(cfg.partition);
                (h, h + us(cfg.after))
            }
        };
        let judge_from = match fault {
            Fault::Kill => w1.saturating_sub(us(cfg.interval)),
            Fault::Partition => heal_at,
        };
        let survivors = counted.iter().filter(|c| **c).count();
        Ok(Sim {
            cfg: cfg.clone(),
            fault,
            graph,
            rng,
            now: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            events: 0,
            nodes,
            links,
            names,
            frames: vec![Vec::new(); n],
            out: Vec::new(),
            counted,
            survivors,
            victims,
            side,
            side_size,
            partitioned: false,
            w0,
            w1,
            end,
            heal_at,
            judge_from,
            judge_to: end - us(cfg.drain),
            late_us: None,
            heal_last: 0,
            late: 0,
            hist: Histogram::default(),
            memory: (Spread::default(), Spread::default()),
            memory_parts: [0.0; 4],
            dropped_at_w0: 0,
            dropped_in_window: 0,
        })
    }

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
            self.push(tick, Ev::Tick(i as u32));
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
            Ev::Tick(n) => {
                let n = n as usize;
                if self.nodes[n].alive {
                    self.input(n, Input::Tick);
                    self.push(self.now + TICK_US, Ev::Tick(n as u32));
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

    /// Node `n` dropped a link (silent, or talking nonsense): the connection closes; the other
    /// end hears of it if packets get through; a dialler dials again after its backoff.
    fn disconnect(&mut self, n: usize, peer: PeerId) {
        let Some(i) = self.nodes[n].peers.iter().position(|p| p.0 == peer) else {
            return;
        };
        let (_, link, conn) = self.nodes[n].peers.swap_remove(i);
        let link = link as usize;
        self.close(link, conn, n);
        let l = &self.links[link];
        if l.a == n && !l.up && !l.dialing {
            self.redial(link);
        }
    }

    fn close(&mut self, link: usize, conn: u32, by: usize) {
        let l = &self.links[link];
        if !l.up || l.conn != conn {
            return;
        }
        let cut = self.cut(l);
        let (other, at_b) = if l.a == by { (l.b, true) } else { (l.a, false) };
        let at = self.now + l.base_us;
        self.links[link].up = false;
        if !cut && self.nodes[other].alive {
            self.push(
                at,
                Ev::Closed {
                    link: link as u32,
                    conn,
                    at_b,
                },
            );
        }
    }

    fn on_closed(&mut self, link: usize, conn: u32, at_b: bool) {
        let l = &self.links[link];
        let n = if at_b { l.b } else { l.a };
        if !self.nodes[n].alive {
            return;
        }
        let Some(i) = self.nodes[n]
            .peers
            .iter()
            .position(|p| p.1 as usize == link && p.2 == conn)
        else {
            return;
        };
        let (peer, _, _) = self.nodes[n].peers.swap_remove(i);
        self.input(n, Input::PeerDown { peer });
        let l = &self.links[link];
        if !at_b && !l.up && !l.dialing {
            self.redial(link);
        }
    }

    /// The link task's loop: after a connection (or a failed attempt), sleep the backoff plus
    /// up to 99 ms of jitter, then dial again; the backoff doubles up to its cap and starts
    /// over after a connection that lasted 10 s.
    fn redial(&mut self, link: usize) {
        let jitter = self.rng.random_range(0..100_000u64);
        let now = self.now;
        let l = &mut self.links[link];
        if now.saturating_sub(l.started_us) > BACKOFF_RESET_US {
            l.backoff_us = us(BACKOFF_START);
        }
        let at = now + l.backoff_us + jitter;
        l.backoff_us = (l.backoff_us * 2).min(us(BACKOFF_CAP));
        l.attempt += 1;
        l.dialing = true;
        let attempt = l.attempt;
        self.push(
            at,
            Ev::Dial {
                link: link as u32,
                attempt,
                step: 0,
            },
        );
    }

    fn on_dial(&mut self, link: usize, attempt: u32, step: u8) {
        let l = &self.links[link];
        if l.attempt != attempt || l.up {
            return;
        }
        if !self.nodes[l.a].alive {
            self.links[link].dialing = false;
            return;
        }
        if step == 0 {
            self.links[link].started_us = self.now;
        }
        let l = &self.links[link];
        let cut = self.cut(l);
        let reachable = !cut && self.nodes[l.b].alive;
        let refused = !cut && !self.nodes[l.b].alive && self.cfg.kill_mode == KillMode::Exit;
        let link32 = link as u32;
        if reachable {
            // SYN, SYN-ACK, ACK and the ZMTP greeting: about three one-way trips.
            let at = self.now + 3 * l.base_us;
            self.push(
                at,
                Ev::Up {
                    link: link32,
                    attempt,
                },
            );
        } else if refused || step >= 2 {
            self.redial(link);
        } else {
            let wait = if step == 0 {
                SYN_RETRY_US
            } else {
                CONNECT_TIMEOUT_US - SYN_RETRY_US
            };
            self.push(
                self.now + wait,
                Ev::Dial {
                    link: link32,
                    attempt,
                    step: step + 1,
                },
            );
        }
    }

    fn on_up(&mut self, link: usize, attempt: u32) {
        let l = &self.links[link];
        if l.attempt != attempt || l.up || !self.nodes[l.a].alive {
            return;
        }
        let (a, b) = (l.a, l.b);
        if self.cut(l) || !self.nodes[b].alive {
            self.redial(link);
            return;
        }
        let pa = self.nodes[a].next_peer;
        let pb = self.nodes[b].next_peer;
        self.nodes[a].next_peer += 1;
        self.nodes[b].next_peer += 1;
        let now = self.now;
        let l = &mut self.links[link];
        l.up = true;
        l.dialing = false;
        l.conn += 1;
        l.peer_a = pa;
        l.peer_b = pb;
        l.fifo = [now, now];
        let conn = l.conn;
        self.nodes[b].peers.push((pb, link as u32, conn));
        self.nodes[a].peers.push((pa, link as u32, conn));
        self.input(
            b,
            Input::PeerUp {
                peer: pb,
                direction: Direction::In,
                addr: format!("host-{a:05}"),
            },
        );
        self.input(
            a,
            Input::PeerUp {
                peer: pa,
                direction: Direction::Out,
                addr: format!("host-{b:05}:6130"),
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
        self.push(now + us(self.cfg.interval), Ev::Sample(n as u32));
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

    fn report(&self, wall: std::time::Duration) -> Report {
        let window_s = (self.w1 - self.w0) as f64 / 1e6;
        let mut frames: [Vec<f64>; 4] = Default::default();
        let mut bytes: [Vec<f64>; 4] = Default::default();
        let (mut live_rx, mut deliveries) = (0u64, 0u64);
        for node in &self.nodes {
            let (mut f, mut b) = (0, 0);
            for c in 0..3 {
                frames[c].push(node.rx[c].0 as f64 / window_s);
                bytes[c].push(node.rx[c].1 as f64 / window_s);
                f += node.rx[c].0;
                b += node.rx[c].1;
            }
            frames[3].push(f as f64 / window_s);
            bytes[3].push(b as f64 / window_s);
            live_rx += node.rx[LIVE].0;
            deliveries += node.deliveries;
        }
        let spread = |v: &mut [Vec<f64>; 4]| v.each_mut().map(|x| Spread::of(x));
        let steady = Figures {
            window_s,
            rx_frames: spread(&mut frames),
            rx_bytes: spread(&mut bytes),
            rmr: if deliveries == 0 {
                0.0
            } else {
                live_rx as f64 / deliveries as f64 - 1.0
            },
            latency_p50_us: self.hist.quantile(0.5),
            latency_p99_us: self.hist.quantile(0.99),
            latency_max_us: self.hist.max(),
            deliveries,
            memory_total: self.memory.0,
            memory_per_origin: self.memory.1,
            memory_parts: self.memory_parts,
            dropped: self.dropped_in_window,
        };
        // Judging: every counted origin's frames against every other counted node.
        let mut missed = 0u64;
        let mut heal_last = self.heal_last;
        let mut unhealed = false;
        let mut same_side_missed = 0u64;
        let mut cross_lost = 0u64;
        let late = self.late_us.unwrap_or(0);
        let survivors = self.survivors as u64;
        for (o, recs) in self.frames.iter().enumerate() {
            if !self.counted[o] {
                continue;
            }
            let same = u64::from(self.side_size[usize::from(self.side[o])]);
            for r in recs {
                if r.orig_us < self.w0 || r.orig_us > self.judge_to {
                    continue;
                }
                let want = survivors - 1;
                let got = u64::from(r.got);
                let same_got = u64::from(r.got_same_side);
                // A partition: from the last interval before it, same-side misses and losses
                // across the cut are counted apart; only what follows the heal is judged.
                let cut_off = self.w1.saturating_sub(us(self.cfg.interval));
                if self.fault == Fault::Partition && r.orig_us >= cut_off {
                    same_side_missed += (same - 1).saturating_sub(same_got);
                    cross_lost += (survivors - same).saturating_sub(got - same_got);
                    if r.orig_us >= self.judge_from && got < want {
                        heal_last = heal_last.max((r.orig_us + late).saturating_sub(self.heal_at));
                        if r.orig_us + us(self.cfg.interval) > self.judge_to {
                            unhealed = true;
                        }
                    }
                    continue;
                }
                if got < want {
                    missed += want - got;
                    if r.orig_us >= self.judge_from {
                        heal_last = heal_last.max((r.orig_us + late).saturating_sub(self.heal_at));
                        if r.orig_us + us(self.cfg.interval) > self.judge_to {
                            unhealed = true;
                        }
                    }
                }
            }
        }
        // Every counted node knows every counted host, and has heard from it lately.
        let alive: Vec<bool> = self.nodes.iter().map(|n| n.alive).collect();
        let mut hosts_missing = 0u64;
        let mut stale = Vec::new();
        let mut stale_pairs = 0u64;
        let recent_ms = WALL_START_MS + (self.end.saturating_sub(2 * us(self.cfg.interval))) / 1000;
        for (n, node) in self.nodes.iter().enumerate() {
            if !self.counted[n] {
                continue;
            }
            let mut known = 0u64;
            for h in node.g.hosts() {
                let Some(&o) = self.names.get(&h.name) else {
                    continue;
                };
                let o = o as usize;
                if !self.counted[o] {
                    continue;
                }
                known += 1;
                if o != n && h.last_seen_ms < recent_ms {
                    stale_pairs += 1;
                    if stale.len() < 20 {
                        stale.push(Stale {
                            node: n,
                            origin: o,
                            silent_ms: WALL_START_MS + self.end / 1000 - h.last_seen_ms,
                            last_hops: h.hops,
                            distance: self.graph.distances(o, &alive)[n],
                        });
                    }
                }
            }
            hosts_missing += survivors.saturating_sub(known);
        }
        let (mean, min, max) = self.graph.degrees();
        Report {
            nodes: self.nodes.len(),
            edges: self.graph.edges.len(),
            degree: (mean, min, max),
            diameter: self.graph.diameter(&vec![true; self.nodes.len()]),
            diameter_after: self.graph.diameter(&alive),
            fault: self.fault,
            killed: self.victims.len(),
            sim_s: self.end as f64 / 1e6,
            wall,
            events: self.events,
            steady,
            missed,
            hosts_missing,
            stale_pairs,
            stale,
            heal: Heal {
                time_us: heal_last,
                healed: !unhealed,
                late: self.late,
                late_threshold_us: late,
            },
            partition: (self.fault == Fault::Partition).then(|| PartitionFigures {
                half_diameters: [0u8, 1].map(|h| {
                    let mask: Vec<bool> = self.side.iter().map(|s| *s == h).collect();
                    self.graph.diameter(&mask)
                }),
                duration_s: (self.heal_at - self.w1) as f64 / 1e6,
                cut_links: self
                    .links
                    .iter()
                    .filter(|l| self.side[l.a] != self.side[l.b])
                    .count(),
                same_side_missed,
                cross_lost,
            }),
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
