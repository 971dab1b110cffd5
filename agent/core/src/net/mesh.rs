//! The mesh task: the one owner of the gossip state machine and of the internal zmq.rs
//! ROUTER. It wires the inbound guard (public port -> ROUTER), one link task per configured
//! neighbour, local commands (samples, host info) and a clock tick into [`Gossip`], and
//! performs the actions it returns. Every channel is bounded; a full one drops and counts.
//!
//! A viewer (the TUI, `meshmon status`) runs this same task with no listener, one target and
//! the viewer role, so the link protocol exists once.

use super::guard::{self, GuardStats};
use super::link::{self, LinkCmd, LinkEvent, LinkParams};
use super::zmtp::Limits;
use crate::gossip::{Action, Delivered, Direction, Gossip, GossipConfig, Input, Now, PeerId};
use bytes::Bytes;
use meshmon_proto::payload::{HostInfo, Status};
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Keyring, Payload, SeriesKey, metrics::Metric};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// Capacity of the channel from sockets to the mesh task.
const EVENT_QUEUE: usize = 8192;
/// Capacity of each link task's command channel.
const LINK_QUEUE: usize = 2048;
/// How long a send into the ROUTER may take (credits make this immediate in practice).
const ROUTER_SEND_TIMEOUT: Duration = Duration::from_millis(200);

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
}

fn now(start: Instant) -> Now {
    Now {
        mono_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        wall_ms: wall_ms(),
    }
}

pub use meshmon_proto::clock::wall_ms;

enum NetEvent {
    Inbound { identity: Bytes, bytes: Bytes },
    Link(LinkEvent),
}

