//! The guard's endpoints, for interop checks against other ZMTP stacks
//! (`scripts/libzmq_interop.py` drives it with libzmq through pyzmq).
//!
//! - `guard_echo inbound`: `run_inbound` on 127.0.0.1, whose connections (served in-line,
//!   without zmq.rs) echo every message (`wire::echo`); prints the guard's address, then
//!   serves until SIGINT.
//! - `guard_echo outbound ADDR COUNT PAUSE_MS`: a link task (`link::run`: our in-line
//!   DEALER, as a node dials its neighbours) to ADDR; sends COUNT messages PAUSE_MS apart,
//!   expects each echoed, prints `ok`.
//!
//! Guard counters are printed to stderr at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use meshmon_agent::net::guard::{GuardStats, run_inbound};
use meshmon_agent::net::link::{self, LinkCmd, LinkEvent, LinkParams};
use meshmon_agent::net::wire;
use meshmon_agent::net::zmtp::Limits;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stats = Arc::new(GuardStats::default());
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["inbound"] => inbound(&stats).await?,
        ["outbound", addr, count, pause_ms] => {
            let addr: SocketAddr = addr.parse().with_context(|| format!("address '{addr}'"))?;
            outbound(addr, count.parse()?, pause_ms.parse()?, &stats).await?;
        }
        _ => bail!("usage: guard_echo inbound | guard_echo outbound ADDR COUNT PAUSE_MS"),
    }
    eprintln!("{:?}", stats.snapshot());
    Ok(())
}

async fn inbound(stats: &Arc<GuardStats>) -> Result<()> {
    let (events, consumer) = mpsc::channel(1024);
    tokio::spawn(wire::echo(consumer));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let guard = tokio::spawn(run_inbound(
        listener,
        events,
        Limits::default(),
        Arc::clone(stats),
        shutdown.clone(),
    ));
    // Serve until interrupted.
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    guard.await?;
    Ok(())
}

async fn next(from_link: &mut mpsc::Receiver<LinkEvent>) -> Option<LinkEvent> {
    tokio::time::timeout(Duration::from_secs(5), from_link.recv())
        .await
        .ok()
        .flatten()
}

async fn outbound(
    addr: SocketAddr,
    count: u32,
    pause_ms: u64,
    stats: &Arc<GuardStats>,
) -> Result<()> {
    let shutdown = CancellationToken::new();
    let (events, mut from_link) = mpsc::channel::<LinkEvent>(1024);
    let (commands, rx) = mpsc::channel(1024);
    let task = tokio::spawn(link::run(LinkParams {
        link: 0,
        target: addr.to_string(),
        events,
        commands: rx,
        limits: Limits::default(),
        stats: Arc::clone(stats),
        shutdown: shutdown.clone(),
    }));
    match next(&mut from_link).await {
        Some(LinkEvent::Up { .. }) => {}
        other => bail!("link did not come up within 5 s: {other:?}"),
    }
    for i in 0..count {
        let sent = Bytes::from(format!("message {i}"));
        commands
            .send(LinkCmd::Send(sent.clone()))
            .await
            .map_err(|_| anyhow::anyhow!("link gone"))?;
        match next(&mut from_link).await {
            Some(LinkEvent::Message { bytes, .. }) if bytes == sent => {}
            other => bail!("echo {i}: got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    println!("ok");
    shutdown.cancel();
    task.await?;
    Ok(())
}
