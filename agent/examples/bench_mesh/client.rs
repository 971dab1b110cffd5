//! A minimal mesh peer written against PROTOCOL.md with a bare zmq.rs DEALER: it says Hello
//! (as a viewer or as a node), acknowledges what it receives (credits), heartbeats, and
//! optionally pushes pre-sealed gossip frames at a paced rate within the node's credit
//! window. It timestamps every gossip frame the moment zmq.rs hands it over.
//!
//! The benchmark uses this instead of `meshmon_agent::viewer` because it sits closer to the
//! wire: no gossip machine, no AEAD open and no channel between the socket and the timestamp,
//! and it sees the exact bytes of every frame (figure 4 counts them). It is not a node: it
//! never forwards, and it opens only Hello and Heartbeat frames.

use anyhow::{Context, Result};
use bytes::Bytes;
use meshmon_agent::net::mesh::wall_ms;
use meshmon_proto::payload::{Heartbeat, Hello, Role};
use meshmon_proto::{Flags, Frame, Header, Keyring, Kind, Payload};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// One gossip frame as it arrived.
pub struct Arrival {
    pub at: Instant,
    pub header: Header,
    pub bytes: Bytes,
}

/// Counters shared between the client's tasks and the benchmark.
#[derive(Default)]
pub struct Counters {
    /// Gossip frames received with hops >= 1 (forwarded by the node, not its own).
    pub forwarded_in: AtomicU64,
    /// Credit-bearing frames received (what we acknowledge).
    pub credit_in: AtomicU64,
    /// Gossip frames pushed.
    pub pushed: AtomicU64,
    /// The node's acknowledgement of our pushed frames.
    pub acked_by_node: AtomicU64,
    /// The node's window from its Hello (0 until it arrived).
    pub node_window: AtomicU64,
    /// The node's hello nonce, to echo (three-way hello, PROTOCOL.md section 5).
    pub node_nonce: AtomicU64,
}

/// A connected client. Stop it with [`Client::finish`], which returns what it recorded.
pub struct Client {
    pub counters: Arc<Counters>,
    push_tx: mpsc::Sender<(Vec<Bytes>, f64)>,
    stop: CancellationToken,
    recv: JoinHandle<Vec<Arrival>>,
    send: JoinHandle<()>,
}

/// Credits acknowledged this often (a quarter of the window, as meshmon does).
fn quarter(window: u32) -> u64 {
    u64::from(window / 4).max(1)
}

impl Client {
    /// Dials `target`, says Hello as `name` in `role`, and waits for the node's Hello.
    pub async fn connect(
        target: &str,
        name: &str,
        role: Role,
        keyring: &Keyring,
        record: bool,
    ) -> Result<Client> {
        let window: u32 = if role == Role::Viewer { 4096 } else { 1024 };
        let mut dealer = DealerSocket::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            dealer.connect(&format!("tcp://{target}")),
        )
        .await
        .context("ZMTP handshake timed out")??;
        let (mut tx, rx) = dealer.split();
        let mut link = Sealer {
            keyring: keyring.clone(),
            name: name.to_owned(),
            boot_id: meshmon_agent::node::new_boot_id(),
            seq: 0,
            start: Instant::now(),
        };
        let nonce = rand::random::<u64>() | 1;
        let boot_id = link.boot_id;
        let hello = |echo: u64| {
            Payload::Hello(Hello {
                name: name.to_owned(),
                boot_id,
                role,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                window,
                nonce,
                echo,
            })
        };
        tx.send(ZmqMessage::from(link.seal(&hello(0))?)).await?;

        let counters = Arc::new(Counters::default());
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let recv = tokio::spawn(recv_loop(RecvState {
            rx,
            keyring: keyring.clone(),
            counters: counters.clone(),
            wake: wake.clone(),
            stop: stop.clone(),
            record,
            quarter: quarter(window),
        }));
        let deadline = Instant::now() + Duration::from_secs(5);
        while counters.node_window.load(Relaxed) == 0 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no Hello from the node at '{target}' within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Echo the node's nonce: only then does the node accept the link.
        let echo = hello(counters.node_nonce.load(Relaxed));
        tx.send(ZmqMessage::from(link.seal(&echo)?)).await?;
        let (push_tx, push_rx) = mpsc::channel(1);
        let send = tokio::spawn(send_loop(SendState {
            tx,
            link,
            counters: counters.clone(),
            wake,
            stop: stop.clone(),
            push_rx,
            quarter: quarter(window),
        }));
        Ok(Client {
            counters,
            push_tx,
            stop,
            recv,
            send,
        })
    }

    /// Starts pushing `frames` at `rate_per_s`, never more than the node's window
    /// unacknowledged.
    pub async fn push(&self, frames: Vec<Bytes>, rate_per_s: f64) -> Result<()> {
        self.push_tx
            .send((frames, rate_per_s))
            .await
            .map_err(|_| anyhow::anyhow!("client stopped"))
    }

    /// Stops both tasks and returns the recorded arrivals.
    pub async fn finish(self) -> Vec<Arrival> {
        self.stop.cancel();
        let _ = self.send.await;
        self.recv.await.unwrap_or_default()
    }
}

