//! The tokio side of the ZMTP guard: every byte a remote peer sends goes through a
//! [`ZmtpValidator`] first.
//!
//! - [`run_inbound`] owns the node's public port. Each accepted connection is served in-line
//!   by its own task ([`super::wire`]): validated, assembled into whole messages and handed to
//!   the consumer's event queue (the mesh task's); the consumer's messages are framed and
//!   written back. No loopback proxy and no zmq.rs on this path.
//! - [`open_outbound`] dials a neighbour and offers a one-shot 127.0.0.1 listener for our
//!   zmq.rs DEALER, validating neighbour -> DEALER.
//!
//! Per connection it enforces the handshake deadline, the idle timeout after the handshake
//! and (inbound) the connection cap, and it closes the connection on the first violation.
//! An inbound connection costs nothing but its socket and a small task until the peer sends
//! a byte; then one [`BUF_LEN`] buffer, the validator and the message being assembled. An
//! outbound relay holds two [`BUF_LEN`] buffers; the bytes our zmq.rs writes are piped
//! unvalidated.
//!
//! Not responsible for: parsing ZMTP (that is [`super::zmtp`]), framing messages
//! ([`super::wire`]), reconnecting (the mesh layer reopens a link when its relay ends), or
//! authenticating peers (mesh frames are sealed in `meshmon_proto`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::wire::{self, ConnId, Event};
use super::zmtp::{Limits, Violation, ZmtpValidator};

/// Size of each per-connection read buffer.
pub const BUF_LEN: usize = 8 * 1024;
/// How long [`open_outbound`] waits for the neighbour to accept the TCP connection.
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
    /// Connections (inbound and outbound relays) open now.
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
struct OpenGauge(Arc<GuardStats>);

impl OpenGauge {
    fn new(stats: Arc<GuardStats>) -> Self {
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

/// Dials `remote` (connect timeout [`CONNECT_TIMEOUT`]), then returns the local 127.0.0.1
/// address a DEALER should connect to, and the relay's task. The relay accepts exactly one
/// local connection (within the handshake timeout) and pipes, validating remote -> local.
/// It ends when either side closes (closing both), on a violation or timeout, or when
/// `shutdown` is cancelled; give each link a child token, or abort the handle, to end it.
pub async fn open_outbound(
    remote: SocketAddr,
    limits: Limits,
    stats: Arc<GuardStats>,
    shutdown: CancellationToken,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
        .await
        .map_err(|_elapsed| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to '{remote}' timed out after {CONNECT_TIMEOUT:?}"),
            )
        })??;
    stream.set_nodelay(true)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let local = listener.local_addr()?;
    let deadline = Instant::now() + limits.handshake_timeout;
    let handle = tokio::spawn(async move {
        let _open = OpenGauge::new(Arc::clone(&stats));
        let end = tokio::select! {
            end = serve_outbound(listener, stream, &limits, deadline) => end,
            () = shutdown.cancelled() => End::Shutdown,
        };
        report(remote, end, &stats);
    });
    Ok((local, handle))
}

/// Why a guarded connection ended.
#[derive(Debug)]
pub(super) enum End {
    /// The remote peer closed its side.
    RemoteClosed,
    /// Our side closed it: the zmq.rs socket (outbound relay), or the consumer dropped the
    /// connection's handle or its event queue (inbound).
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
    /// Reading from or writing to the local zmq.rs socket failed.
    LocalIo(io::Error),
    /// Our DEALER did not connect to the outbound relay in time.
    LocalNeverConnected,
}

fn report(peer: SocketAddr, end: End, stats: &GuardStats) {
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
        End::LocalNeverConnected => {
            warn!(peer = %peer, "closed link: the local socket never connected to the relay");
        }
        End::RemoteIo(error) => debug!(peer = %peer, %error, "closed connection: remote i/o error"),
        End::LocalIo(error) => debug!(peer = %peer, %error, "closed connection: local i/o error"),
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

/// One outbound link: wait for our DEALER on the relay listener, then relay.
async fn serve_outbound(
    listener: TcpListener,
    remote: TcpStream,
    limits: &Limits,
    deadline: Instant,
) -> End {
    let local = match timeout_at(deadline, listener.accept()).await {
        Err(_elapsed) => return End::LocalNeverConnected,
        Ok(Err(error)) => return End::LocalIo(error),
        Ok(Ok((local, _addr))) => local,
    };
    // Exactly one local connection: nobody else may attach to this link.
    drop(listener);
    if let Err(error) = local.set_nodelay(true) {
        return End::LocalIo(error);
    }
    relay(remote, local, Pump::new(limits, deadline)).await
}

/// Pipes both ways until either side ends: remote -> local through `pump`, local -> remote
/// as is. Returning drops both sockets, which closes them.
async fn relay(mut remote: TcpStream, mut local: TcpStream, mut pump: Pump) -> End {
    let (mut remote_rd, mut remote_wr) = remote.split();
    let (mut local_rd, mut local_wr) = local.split();
    tokio::select! {
        end = pump.run(&mut remote_rd, &mut local_wr) => end,
        end = pipe_plain(&mut local_rd, &mut remote_wr) => end,
    }
}

/// The validated direction: reads from the remote, validates, writes what may pass.
struct Pump {
    validator: ZmtpValidator,
    buf: Box<[u8]>,
    out: Vec<u8>,
    handshake_deadline: Instant,
    idle_timeout: Duration,
}

impl Pump {
    fn new(limits: &Limits, handshake_deadline: Instant) -> Self {
        Self {
            validator: ZmtpValidator::new(limits),
            buf: vec![0; BUF_LEN].into_boxed_slice(),
            out: Vec::new(),
            handshake_deadline,
            idle_timeout: limits.idle_timeout,
        }
    }

    /// Reads one chunk from the remote (under the handshake deadline or the idle timeout)
    /// and appends what the validator lets through to `self.out`.
    async fn read_validated<R: AsyncRead + Unpin>(&mut self, remote: &mut R) -> Result<(), End> {
        let read = if self.validator.handshake_done() {
            timeout(self.idle_timeout, remote.read(&mut self.buf))
                .await
                .map_err(|_elapsed| End::IdleTimeout)?
        } else {
            timeout_at(self.handshake_deadline, remote.read(&mut self.buf))
                .await
                .map_err(|_elapsed| End::HandshakeTimeout)?
        };
        let n = match read {
            Ok(0) => return Err(End::RemoteClosed),
            Ok(n) => n,
            Err(error) => return Err(End::RemoteIo(error)),
        };
        let input = self.buf.get(..n).unwrap_or_default();
        self.validator
            .feed(input, &mut self.out)
            .map_err(End::Violation)
    }

    async fn run<R, W>(&mut self, remote: &mut R, local: &mut W) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if !self.out.is_empty() {
                if let Err(error) = local.write_all(&self.out).await {
                    return End::LocalIo(error);
                }
                self.out.clear();
                // A large command or burst may have grown it; keep the steady state small.
                self.out.shrink_to(2 * BUF_LEN);
            }
            if let Err(end) = self.read_validated(remote).await {
                return end;
            }
        }
    }
}

/// The unvalidated direction: bytes our own zmq.rs produced, copied to the remote.
async fn pipe_plain<R, W>(local: &mut R, remote: &mut W) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; BUF_LEN].into_boxed_slice();
    loop {
        let n = match local.read(&mut buf).await {
            Ok(0) => return End::LocalClosed,
            Ok(n) => n,
            Err(error) => return End::LocalIo(error),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        if let Err(error) = remote.write_all(chunk).await {
            return End::RemoteIo(error);
        }
    }
}
