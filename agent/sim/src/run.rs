//! The fleet's one task: it owns every simulated host, the connection to the node and the
//! link state. Host turns are spread evenly over the interval (host `i` of `n` at
//! `i * interval / n` into each round). The hosts start when the first link comes up, each at
//! its first turn the link has room for its first three frames (host info, series table,
//! samples), so a slow node sees them boot over a few rounds rather than miss their first
//! tables. From then on they take their turns whether or not the node is reachable: a host keeps
//! originating (and keeping its frames for backfill) while the link is down, as a real agent
//! does. A connection attempt runs in a task of its own, which then reads the socket and
//! hands messages over a bounded channel, so dialling never delays a turn.
//!
//! Reconnects: a link that fails to send, stays silent for 5 s or does not finish its hello
//! within 5 s is dropped and dialled again with backoff from 200 ms doubling to 2 s, with
//! jitter (PROTOCOL.md section 5). On every new link each host re-sends its latest host info
//! and series table before its next frames, as a node does for a newcomer.
//!
//! Not here: what the frames hold (`host`), link protocol decisions (`link`).

use crate::config::FleetConfig;
use crate::host::SimHost;
use crate::link::Link;
use crate::stats::Shared;
use bytes::Bytes;
use meshmon_proto::Keyring;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};
use zeromq::{
    DealerSendHalf, DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage,
};

/// First re-dial delay.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest re-dial delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How long dialling (TCP and the ZMTP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the three-way hello may take once connected.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one send may take before the link is declared stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// Housekeeping (heartbeats, liveness, dialling, queued replays) runs this often.
const TICK: Duration = Duration::from_millis(100);
/// Replay frames waiting for credits; more are dropped (the dashboard asks again).
const REPLAY_QUEUE: usize = 4096;
/// Frames of a host's first turn: host info, series table, samples.
const FIRST_FRAMES: u64 = 3;
/// Messages from the socket reader waiting for the fleet task.
const EVENT_QUEUE: usize = 1024;

/// What a connection task reports. `no` numbers connection attempts, so that messages of an
/// old connection are never taken for the current one's.
enum Event {
    Connected { no: u64, tx: DealerSendHalf },
    Message { no: u64, bytes: Bytes },
    Closed { no: u64, reason: String },
}

/// The current connection.
struct Conn {
    no: u64,
    tx: DealerSendHalf,
    link: Link,
    since: Instant,
    /// Stops this connection's reader task when the connection is dropped.
    _reader: Option<DropGuard>,
    auth_warned: bool,
}

/// Everything the fleet task owns.
pub(crate) struct Driver {
    target: SocketAddr,
    interval: Duration,
    link_name: String,
    link_boot: u64,
    keyring: Keyring,
    hosts: Vec<SimHost>,
    by_name: HashMap<String, usize>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// When the hosts started (the first link came up); `None` before.
    start: Option<Instant>,
    round_start: Instant,
    /// Every host's turn is at its slot of the round, the round starting on the wall clock's
    /// boundaries (as agents collect: `meshmon_agent_core::node::collect_offset_ms`)...
    aligned: bool,
    /// ...each host's slot (empty unless aligned), and the hosts in the order of their turns.
    offsets: Vec<Duration>,
    order: Vec<usize>,
    next_host: usize,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    conn: Option<Conn>,
    /// The latest connection attempt, and whether it is still under way.
    attempt: u64,
    dialling: Option<DropGuard>,
    next_dial: Instant,
    backoff: Duration,
    replays: VecDeque<Bytes>,
}

