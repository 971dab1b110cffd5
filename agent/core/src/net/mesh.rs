//! The mesh task: the one owner of the gossip state machine. It wires the inbound guard
//! (public port, connections served in-line by `wire`), one link task per configured
//! neighbour, local commands (samples, host info) and a clock tick into [`Gossip`], and
//! performs the actions it returns. Every channel is bounded; a full one drops and counts.
//! Inbound connections and links send their events straight into the one event queue; the
//! task drains up to [`EVENT_BATCH`] of them per wake-up, and never waits on a socket.
//!
//! A viewer (the TUI, `meshmon status`) runs this same task with no listener, one target and
//! the viewer role, so the link protocol exists once.

use super::guard::{self, GuardStats};
use super::link::{self, LinkCmd, LinkEvent, LinkParams};
use super::wire::{self, ConnId, Message};
use super::zmtp::Limits;
use crate::gossip::{
    Action, Delivered, Direction, Gossip, GossipConfig, Input, Now, PeerId, TickGrid,
};
use meshmon_proto::payload::{HostInfo, Status};
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Keyring, Payload, SeriesKey, metrics::Metric};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

/// Capacity of the channel from sockets to the mesh task.
const EVENT_QUEUE: usize = 8192;
/// Capacity of each link task's command channel.
const LINK_QUEUE: usize = 2048;
/// Most events handled per wake-up before the other inputs (commands, tick, shutdown) are
/// looked at again (the task also yields to the others every 128 events, tokio's budget).
pub const EVENT_BATCH: usize = 256;

/// A request from the node to the mesh task.
#[derive(Debug)]
pub enum MeshCommand {
    /// One interval's metric values; mesh metrics are appended here.
    Samples(Vec<(SeriesKey, f64)>),
    /// Host description to gossip.
    HostInfo(HostInfo),
    /// Any other payload this node originates and floods (alert exchange).
    Gossip(Payload),
    /// The node's current view.
    Status(oneshot::Sender<Status>),
    /// What the store already holds of an origin (dashboard nodes, at start).
    Resume {
        origin: String,
        boot_id: u64,
        seq: u64,
    },
    /// Frames lost on the way to the store: ask for them again (dashboard nodes).
    Want(crate::gossip::backfill::Wanted),
}

/// How to run the mesh task.
pub struct MeshParams {
    /// The public listener (already bound), or `None` for a viewer.
    pub listener: Option<TcpListener>,
    /// Targets to dial, `host:port`.
    pub neighbours: Vec<String>,
    pub gossip: GossipConfig,
    pub keyring: Keyring,
    pub limits: Limits,
    /// Where accepted frames go (store, viewer UI); `None` to discard.
    pub deliveries: Option<mpsc::Sender<Delivered>>,
    /// More of the node's own values, added to its samples every interval next to
    /// `mesh.*` (a dashboard node's `remote_write.*`); `None` for none.
    pub own_values: Option<OwnValues>,
}

/// Adds values to the node's own samples; called on the mesh task, so it must not block.
pub type OwnValues = Arc<dyn Fn(&mut Vec<(SeriesKey, f64)>) + Send + Sync>;

/// The running mesh: send commands, read counters.
pub struct MeshHandle {
    pub commands: mpsc::Sender<MeshCommand>,
    pub guard_stats: Arc<GuardStats>,
    /// Frames dropped because a queue was full.
    pub queue_drops: Arc<AtomicU64>,
    /// Hosts this node knows (its host table), for the collector's slot
    /// ([`crate::node::collect_offset_ms`]).
    pub hosts: Arc<AtomicUsize>,
}

fn now(start: Instant) -> Now {
    Now {
        mono_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        wall_ms: wall_ms(),
    }
}

pub use meshmon_proto::clock::wall_ms;

/// What the sockets tell the mesh task, in one queue.
enum NetEvent {
    Inbound(wire::Event),
    Link(LinkEvent),
}

impl From<wire::Event> for NetEvent {
    fn from(e: wire::Event) -> Self {
        Self::Inbound(e)
    }
}

impl From<LinkEvent> for NetEvent {
    fn from(e: LinkEvent) -> Self {
        Self::Link(e)
    }
}