/// Seals this client's link frames (their own sequence space).
struct Sealer {
    keyring: Keyring,
    name: String,
    boot_id: u64,
    seq: u64,
    start: Instant,
}

impl Sealer {
    fn seal(&mut self, payload: &Payload) -> Result<Bytes> {
        self.seq += 1;
        let header = Header {
            kind: payload.kind(),
            flags: Flags::LINK,
            origin: self.name.clone(),
            boot_id: self.boot_id,
            seq: self.seq,
            ts_ms: wall_ms(),
        };
        Ok(Bytes::from(self.keyring.seal(
            &header,
            0,
            &payload.encode()?,
        )?))
    }

    fn heartbeat(&mut self, acked: u64) -> Result<Bytes> {
        let sent_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.seal(&Payload::Heartbeat(Heartbeat {
            acked,
            sent_us,
            echo_us: 0,
            held_us: 0,
            ..Default::default()
        }))
    }
}

struct RecvState {
    rx: zeromq::DealerRecvHalf,
    keyring: Keyring,
    counters: Arc<Counters>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    record: bool,
    quarter: u64,
}

async fn recv_loop(mut s: RecvState) -> Vec<Arrival> {
    let mut arrivals = Vec::new();
    let mut last_wake = 0;
    loop {
        let msg = tokio::select! {
            _ = s.stop.cancelled() => break,
            m = s.rx.recv() => m,
        };
        let at = Instant::now();
        let Ok(msg) = msg else { break };
        let Some(bytes) = msg.into_vec().into_iter().next() else {
            continue;
        };
        let Ok(frame) = Frame::decode(&bytes) else {
            continue;
        };
        let c = &s.counters;
        if frame.header.flags.contains(Flags::LINK) {
            match frame.header.kind {
                Kind::Hello | Kind::Heartbeat => {
                    let Ok(plain) = s.keyring.open_parsed(&bytes, &frame) else {
                        continue;
                    };
                    match Payload::decode(frame.header.kind, &plain) {
                        Ok(Payload::Hello(h)) => {
                            c.node_nonce.store(h.nonce, Relaxed);
                            c.node_window.store(u64::from(h.window), Relaxed);
                        }
                        Ok(Payload::Heartbeat(hb)) => {
                            c.acked_by_node.fetch_max(hb.acked, Relaxed);
                            s.wake.notify_one();
                        }
                        _ => {}
                    }
                    continue;
                }
                _ => {
                    c.credit_in.fetch_add(1, Relaxed);
                }
            }
        } else {
            c.credit_in.fetch_add(1, Relaxed);
            if frame.hops >= 1 {
                c.forwarded_in.fetch_add(1, Relaxed);
            }
            if s.record {
                arrivals.push(Arrival {
                    at,
                    header: frame.header,
                    bytes,
                });
            }
        }
        let n = c.credit_in.load(Relaxed);
        if n - last_wake >= s.quarter {
            last_wake = n;
            s.wake.notify_one();
        }
    }
    arrivals
}

struct SendState {
    tx: zeromq::DealerSendHalf,
    link: Sealer,
    counters: Arc<Counters>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    push_rx: mpsc::Receiver<(Vec<Bytes>, f64)>,
    quarter: u64,
}

async fn send_loop(mut s: SendState) {
    if let Err(error) = send_loop_inner(&mut s).await {
        eprintln!("bench client '{}': {error:#}", s.link.name);
    }
}

async fn send_loop_inner(s: &mut SendState) -> Result<()> {
    let mut beat = tokio::time::interval(Duration::from_secs(1));
    let mut acked_sent = 0u64;
    let mut frames: Vec<Bytes> = Vec::new();
    let mut next = 0usize;
    let mut rate = 0.0f64;
    let mut push_start = Instant::now();
    let mut starved = false;
    let c = s.counters.clone();
    loop {
        // Out of credits: only the node's next acknowledgement (a wake) can help.
        let pushing = next < frames.len() && !starved;
        // When pacing is ahead of schedule, sleep until the next frame is due.
        let due_at = push_start + Duration::from_secs_f64(next as f64 / rate.max(1.0));
        let mut force_beat = false;
        tokio::select! {
            _ = s.stop.cancelled() => return Ok(()),
            _ = beat.tick() => force_beat = true,
            _ = s.wake.notified() => {}
            p = s.push_rx.recv() => if let Some((f, r)) = p {
                frames = f;
                rate = r;
                next = 0;
                push_start = Instant::now();
            },
            _ = tokio::time::sleep_until(due_at.into()), if pushing => {}
        }
        let received = c.credit_in.load(Relaxed);
        if force_beat || received - acked_sent >= s.quarter {
            acked_sent = received;
            let hb = s.link.heartbeat(received)?;
            s.tx.send(ZmqMessage::from(hb)).await?;
        }
        let window = c.node_window.load(Relaxed);
        let due = ((push_start.elapsed().as_secs_f64() * rate) as usize).min(frames.len());
        starved = false;
        while next < due {
            let sent = c.pushed.load(Relaxed);
            if sent - c.acked_by_node.load(Relaxed) >= window {
                starved = true;
                break;
            }
            s.tx.send(ZmqMessage::from(frames[next].clone())).await?;
            c.pushed.fetch_add(1, Relaxed);
            next += 1;
        }
    }
}
