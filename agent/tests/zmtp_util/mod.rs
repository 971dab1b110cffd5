//! Helpers shared by the guard integration tests: hand-built ZMTP bytes, a guard whose
//! connections are answered by an echoing consumer (`wire::echo`), a plain zmq.rs echo
//! ROUTER, a legitimate DEALER that keeps chatting, raw TCP probes and RSS.
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meshmon_agent::net::guard::{GuardSnapshot, GuardStats, run_inbound};
use meshmon_agent::net::wire;
use meshmon_agent::net::zmtp::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// A ZMTP 3.0 NULL greeting as a client sends it.
pub fn greeting() -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    g.extend_from_slice(b"NULL");
    g.extend_from_slice(&[0; 16]);
    g.push(0); // as-server
    g.extend_from_slice(&[0; 31]);
    g
}

/// A READY command frame announcing `socket_type`.
pub fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend(body);
    frame
}

/// Greeting + READY of a DEALER: what a valid client sends before its first message.
pub fn handshake() -> Vec<u8> {
    let mut h = greeting();
    h.extend(ready("DEALER"));
    h
}

/// Limits with short timeouts so tests finish in seconds.
pub fn test_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

pub fn addr_of(endpoint: &zeromq::Endpoint) -> SocketAddr {
    let text = endpoint.to_string();
    match text.trim_start_matches("tcp://").parse() {
        Ok(addr) => addr,
        Err(error) => panic!("endpoint '{text}' is not an address: {error}"),
    }
}

/// A zmq.rs ROUTER on 127.0.0.1 that sends every message back to its sender.
pub async fn echo_router() -> SocketAddr {
    let mut router = RouterSocket::new();
    let endpoint = router
        .bind("tcp://127.0.0.1:0")
        .await
        .expect("router binds");
    tokio::spawn(async move {
        while let Ok(message) = router.recv().await {
            if router.send(message).await.is_err() {
                // The peer left between recv and send; keep serving the others.
                continue;
            }
        }
    });
    addr_of(&endpoint)
}

/// A running inbound guard whose consumer echoes every message to its sender.
pub struct Guard {
    pub addr: SocketAddr,
    pub stats: Arc<GuardStats>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Guard {
    pub async fn start(limits: Limits) -> Self {
        let (events, consumer) = mpsc::channel(1024);
        tokio::spawn(wire::echo(consumer));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("guard binds");
        let addr = listener.local_addr().expect("bound address");
        let stats = Arc::new(GuardStats::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_inbound(
            listener,
            events,
            limits,
            Arc::clone(&stats),
            shutdown.clone(),
        ));
        Self {
            addr,
            stats,
            shutdown,
            task,
        }
    }

    pub fn stats(&self) -> GuardSnapshot {
        self.stats.snapshot()
    }

    /// Waits up to 3 s for `check` to hold on the stats; panics with `what` otherwise.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&GuardSnapshot) -> bool) {
        let start = Instant::now();
        while !check(&self.stats()) {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "timed out waiting for {what}: {:?}",
                self.stats()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn multipart(parts: &[&[u8]]) -> ZmqMessage {
    let frames: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    ZmqMessage::try_from(frames).expect("at least one part")
}

pub async fn dealer(addr: SocketAddr) -> DealerSocket {
    let mut dealer = DealerSocket::new();
    tokio::time::timeout(
        Duration::from_secs(3),
        dealer.connect(&format!("tcp://{addr}")),
    )
    .await
    .expect("dealer connects in time")
    .expect("dealer connects");
    dealer
}

/// Sends `parts` and expects the same message back within 3 s.
pub async fn round_trip(dealer: &mut DealerSocket, parts: &[&[u8]]) {
    dealer.send(multipart(parts)).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(3), dealer.recv())
        .await
        .expect("reply in time")
        .expect("reply");
    let got: Vec<Bytes> = reply.into_vec();
    let want: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    assert_eq!(got, want);
}

/// A legitimate DEALER exchanging messages through a guard in the background.
pub struct Chatter {
    pub round_trips: Arc<AtomicU64>,
    pub failures: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Chatter {
    pub async fn start(addr: SocketAddr) -> Self {
        let mut dealer = dealer(addr).await;
        let round_trips = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let (count, failed) = (Arc::clone(&round_trips), Arc::clone(&failures));
        let task = tokio::spawn(async move {
            for i in 0u64.. {
                let id = i.to_be_bytes();
                let payload = vec![i as u8; 700];
                let sent = dealer.send(multipart(&[b"chat", &id, &payload])).await;
                let reply = tokio::time::timeout(Duration::from_secs(2), dealer.recv()).await;
                match (sent, reply) {
                    (Ok(()), Ok(Ok(reply))) if reply.get(1).map(|b| &b[..]) == Some(&id[..]) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self {
            round_trips,
            failures,
            task,
        }
    }

    /// Asserts the pair is still exchanging: a few more round trips within 3 s, no failure.
    pub async fn assert_alive(&self, during: &str) {
        let before = self.round_trips.load(Ordering::Relaxed);
        let start = Instant::now();
        while self.round_trips.load(Ordering::Relaxed) < before + 3 {
            assert_eq!(
                self.failures.load(Ordering::Relaxed),
                0,
                "chatter failed {during}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "chatter stalled {during}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Chatter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn raw(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("raw connect")
}

/// Reads and discards until the peer closes; returns how long that took, or `None` if it
/// was still open after `limit`.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let drain = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain).await.ok()?;
    Some(start.elapsed())
}

/// Writes `bytes`, ignoring errors: the guard may close while we write.
pub async fn send_lossy(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
}

/// Resident set size of this process in KiB, from /proc/self/status.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS line")
}
