//! The tokio side of the ZMTP guard: every byte a remote peer sends goes through a
//! [`ZmtpValidator`] first.
//!
//! - [`run_inbound`] owns the node's public port. Each accepted connection is served in-line
//!   by its own task ([`super::wire`]): validated, assembled into whole messages and handed to
//!   the consumer's event queue (the mesh task's); the consumer's messages are framed and
//!   written back. No loopback proxy and no zmq.rs on this path.
//! - Outbound links ([`super::link`]) are served in-line the same way ([`super::wire::dial`]),
//!   under the same deadline, idle timeout and limits, counted in the same [`GuardStats`].
//!
//! Per connection it enforces the handshake deadline, the idle timeout after the handshake
//! and (inbound) the connection cap, and it closes the connection on the first violation.
//! An inbound connection costs nothing but its socket and a small task until the peer sends
//! a byte; then one [`BUF_LEN`] buffer, the validator and the message being assembled.
//!
//! Not responsible for: parsing ZMTP (that is [`super::zmtp`]), framing messages
//! ([`super::wire`]), dialling and reconnecting ([`super::link`]), or authenticating peers
//! (mesh frames are sealed in `meshmon_proto`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::wire::{self, ConnId, Event};
#[cfg(doc)]
use super::zmtp::ZmtpValidator;
use super::zmtp::{Limits, Violation};

/// Size of each per-connection read buffer.
pub const BUF_LEN: usize = 8 * 1024;
/// How long a link waits for the neighbour to accept the TCP connection and to finish the
/// handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Counters of one guard (or of several sharing it). Read them with [`GuardStats::snapshot`].
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Inbound connections admitted under the cap.
    pub accepted: AtomicU64,
    /// Inbound connections closed at once because the cap was reached.
    pub refused_over_cap: AtomicU64,
    /// Connections closed because the peer broke the protocol or a limit.
    pub violations: AtomicU64,
    /// Connections closed because greeting + READY did not arrive in time.
    pub handshake_timeouts: AtomicU64,
    /// Connections closed because the peer was silent too long after the handshake.
    pub idle_timeouts: AtomicU64,
    /// Connections (inbound and outbound links) open now.
    pub open: AtomicU64,
}

/// A plain copy of [`GuardStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardSnapshot {
    /// See [`GuardStats::accepted`].
    pub accepted: u64,
    /// See [`GuardStats::refused_over_cap`].
    pub refused_over_cap: u64,
    /// See [`GuardStats::violations`].
    pub violations: u64,
    /// See [`GuardStats::handshake_timeouts`].
    pub handshake_timeouts: u64,
    /// See [`GuardStats::idle_timeouts`].
    pub idle_timeouts: u64,
    /// See [`GuardStats::open`].
    pub open: u64,
}