/// Starts the mesh on `tracker`; it runs until `shutdown` is cancelled.
pub async fn start(
    params: MeshParams,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<MeshHandle> {
    let guard_stats = Arc::new(GuardStats::default());
    let queue_drops = Arc::new(AtomicU64::new(0));
    let hosts = Arc::new(AtomicUsize::new(0));
    let (ev_tx, mut ev_rx) = mpsc::channel::<NetEvent>(EVENT_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel::<MeshCommand>(64);

    // Inbound: public listener -> guard, which serves each connection in-line.
    if let Some(listener) = params.listener {
        tracker.spawn(guard::run_inbound(
            listener,
            ev_tx.clone(),
            params.limits.clone(),
            guard_stats.clone(),
            shutdown.clone(),
        ));
    }

    // Outbound: one task per neighbour.
    let mut links = Vec::new();
    for (i, target) in params.neighbours.iter().enumerate() {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        links.push(tx);
        tracker.spawn(link::run(LinkParams {
            link: i,
            target: target.clone(),
            events: ev_tx.clone(),
            commands: rx,
            limits: params.limits.clone(),
            stats: guard_stats.clone(),
            shutdown: shutdown.clone(),
        }));
    }
    drop(ev_tx);

    let mut task = MeshTask {
        gossip: Gossip::new(params.gossip, params.keyring),
        links,
        inbound: HashMap::new(),
        inbound_rev: HashMap::new(),
        outbound: HashMap::new(),
        next_peer: 1,
        deliveries: params.deliveries,
        own_values: params.own_values,
        queue_drops: queue_drops.clone(),
        hosts: hosts.clone(),
        encoder: SampleEncoder::new(),
        start: Instant::now(),
        actions: Vec::new(),
    };
    let stop = shutdown.clone();
    let mut cmd_rx = cmd_rx;
    tracker.spawn(async move {
        // Gossip is ticked on a 100 ms grid, but only when it has something due
        // (`Gossip::next_tick_us`): heartbeats and status go out on the last grid point
        // before they are due, and an idle node wakes about once a second.
        let mut grid = TickGrid::new(crate::gossip::TICK_US);
        let start = task.start;
        let instant =
            move |at_us: u64| tokio::time::Instant::from_std(start + Duration::from_micros(at_us));
        let mut armed = grid.next(task.gossip.next_tick_us());
        let tick = tokio::time::sleep_until(instant(armed));
        tokio::pin!(tick);
        // A viewer drops its command sender: that only disables the branch.
        let mut commands_open = true;
        // Created once: a fresh `cancelled()` per wake-up would register with the token anew.
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                ev = ev_rx.recv() => match ev {
                    Some(ev) => {
                        task.on_net(ev);
                        // Whatever else arrived meanwhile, without going back to select.
                        // `try_recv` does not count against tokio's cooperative budget, so
                        // each event is charged here: under a backlog the task still yields
                        // every 128 events as `recv` alone would, and the connection tasks
                        // (heartbeats, credits), ingest and the router keep running.
                        for _ in 1..EVENT_BATCH {
                            tokio::task::consume_budget().await;
                            match ev_rx.try_recv() {
                                Ok(ev) => task.on_net(ev),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                cmd = cmd_rx.recv(), if commands_open => match cmd {
                    Some(cmd) => task.on_command(cmd),
                    None => commands_open = false,
                },
                () = &mut tick => {
                    grid.fired(now(task.start).mono_us);
                    task.feed(Input::Tick);
                }
            }
            let at = grid.next(task.gossip.next_tick_us());
            if at != armed {
                armed = at;
                tick.as_mut().reset(instant(at));
            }
        }
        debug!("mesh task stopped");
    });
    Ok(MeshHandle {
        commands: cmd_tx,
        guard_stats,
        queue_drops,
        hosts,
    })
}

struct MeshTask {
    gossip: Gossip,
    links: Vec<mpsc::Sender<LinkCmd>>,
    /// Inbound connection -> peer, and peer -> (connection, its handle). Dropping the handle
    /// closes the connection.
    inbound: HashMap<ConnId, PeerId>,
    inbound_rev: HashMap<PeerId, (ConnId, wire::Peer)>,
    /// peer -> (link index, connection number), and the current peer of each link.
    outbound: HashMap<PeerId, (usize, u32)>,
    next_peer: PeerId,
    deliveries: Option<mpsc::Sender<Delivered>>,
    own_values: Option<OwnValues>,
    queue_drops: Arc<AtomicU64>,
    hosts: Arc<AtomicUsize>,
    encoder: SampleEncoder,
    start: Instant,
    actions: Vec<Action>,
}

impl MeshTask {
    fn alloc_peer(&mut self) -> PeerId {
        let id = self.next_peer;
        self.next_peer += 1;
        id
    }

    fn link_peer(&self, link: usize, conn: u32) -> Option<PeerId> {
        self.outbound
            .iter()
            .find(|(_, v)| **v == (link, conn))
            .map(|(k, _)| *k)
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Inbound(wire::Event::Up { conn, peer, .. }) => {
                let p = self.alloc_peer();
                self.inbound.insert(conn, p);
                self.inbound_rev.insert(p, (conn, peer));
                self.feed(Input::PeerUp {
                    peer: p,
                    direction: Direction::In,
                    // PROTOCOL.md 7: status shows accepted links as `inbound`.
                    addr: "inbound".into(),
                });
            }
            NetEvent::Inbound(wire::Event::Message { conn, message }) => {
                if let Some(&peer) = self.inbound.get(&conn) {
                    // Mesh messages are single-part; other parts are ignored (PROTOCOL.md 1).
                    self.feed(Input::Message {
                        peer,
                        bytes: message.first,
                    });
                }
            }
            NetEvent::Inbound(wire::Event::Down { conn }) => {
                if let Some(peer) = self.inbound.remove(&conn) {
                    self.inbound_rev.remove(&peer);
                    self.feed(Input::PeerDown { peer });
                }
            }
            NetEvent::Link(LinkEvent::Up { link, conn, addr }) => {
                let p = self.alloc_peer();
                self.outbound.insert(p, (link, conn));
                self.feed(Input::PeerUp {
                    peer: p,
                    direction: Direction::Out,
                    addr,
                });
            }
            NetEvent::Link(LinkEvent::Down { link, conn }) => {
                if let Some(p) = self.link_peer(link, conn) {
                    self.outbound.remove(&p);
                    self.feed(Input::PeerDown { peer: p });
                }
            }
            NetEvent::Link(LinkEvent::Message { link, conn, bytes }) => {
                if let Some(peer) = self.link_peer(link, conn) {
                    self.feed(Input::Message { peer, bytes });
                }
            }
        }
    }

    fn on_command(&mut self, cmd: MeshCommand) {
        match cmd {
            MeshCommand::Samples(mut values) => {
                self.hosts
                    .store(self.gossip.host_count(), Ordering::Relaxed);
                let c = self.gossip.counters().clone();
                let dropped = c.dropped + self.queue_drops.load(Ordering::Relaxed);
                values.push((
                    SeriesKey::new(Metric::MeshPeers),
                    self.gossip.node_peers() as f64,
                ));
                values.push((
                    SeriesKey::new(Metric::MeshFramesInPerS),
                    c.frames_in_per_s.round(),
                ));
                values.push((SeriesKey::new(Metric::MeshFramesIn), c.frames_in as f64));
                values.push((SeriesKey::new(Metric::MeshFramesDropped), dropped as f64));
                values.push((
                    SeriesKey::new(Metric::MeshAuthFailures),
                    c.auth_failures as f64,
                ));
                values.push((
                    SeriesKey::new(Metric::MeshNameConflicts),
                    self.gossip.name_conflicts() as f64,
                ));
                if let Some(off) = self.gossip.clock_offset_ms() {
                    values.push((SeriesKey::new(Metric::HostClockOffsetMs), off as f64));
                }
                if let Some(own) = &self.own_values {
                    own(&mut values);
                }
                for p in self.encoder.encode(&values) {
                    self.feed(Input::Local(p));
                }
            }
            MeshCommand::HostInfo(info) => self.feed(Input::Local(Payload::HostInfo(info))),
            MeshCommand::Gossip(payload) => self.feed(Input::Local(payload)),
            MeshCommand::Status(reply) => {
                let _ = reply.send(self.gossip.status());
            }
            MeshCommand::Resume {
                origin,
                boot_id,
                seq,
            } => {
                self.feed(Input::Resume {
                    origin,
                    boot_id,
                    seq,
                });
            }
            MeshCommand::Want(w) => self.feed(Input::Want(w)),
        }
    }

    fn feed(&mut self, input: Input) {
        let now = now(self.start);
        let mut actions = std::mem::take(&mut self.actions);
        self.gossip.handle(now, input, &mut actions);
        for a in actions.drain(..) {
            self.perform(a);
        }
        self.actions = actions;
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Send { peer, bytes } => {
                if let Some(&(link, _)) = self.outbound.get(&peer) {
                    if let Some(tx) = self.links.get(link)
                        && tx.try_send(LinkCmd::Send(bytes)).is_err()
                    {
                        self.queue_drops.fetch_add(1, Ordering::Relaxed);
                    }
                } else if let Some((_, conn)) = self.inbound_rev.get(&peer)
                    && conn.try_send(Message::single(bytes)).is_err()
                {
                    // Full (credits keep it from filling) or closed (its Down is queued).
                    self.queue_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            Action::Disconnect { peer } => {
                if let Some((link, _)) = self.outbound.remove(&peer) {
                    if let Some(tx) = self.links.get(link) {
                        let _ = tx.try_send(LinkCmd::Reset);
                    }
                } else {
                    self.forget_inbound(peer);
                }
            }
            Action::Deliver(d) => {
                if let Some(tx) = &self.deliveries
                    && let Err(e) = tx.try_send(*d)
                {
                    self.queue_drops.fetch_add(1, Ordering::Relaxed);
                    // Accepted but not delivered: a dashboard asks for it again (backfill).
                    let d = e.into_inner();
                    if !d.header.flags.contains(meshmon_proto::Flags::LINK) {
                        let want = crate::gossip::backfill::Wanted {
                            origin: d.header.origin,
                            boot_id: d.header.boot_id,
                            from_seq: d.header.seq,
                            to_seq: d.header.seq,
                        };
                        let now = now(self.start);
                        self.gossip.handle(now, Input::Want(want), &mut Vec::new());
                    }
                }
            }
        }
    }

    /// Closes an inbound connection (dropping its handle) and forgets it.
    fn forget_inbound(&mut self, peer: PeerId) {
        if let Some((conn, _handle)) = self.inbound_rev.remove(&peer) {
            self.inbound.remove(&conn);
            info!(peer, "inbound link closed");
        }
    }
}