impl Driver {
    pub(crate) fn new(
        cfg: &FleetConfig,
        keyring: Keyring,
        link_boot: u64,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> Driver {
        let start_ms = crate::wall_ms();
        let hosts: Vec<SimHost> = (0..cfg.hosts)
            .map(|i| SimHost::new(cfg, i, link_boot + 1 + i as u64, start_ms))
            .collect();
        let period_ms = u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX);
        let offsets: Vec<Duration> = if cfg.aligned {
            hosts
                .iter()
                .map(|h| {
                    let ms =
                        meshmon_agent_core::node::collect_offset_ms(&h.name, cfg.hosts, period_ms);
                    Duration::from_millis(ms)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut order: Vec<usize> = (0..hosts.len()).collect();
        order.sort_by_key(|&i| offsets.get(i).copied().unwrap_or_default());
        let by_name = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let now = Instant::now();
        Driver {
            target: cfg.target,
            interval: cfg.interval,
            aligned: cfg.aligned,
            offsets,
            order,
            link_name: cfg.link_name.clone(),
            link_boot,
            keyring,
            hosts,
            by_name,
            shared,
            shutdown,
            start: None,
            round_start: now,
            next_host: 0,
            events_tx,
            events_rx,
            conn: None,
            attempt: 0,
            dialling: None,
            next_dial: now,
            backoff: BACKOFF_START,
            replays: VecDeque::new(),
        }
    }

    /// When the `i`th turn of the current round is due.
    fn due(&self, i: usize) -> Instant {
        if self.aligned {
            let host = self.order.get(i).copied().unwrap_or(i);
            return self.round_start + self.offsets.get(host).copied().unwrap_or_default();
        }
        let n = self.hosts.len().max(1) as u32;
        self.round_start + self.interval * u32::try_from(i).unwrap_or(u32::MAX) / n
    }

    /// Runs until the shutdown token is cancelled.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let shutdown = self.shutdown.clone();
        loop {
            // Hosts start with the first link, then go on whatever happens to it.
            let due = self.due(self.next_host);
            let started = self.start.is_some();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                ev = self.events_rx.recv() => {
                    if let Some(ev) = ev {
                        self.on_event(ev).await;
                    }
                }
                () = tokio::time::sleep_until(due), if started => self.turns().await,
                _ = tick.tick() => self.housekeeping().await,
            }
        }
        self.drop_conn("fleet stopped");
    }

    /// Every host whose turn is due takes it (one round at most per call).
    async fn turns(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.start.unwrap_or(now));
        let mut budget = self.hosts.len();
        while budget > 0 && self.due(self.next_host) <= now {
            budget -= 1;
            let i = self
                .order
                .get(self.next_host)
                .copied()
                .unwrap_or(self.next_host);
            self.next_host += 1;
            if self.next_host == self.hosts.len() {
                self.next_host = 0;
                self.round_start += self.interval;
            }
            // A host boots only when the link can take its first frames (host info, series
            // table, samples): a node that missed a host's first table cannot decode it until
            // the table comes again 30 frames later, and would not ask for the frames before
            // the first one it saw. So 500 hosts joining a slow node boot over a few rounds.
            if !self.hosts[i].booted() && self.credits() < FIRST_FRAMES {
                self.shared.boots_deferred.fetch_add(1, Relaxed);
                continue;
            }
            self.resend_descriptors(i).await;
            let wall = crate::wall_ms();
            let frames = match self.hosts[i].turn(&self.keyring, wall, elapsed) {
                Ok(f) => f,
                Err(error) => {
                    warn!(host = %self.hosts[i].name, %error, "cannot seal a frame");
                    continue;
                }
            };
            for f in frames {
                self.shared.originated.fetch_add(1, Relaxed);
                self.send_gossip(f.bytes).await;
            }
        }
        // Far behind (the process was paused): skip the missed rounds instead of bursting.
        if now > self.due(self.next_host) + self.interval {
            let behind = self
                .due(self.next_host)
                .saturating_duration_since(self.round_start);
            self.round_start = now - behind;
            self.shared.rounds_skipped.fetch_add(1, Relaxed);
        }
    }

    /// On a link this host has not spoken on yet, its latest host info and series table go
    /// first (unchanged frames: a node that has them drops them as duplicates).
    async fn resend_descriptors(&mut self, i: usize) {
        let Some(no) = self.conn.as_ref().filter(|c| c.link.accepted).map(|c| c.no) else {
            return;
        };
        if self.hosts[i].descriptors_on == no {
            return;
        }
        // All or nothing, and again at the next turn if the window is short now.
        let frames = self.hosts[i].descriptors.iter().flatten().count() as u64;
        if self.credits() < frames + 1 {
            return;
        }
        self.hosts[i].descriptors_on = no;
        let frames: Vec<Bytes> = self.hosts[i]
            .descriptors
            .iter()
            .flatten()
            .cloned()
            .collect();
        for bytes in frames {
            self.send_gossip(bytes).await;
        }
    }

    /// Credits left on the current link (0 without an accepted link).
    fn credits(&self) -> u64 {
        self.conn
            .as_ref()
            .filter(|c| c.link.accepted)
            .map_or(0, |c| c.link.window().saturating_sub(c.link.in_flight()))
    }