impl GuardStats {
    /// The current values (each read on its own; they need not be mutually consistent).
    pub fn snapshot(&self) -> GuardSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GuardSnapshot {
            accepted: get(&self.accepted),
            refused_over_cap: get(&self.refused_over_cap),
            violations: get(&self.violations),
            handshake_timeouts: get(&self.handshake_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            open: get(&self.open),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Keeps [`GuardStats::open`] right however a connection task ends.
pub(super) struct OpenGauge(Arc<GuardStats>);

impl OpenGauge {
    pub(super) fn new(stats: Arc<GuardStats>) -> Self {
        bump(&stats.open);
        Self(stats)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts on `listener` and serves each connection in-line ([`wire`]): its messages go to
/// `events` as `E::from(Event)`, in order, framed by `Up` and `Down` per connection. Runs
/// until `shutdown` is cancelled, then closes every connection and returns once their
/// tasks have finished.
///
/// Nothing is allocated for a connection, and nothing is sent to it, until the peer's first
/// bytes have arrived, so scans and idle sockets stay cheap. Every ZMTP client (zmq.rs and
/// libzmq alike) sends at least its signature before waiting for ours.
pub async fn run_inbound<E>(
    listener: TcpListener,
    events: mpsc::Sender<E>,
    limits: Limits,
    stats: Arc<GuardStats>,
    shutdown: CancellationToken,
) where
    E: From<Event> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let limits = Arc::new(limits);
    let mut next_conn: ConnId = 0;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            bump(&stats.refused_over_cap);
            debug!(peer = %peer, cap = limits.max_connections, "refused connection over the cap");
            drop(stream);
            continue;
        };
        bump(&stats.accepted);
        next_conn += 1;
        let conn = next_conn;
        let (limits, stats, shutdown) = (Arc::clone(&limits), Arc::clone(&stats), shutdown.clone());
        let events = events.clone();
        tracker.spawn(async move {
            let _open = OpenGauge::new(Arc::clone(&stats));
            let deadline = Instant::now() + limits.handshake_timeout;
            let end = tokio::select! {
                end = serve_inbound(stream, peer, conn, &limits, deadline, &events) => end,
                () = shutdown.cancelled() => End::Shutdown,
            };
            report(peer, end, &stats);
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Why a guarded connection ended.
#[derive(Debug)]
pub(super) enum End {
    /// The remote peer closed its side.
    RemoteClosed,
    /// Our side closed it: the consumer dropped the connection's handle or its event queue,
    /// or (a link) the mesh task reset it.
    LocalClosed,
    /// `shutdown` was cancelled.
    Shutdown,
    /// The remote broke the protocol or a limit.
    Violation(Violation),
    /// Greeting + READY not complete by the deadline.
    HandshakeTimeout,
    /// No bytes from the remote for `idle_timeout` after the handshake.
    IdleTimeout,
    /// Reading from or writing to the remote failed.
    RemoteIo(io::Error),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::RemoteClosed => f.write_str("connection closed by the remote"),
            End::LocalClosed => f.write_str("connection closed by our side"),
            End::Shutdown => f.write_str("shutting down"),
            End::Violation(v) => write!(f, "protocol violation: {v}"),
            End::HandshakeTimeout => f.write_str("no handshake before the deadline"),
            End::IdleTimeout => f.write_str("peer silent past the idle timeout"),
            End::RemoteIo(e) => write!(f, "i/o error: {e}"),
        }
    }
}

/// Counts and logs how a connection ended.
pub(super) fn report(peer: SocketAddr, end: End, stats: &GuardStats) {
    match end {
        End::Violation(violation) => {
            bump(&stats.violations);
            warn!(peer = %peer, %violation, "closed connection");
        }
        End::HandshakeTimeout => {
            bump(&stats.handshake_timeouts);
            debug!(peer = %peer, "closed connection: no handshake before the deadline");
        }
        End::IdleTimeout => {
            bump(&stats.idle_timeouts);
            info!(peer = %peer, "closed connection: peer silent past the idle timeout");
        }
        End::RemoteIo(error) => debug!(peer = %peer, %error, "closed connection: remote i/o error"),
        End::RemoteClosed => debug!(peer = %peer, "connection closed by the remote"),
        End::LocalClosed => debug!(peer = %peer, "connection closed by our side"),
        End::Shutdown => debug!(peer = %peer, "connection closed for shutdown"),
    }
}

/// One inbound connection: wait for the first bytes, then serve it in-line.
async fn serve_inbound<E: From<Event>>(
    remote: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    limits: &Limits,
    deadline: Instant,
    events: &mpsc::Sender<E>,
) -> End {
    if let Err(error) = remote.set_nodelay(true) {
        return End::RemoteIo(error);
    }
    // Wait without a buffer or a validator: idle sockets stay cheap.
    // `peek`, not `readable`: tokio marks accepted sockets readable before any byte arrives.
    match timeout_at(deadline, remote.peek(&mut [0u8; 1])).await {
        Err(_elapsed) => return End::HandshakeTimeout,
        Ok(Err(error)) => return End::RemoteIo(error),
        Ok(Ok(0)) => return End::RemoteClosed,
        Ok(Ok(_)) => {}
    }
    // Boxed so that the state of a connection still waiting above stays small.
    Box::pin(wire::serve(remote, peer, conn, limits, deadline, events)).await
}