/// Starts the mesh on `tracker`; it runs until `shutdown` is cancelled.
pub async fn start(
    params: MeshParams,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<MeshHandle> {
    let guard_stats = Arc::new(GuardStats::default());
    let queue_drops = Arc::new(AtomicU64::new(0));
    let (ev_tx, mut ev_rx) = mpsc::channel::<NetEvent>(EVENT_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel::<MeshCommand>(64);

    // Inbound: public listener -> guard -> internal ROUTER on loopback.
    let router_tx = if let Some(listener) = params.listener {
        let internal = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let internal_addr = internal.local_addr()?;
        let mut router = RouterSocket::new();
        router.bind_listener(internal).await?;
        let (router_tx, mut router_rx) = router.split();
        tracker.spawn(guard::run_inbound(
            listener,
            internal_addr,
            params.limits.clone(),
            guard_stats.clone(),
            shutdown.clone(),
        ));
        let ev = ev_tx.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = router_rx.recv() => m,
                };
                let Ok(msg) = msg else { continue };
                let mut parts = msg.into_vec().into_iter();
                let (Some(identity), Some(bytes)) = (parts.next(), parts.next()) else {
                    continue;
                };
                // Waiting here (rather than dropping) is bounded: credits cap what each peer
                // may have in flight, and a frame dropped before gossip counted it would never
                // be acknowledged and would stall its sender. Waiting stops reading the
                // sockets, so TCP pushes back on a sender that ignores its credits.
                if ev
                    .send(NetEvent::Inbound { identity, bytes })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Some(router_tx)
    } else {
        None
    };

    // Outbound: one task per neighbour.
    let (link_ev_tx, mut link_ev_rx) = mpsc::channel::<LinkEvent>(EVENT_QUEUE);
    let mut links = Vec::new();
    for (i, target) in params.neighbours.iter().enumerate() {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        links.push(tx);
        tracker.spawn(link::run(LinkParams {
            link: i,
            target: target.clone(),
            events: link_ev_tx.clone(),
            commands: rx,
            limits: params.limits.clone(),
            stats: guard_stats.clone(),
            shutdown: shutdown.clone(),
        }));
    }
    drop(link_ev_tx);
    {
        let ev = ev_tx.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            loop {
                let e = tokio::select! {
                    _ = stop.cancelled() => break,
                    e = link_ev_rx.recv() => e,
                };
                let Some(e) = e else { break };
                if ev.send(NetEvent::Link(e)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(ev_tx);

    let mut task = MeshTask {
        gossip: Gossip::new(params.gossip, params.keyring),
        router: router_tx,
        links,
        inbound: HashMap::new(),
        inbound_rev: HashMap::new(),
        outbound: HashMap::new(),
        next_peer: 1,
        deliveries: params.deliveries,
        own_values: params.own_values,
        queue_drops: queue_drops.clone(),
        encoder: SampleEncoder::new(),
        start: Instant::now(),
        actions: Vec::new(),
    };
    let stop = shutdown.clone();
    let mut cmd_rx = cmd_rx;
    tracker.spawn(async move {
        // Gossip schedules heartbeats and status on the last tick before they are due, so it
        // is ticked every 100 ms (ten cheap wake-ups a second).
        let mut tick = tokio::time::interval(Duration::from_micros(crate::gossip::TICK_US));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A viewer drops its command sender: that only disables the branch.
        let mut commands_open = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                ev = ev_rx.recv() => match ev {
                    Some(ev) => task.on_net(ev).await,
                    None => break,
                },
                cmd = cmd_rx.recv(), if commands_open => match cmd {
                    Some(cmd) => task.on_command(cmd).await,
                    None => commands_open = false,
                },
                _ = tick.tick() => task.feed(Input::Tick).await,
            }
        }
        debug!("mesh task stopped");
    });
    Ok(MeshHandle {
        commands: cmd_tx,
        guard_stats,
        queue_drops,
    })
}

struct MeshTask {
    gossip: Gossip,
    router: Option<zeromq::RouterSendHalf>,
    links: Vec<mpsc::Sender<LinkCmd>>,
    /// ROUTER identity -> peer, and back.
    inbound: HashMap<Bytes, PeerId>,
    inbound_rev: HashMap<PeerId, Bytes>,
    /// peer -> (link index, connection number), and the current peer of each link.
    outbound: HashMap<PeerId, (usize, u32)>,
    next_peer: PeerId,
    deliveries: Option<mpsc::Sender<Delivered>>,
    own_values: Option<OwnValues>,
    queue_drops: Arc<AtomicU64>,
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

    async fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Inbound { identity, bytes } => {
                let peer = match self.inbound.get(&identity) {
                    Some(p) => *p,
                    None => {
                        let p = self.alloc_peer();
                        self.inbound.insert(identity.clone(), p);
                        self.inbound_rev.insert(p, identity);
                        self.feed(Input::PeerUp {
                            peer: p,
                            direction: Direction::In,
                            addr: "inbound".into(),
                        })
                        .await;
                        p
                    }
                };
                self.feed(Input::Message { peer, bytes }).await;
            }
            NetEvent::Link(LinkEvent::Up { link, conn, addr }) => {
                let p = self.alloc_peer();
                self.outbound.insert(p, (link, conn));
                self.feed(Input::PeerUp {
                    peer: p,
                    direction: Direction::Out,
                    addr,
                })
                .await;
            }
            NetEvent::Link(LinkEvent::Down { link, conn }) => {
                if let Some(p) = self.link_peer(link, conn) {
                    self.outbound.remove(&p);
                    self.feed(Input::PeerDown { peer: p }).await;
                }
            }
            NetEvent::Link(LinkEvent::Message { link, conn, bytes }) => {
                if let Some(peer) = self.link_peer(link, conn) {
                    self.feed(Input::Message { peer, bytes }).await;
                }
            }
        }
    }

    async fn on_command(&mut self, cmd: MeshCommand) {
        match cmd {
            MeshCommand::Samples(mut values) => {
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
                    self.feed(Input::Local(p)).await;
                }
            }
            MeshCommand::HostInfo(info) => self.feed(Input::Local(Payload::HostInfo(info))).await,
            MeshCommand::Gossip(payload) => self.feed(Input::Local(payload)).await,
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
                })
                .await;
            }
            MeshCommand::Want(w) => self.feed(Input::Want(w)).await,
        }
    }

    async fn feed(&mut self, input: Input) {
        let now = now(self.start);
        let mut actions = std::mem::take(&mut self.actions);
        self.gossip.handle(now, input, &mut actions);
        for a in actions.drain(..) {
            self.perform(a).await;
        }
        self.actions = actions;
    }

    async fn perform(&mut self, action: Action) {
        match action {
            Action::Send { peer, bytes } => {
                if let Some(&(link, _)) = self.outbound.get(&peer) {
                    if let Some(tx) = self.links.get(link)
                        && tx.try_send(LinkCmd::Send(bytes)).is_err()
                    {
                        self.queue_drops.fetch_add(1, Ordering::Relaxed);
                    }
                } else if let (Some(identity), Some(router)) =
                    (self.inbound_rev.get(&peer), self.router.as_mut())
                {
                    let mut msg = ZmqMessage::from(bytes);
                    msg.push_front(identity.clone());
                    match tokio::time::timeout(ROUTER_SEND_TIMEOUT, router.send(msg)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            debug!(peer, %error, "inbound peer gone");
                            self.forget_inbound(peer);
                            let now = now(self.start);
                            self.gossip
                                .handle(now, Input::PeerDown { peer }, &mut Vec::new());
                        }
                        Err(_) => {
                            warn!(peer, "send to inbound peer took over 200 ms; frame dropped");
                            self.queue_drops.fetch_add(1, Ordering::Relaxed);
                        }
                    }
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

    fn forget_inbound(&mut self, peer: PeerId) {
        if let Some(identity) = self.inbound_rev.remove(&peer) {
            self.inbound.remove(&identity);
            info!(peer, "inbound link dropped");
        }
    }
}
