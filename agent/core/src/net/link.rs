//! One outbound link: dials a configured neighbour and serves the connection in-line
//! ([`wire::dial`]: our side is a ZMTP DEALER; every byte the neighbour sends is validated
//! and assembled into whole messages straight to the mesh task, our messages framed and
//! written back; no loopback relay and no zmq.rs), and re-dials with capped exponential
//! backoff when the link drops or the mesh task declares it dead. The guard's protection
//! applies as on inbound connections: the handshake deadline, the idle timeout, the
//! validator's limits, and the guard's counters ([`GuardStats`]).
//!
//! Not here: any protocol decision. The link task only moves bytes and reports up/down.

use super::guard::{self, End, GuardStats, OpenGauge};
use super::wire::{self, Outgoing};
use super::zmtp::Limits;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// First re-dial delay.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest re-dial delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How long dialling (TCP plus ZMTP handshake) may take.
const CONNECT_TIMEOUT: Duration = guard::CONNECT_TIMEOUT;

/// What a link task tells the mesh task. `conn` numbers the connection attempts of a link
/// so that messages of an old connection are never mistaken for the new one.
#[derive(Debug)]
pub enum LinkEvent {
    Up {
        link: usize,
        conn: u32,
        addr: String,
    },
    Down {
        link: usize,
        conn: u32,
    },
    Message {
        link: usize,
        conn: u32,
        bytes: Bytes,
    },
}

/// What the mesh task tells a link task.
#[derive(Debug)]
pub enum LinkCmd {
    Send(Bytes),
    /// Drop the current connection and dial again (the peer went silent).
    Reset,
}

/// Everything a link task needs. Events go to `events` as `E::from(LinkEvent)` (the mesh
/// task's one event queue).
pub struct LinkParams<E> {
    pub link: usize,
    /// `host:port`, resolved at each attempt.
    pub target: String,
    pub events: mpsc::Sender<E>,
    pub commands: mpsc::Receiver<LinkCmd>,
    pub limits: Limits,
    pub stats: Arc<GuardStats>,
    pub shutdown: CancellationToken,
}

/// Runs the link until shutdown.
pub async fn run<E: From<LinkEvent>>(mut p: LinkParams<E>) {
    let mut backoff = BACKOFF_START;
    let mut conn: u32 = 0;
    while !p.shutdown.is_cancelled() {
        conn = conn.wrapping_add(1);
        let started = tokio::time::Instant::now();
        match connect_once(&mut p, conn).await {
            Ok(()) => {}
            Err(error) => debug!(target = %p.target, %error, "link attempt failed"),
        }
        // Flush commands meant for the dead connection.
        while p.commands.try_recv().is_ok() {}
        if started.elapsed() > Duration::from_secs(10) {
            backoff = BACKOFF_START;
        }
        let jitter = Duration::from_millis(u64::from(rand::random::<u8>()) % 100);
        tokio::select! {
            _ = p.shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

async fn resolve(target: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(target)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("'{target}' resolves to no address")))
}

impl Outgoing for LinkCmd {
    fn write_to(self, out: &mut Vec<u8>) -> bool {
        match self {
            LinkCmd::Send(bytes) => {
                wire::encode(&wire::Message::single(bytes), out);
                true
            }
            LinkCmd::Reset => false,
        }
    }
}

async fn connect_once<E: From<LinkEvent>>(p: &mut LinkParams<E>, conn: u32) -> anyhow::Result<()> {
    let remote = resolve(&p.target).await?;
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
        .await
        .map_err(|_| {
            anyhow::anyhow!("connecting to '{remote}' timed out after {CONNECT_TIMEOUT:?}")
        })??;
    stream.set_nodelay(true)?;
    let _open = OpenGauge::new(Arc::clone(&p.stats));
    let deadline = Instant::now() + p.limits.handshake_timeout.min(CONNECT_TIMEOUT);
    let handshake = tokio::select! {
        () = p.shutdown.cancelled() => return Ok(()),
        r = wire::dial(&mut stream, &p.limits, deadline) => r,
    };
    let mut reader = match handshake {
        Ok(reader) => reader,
        Err(end) => {
            let why = end.to_string();
            guard::report(remote, end, &p.stats);
            anyhow::bail!("handshake with '{}' failed: {why}", p.target);
        }
    };
    info!(target = %p.target, %remote, "link up");
    if p.events
        .send(E::from(LinkEvent::Up {
            link: p.link,
            conn,
            addr: p.target.clone(),
        }))
        .await
        .is_err()
    {
        return Ok(());
    }
    let (link, idle) = (p.link, p.limits.idle_timeout);
    // Mesh messages are single-part; the first part of anything else goes on, and gossip
    // drops what it cannot open.
    let wrap = |m: wire::Message| {
        E::from(LinkEvent::Message {
            link,
            conn,
            bytes: m.first,
        })
    };
    let end = {
        let (mut rd, mut wr) = stream.split();
        tokio::select! {
            () = p.shutdown.cancelled() => End::Shutdown,
            end = wire::read_loop(&mut rd, &mut reader, idle, &p.events, wrap) => end,
            end = wire::write_loop(&mut wr, &mut p.commands) => end,
        }
    };
    let _ = p
        .events
        .send(E::from(LinkEvent::Down { link: p.link, conn }))
        .await;
    let result = match &end {
        End::Shutdown => Ok(()),
        // A Reset command (the peer went silent) or the mesh task gone.
        End::LocalClosed => Err(anyhow::anyhow!("closed by the mesh task; re-dialling")),
        other => Err(anyhow::anyhow!("{other}")),
    };
    if let Err(error) = &result {
        info!(target = %p.target, %error, "link down");
    }
    guard::report(remote, end, &p.stats);
    result
}