    /// Sends one credit-bearing frame if the link is up and has a credit; else counts it.
    async fn send_gossip(&mut self, bytes: Bytes) -> bool {
        let Some(c) = self.conn.as_mut().filter(|c| c.link.accepted) else {
            self.shared.refused_offline.fetch_add(1, Relaxed);
            return false;
        };
        if !c.link.take_credit() {
            self.shared.refused_credit.fetch_add(1, Relaxed);
            return false;
        }
        let ok = self.send_raw(bytes).await;
        if ok {
            self.shared.sent.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Hands bytes to the socket; a failed or stuck send drops the connection.
    async fn send_raw(&mut self, bytes: Bytes) -> bool {
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        let reason =
            match tokio::time::timeout(SEND_TIMEOUT, c.tx.send(ZmqMessage::from(bytes))).await {
                Ok(Ok(())) => return true,
                Ok(Err(e)) => format!("send failed: {e}"),
                Err(_) => format!("send stuck for {SEND_TIMEOUT:?}"),
            };
        self.drop_conn(&reason);
        false
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connected { no, tx }
                if no == self.attempt && self.conn.is_none() && self.dialling.is_some() =>
            {
                let reader = self.dialling.take();
                let now = Instant::now();
                let mut link = Link::new(
                    self.keyring.clone(),
                    &self.link_name,
                    self.link_boot,
                    now.into_std(),
                );
                let hello = link.hello(0);
                self.conn = Some(Conn {
                    no,
                    tx,
                    link,
                    since: now,
                    _reader: reader,
                    auth_warned: false,
                });
                debug!(target = %self.target, "connected; saying hello");
                match hello {
                    Ok(b) => {
                        self.send_raw(b).await;
                    }
                    Err(error) => self.drop_conn(&format!("cannot seal hello: {error}")),
                }
            }
            Event::Connected { .. } => {}
            Event::Message { no, bytes } => {
                if self.conn.as_ref().is_some_and(|c| c.no == no) {
                    self.on_message(&bytes).await;
                }
            }
            Event::Closed { no, reason } => {
                if self.conn.as_ref().is_some_and(|c| c.no == no) {
                    self.drop_conn(&reason);
                } else if no == self.attempt && self.dialling.is_some() {
                    self.dialling = None;
                    self.shared.connect_failures.fetch_add(1, Relaxed);
                    debug!(target = %self.target, %reason, "dial failed");
                    self.schedule_dial();
                }
            }
        }
    }

    async fn on_message(&mut self, bytes: &[u8]) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        let before = c.link.received;
        let inc = match c.link.on_message(bytes, Instant::now().into_std()) {
            Ok(inc) => inc,
            Err(error) => {
                warn!(%error, "cannot seal a link frame");
                return;
            }
        };
        self.shared
            .frames_in
            .fetch_add(c.link.received - before, Relaxed);
        if inc.auth_failure {
            self.shared.auth_failures.fetch_add(1, Relaxed);
            if !c.auth_warned {
                c.auth_warned = true;
                warn!(target = %self.target, "a frame from the node failed authentication (is the mesh key the node's?)");
            }
        }
        if inc.accepted {
            if self.start.is_none() {
                let now = Instant::now();
                self.start = Some(now);
                self.round_start = now;
                if self.aligned {
                    // Rounds start on the wall clock's multiples of the interval.
                    let period = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
                    let wait = meshmon_agent_core::node::until_slot(crate::wall_ms(), period, 0);
                    self.round_start = now + Duration::from_millis(wait);
                }
            }
            let connects = self.shared.connects.fetch_add(1, Relaxed);
            if connects > 0 {
                self.shared.reconnects.fetch_add(1, Relaxed);
            }
            self.shared.connected.store(true, Relaxed);
            info!(
                target = %self.target,
                node = c.link.node_name().unwrap_or(""),
                hosts = self.hosts.len(),
                "fleet link up"
            );
        }
        for frame in inc.send {
            if !self.send_raw(frame).await {
                return;
            }
        }
        if let Some((requester, req)) = inc.backfill {
            self.shared.backfill_requests.fetch_add(1, Relaxed);
            if let Some(&i) = self.by_name.get(&req.target) {
                let wall = crate::wall_ms();
                match self.hosts[i].answer(
                    &self.keyring,
                    &requester,
                    req.boot_id,
                    (req.from_seq, req.to_seq),
                    wall,
                ) {
                    Ok(frames) => {
                        for f in frames {
                            if self.replays.len() >= REPLAY_QUEUE {
                                self.shared.replays_dropped.fetch_add(1, Relaxed);
                            } else {
                                self.replays.push_back(f.bytes);
                            }
                        }
                    }
                    Err(error) => warn!(host = %req.target, %error, "cannot seal a replay"),
                }
            }
        }
        self.drain_replays().await;
    }

