//! Round-trip latency of a DEALER -> ROUTER echo, direct and through the guard, on
//! 127.0.0.1. Prints a table; run with `cargo run --release --example guard_bench`.
//!
//! Paths: `direct` (zmq.rs DEALER -> zmq.rs ROUTER, no guard), `inbound` (zmq.rs DEALER ->
//! run_inbound, served in-line and echoed by `wire::echo`: how a node receives),
//! `link+inbound` (a link task, `link::run`, -> run_inbound: the real mesh path between two
//! nodes, both ends in-line). A round trip crosses each hop twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use meshmon_agent::net::guard::{GuardStats, run_inbound};
use meshmon_agent::net::link::{self, LinkCmd, LinkEvent, LinkParams};
use meshmon_agent::net::wire;
use meshmon_agent::net::zmtp::Limits;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

const WARMUP: usize = 500;
const ROUNDS: usize = 5_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let router = echo_router().await?;
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let guard = listener.local_addr()?;
    let stats = Arc::new(GuardStats::default());
    let (events, consumer) = mpsc::channel(1024);
    tokio::spawn(wire::echo(consumer));
    tokio::spawn(run_inbound(
        listener,
        events,
        Limits::default(),
        Arc::clone(&stats),
        shutdown.clone(),
    ));

    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9}",
        "path", "p50 us", "p90 us", "p99 us", "max us"
    );
    for (name, addr) in [
        ("direct", router),
        ("inbound", guard),
        ("link+inbound", guard),
    ] {
        let mut rtts = if name == "link+inbound" {
            measure_link(addr, &stats, &shutdown).await?
        } else {
            measure(addr).await?
        };
        rtts.sort_unstable();
        let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q) as usize].as_micros();
        println!(
            "{name:<14} {:>9} {:>9} {:>9} {:>9}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
    shutdown.cancel();
    Ok(())
}

async fn echo_router() -> Result<SocketAddr> {
    let mut router = RouterSocket::new();
    let endpoint = router.bind("tcp://127.0.0.1:0").await?;
    tokio::spawn(async move {
        while let Ok(message) = router.recv().await {
            let _ = router.send(message).await;
        }
    });
    let text = endpoint.to_string();
    text.trim_start_matches("tcp://")
        .parse()
        .with_context(|| format!("endpoint '{text}'"))
}

async fn measure(addr: SocketAddr) -> Result<Vec<Duration>> {
    let mut dealer = DealerSocket::new();
    dealer.connect(&format!("tcp://{addr}")).await?;
    let payload = Bytes::from(vec![0x5a; 200]);
    let mut rtts = Vec::with_capacity(ROUNDS);
    for i in 0..WARMUP + ROUNDS {
        let message = ZmqMessage::try_from(vec![Bytes::from_static(b"bench"), payload.clone()])
            .map_err(|_| anyhow::anyhow!("empty message"))?;
        let start = Instant::now();
        dealer.send(message).await?;
        dealer.recv().await?;
        if i >= WARMUP {
            rtts.push(start.elapsed());
        }
    }
    Ok(rtts)
}

/// Round trips through a link task, as the mesh task drives one.
async fn measure_link(
    addr: SocketAddr,
    stats: &Arc<GuardStats>,
    shutdown: &CancellationToken,
) -> Result<Vec<Duration>> {
    let (events, mut from_link) = mpsc::channel::<LinkEvent>(1024);
    let (commands, rx) = mpsc::channel(1024);
    tokio::spawn(link::run(LinkParams {
        link: 0,
        target: addr.to_string(),
        events,
        commands: rx,
        limits: Limits::default(),
        stats: Arc::clone(stats),
        shutdown: shutdown.child_token(),
    }));
    match from_link.recv().await {
        Some(LinkEvent::Up { .. }) => {}
        other => anyhow::bail!("link did not come up: {other:?}"),
    }
    let payload = Bytes::from(vec![0x5a; 200]);
    let mut rtts = Vec::with_capacity(ROUNDS);
    for i in 0..WARMUP + ROUNDS {
        let start = Instant::now();
        commands
            .send(LinkCmd::Send(payload.clone()))
            .await
            .map_err(|_| anyhow::anyhow!("link gone"))?;
        match from_link.recv().await {
            Some(LinkEvent::Message { .. }) => {}
            other => anyhow::bail!("expected the echo, got {other:?}"),
        }
        if i >= WARMUP {
            rtts.push(start.elapsed());
        }
    }
    Ok(rtts)
}
