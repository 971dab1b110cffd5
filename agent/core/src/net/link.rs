//! One outbound link: dials a configured neighbour through the outbound guard relay with a
//! fresh zmq.rs DEALER per attempt (a zmq.rs DEALER never reconnects by itself), pipes
//! messages between the DEALER and the mesh task over bounded channels, and re-dials with
//! capped exponential backoff when the link drops or the mesh task declares it dead.
//!
//! Not here: any protocol decision. The link task only moves bytes and reports up/down.

use super::guard::{self, GuardStats};
use super::zmtp::Limits;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use zeromq::{DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage};

/// First re-dial delay.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest re-dial delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How long one send into the DEALER may take before the link is declared stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long dialling (TCP plus ZMTP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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

async fn connect_once<E: From<LinkEvent>>(p: &mut LinkParams<E>, conn: u32) -> anyhow::Result<()> {
    let remote = resolve(&p.target).await?;
    let relay_stop = p.shutdown.child_token();
    let _stop_relay = relay_stop.clone().drop_guard();
    let (local, mut relay) =
        guard::open_outbound(remote, p.limits.clone(), p.stats.clone(), relay_stop).await?;
    let mut opts = SocketOptions::default();
    opts.connect_timeout(CONNECT_TIMEOUT);
    let mut dealer = DealerSocket::with_options(opts);
    tokio::time::timeout(CONNECT_TIMEOUT, dealer.connect(&format!("tcp://{local}")))
        .await
        .map_err(|_| anyhow::anyhow!("ZMTP handshake with '{}' timed out", p.target))??;
    let (mut tx, mut rx) = dealer.split();
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
    let result = loop {
        tokio::select! {
            _ = p.shutdown.cancelled() => break Ok(()),
            _ = &mut relay => break Err(anyhow::anyhow!("connection closed")),
            msg = rx.recv() => match msg {
                Ok(m) => {
                    // Mesh messages are single-part; anything else is dropped by gossip.
                    let bytes = m.into_vec().into_iter().next().unwrap_or_default();
                    // Bounded by credits; see the inbound reader in the mesh task.
                    let ev = LinkEvent::Message { link: p.link, conn, bytes };
                    if p.events.send(E::from(ev)).await.is_err() {
                        break Ok(());
                    }
                }
                Err(e) => break Err(anyhow::anyhow!("receive failed: {e}")),
            },
            cmd = p.commands.recv() => match cmd {
                Some(LinkCmd::Send(bytes)) => {
                    match tokio::time::timeout(SEND_TIMEOUT, tx.send(ZmqMessage::from(bytes))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break Err(anyhow::anyhow!("send failed: {e}")),
                        Err(_) => break Err(anyhow::anyhow!("send stuck for 1 s")),
                    }
                }
                Some(LinkCmd::Reset) => break Err(anyhow::anyhow!("peer silent; re-dialling")),
                None => break Ok(()),
            },
        }
    };
    let _ = p
        .events
        .send(E::from(LinkEvent::Down { link: p.link, conn }))
        .await;
    if let Err(error) = &result {
        info!(target = %p.target, %error, "link down");
    }
    result
}