    /// Sends queued replays while at most half the node's window is in flight (the other
    /// half stays free for live frames).
    async fn drain_replays(&mut self) {
        while !self.replays.is_empty() {
            let room = self
                .conn
                .as_ref()
                .is_some_and(|c| c.link.accepted && c.link.in_flight() < c.link.window() / 2);
            if !room {
                return;
            }
            let Some(bytes) = self.replays.pop_front() else {
                return;
            };
            if self.send_gossip(bytes).await {
                self.shared.replays_sent.fetch_add(1, Relaxed);
            }
        }
    }

    /// Heartbeats, liveness, queued replays, dialling.
    async fn housekeeping(&mut self) {
        let now = Instant::now();
        if let Some(c) = self.conn.as_mut() {
            let std_now = now.into_std();
            if c.link.dead(std_now) {
                self.drop_conn("node silent for 5 s");
            } else if !c.link.accepted && now.saturating_duration_since(c.since) > HELLO_TIMEOUT {
                self.drop_conn("no hello from the node within 5 s");
            } else if c.link.heartbeat_due(std_now) {
                match c.link.heartbeat(std_now) {
                    Ok(hb) => {
                        if let Some(rtt) = c.link.rtt {
                            let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
                            self.shared.rtt_us.store(us, Relaxed);
                        }
                        self.send_raw(hb).await;
                    }
                    Err(error) => warn!(%error, "cannot seal a heartbeat"),
                }
            }
        }
        self.drain_replays().await;
        if self.conn.is_none() && self.dialling.is_none() && now >= self.next_dial {
            self.dial();
        }
    }

    fn dial(&mut self) {
        self.attempt += 1;
        let stop = self.shutdown.child_token();
        self.dialling = Some(stop.clone().drop_guard());
        tokio::spawn(connection(
            self.attempt,
            self.target,
            self.events_tx.clone(),
            stop,
        ));
    }

    fn schedule_dial(&mut self) {
        let jitter = Duration::from_millis(u64::from(rand::random::<u8>()) % 100);
        self.next_dial = Instant::now() + self.backoff + jitter;
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
    }

    /// Drops the current connection (if any) and schedules the next dial.
    fn drop_conn(&mut self, reason: &str) {
        let Some(c) = self.conn.take() else {
            return;
        };
        self.shared.connected.store(false, Relaxed);
        self.replays.clear();
        if c.since.elapsed() > Duration::from_secs(10) {
            self.backoff = BACKOFF_START;
        }
        if c.link.accepted {
            info!(target = %self.target, reason, "fleet link down");
        } else {
            debug!(target = %self.target, reason, "connection dropped before the hello");
        }
        if !self.shutdown.is_cancelled() {
            self.schedule_dial();
        }
    }
}

/// One connection attempt: dials, hands the send half over, then reads until stopped or the
/// socket fails.
async fn connection(
    no: u64,
    target: SocketAddr,
    events: mpsc::Sender<Event>,
    stop: CancellationToken,
) {
    let mut opts = SocketOptions::default();
    opts.connect_timeout(CONNECT_TIMEOUT);
    let mut dealer = DealerSocket::with_options(opts);
    let endpoint = format!("tcp://{target}");
    let dialled = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(CONNECT_TIMEOUT, dealer.connect(&endpoint)) => r,
    };
    let reason = match dialled {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("cannot connect: {e}")),
        Err(_) => Some(format!("connecting timed out after {CONNECT_TIMEOUT:?}")),
    };
    if let Some(reason) = reason {
        let _ = events.send(Event::Closed { no, reason }).await;
        return;
    }
    let (tx, mut rx) = dealer.split();
    if events.send(Event::Connected { no, tx }).await.is_err() {
        return;
    }
    let reason = loop {
        tokio::select! {
            () = stop.cancelled() => return,
            m = rx.recv() => match m {
                Ok(m) => {
                    // Mesh messages are single-part; other parts are ignored.
                    let Some(bytes) = m.into_vec().into_iter().next() else {
                        continue;
                    };
                    if events.send(Event::Message { no, bytes }).await.is_err() {
                        return;
                    }
                }
                Err(e) => break format!("receive failed: {e}"),
            },
        }
    };
    let _ = events.send(Event::Closed { no, reason }).await;
}
