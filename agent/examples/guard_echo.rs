//! The guard's endpoints, for interop checks against other ZMTP stacks
//! (`scripts/libzmq_interop.py` drives it with libzmq through pyzmq).
//!
//! - `guard_echo inbound`: `run_inbound` on 127.0.0.1, whose connections (served in-line,
//!   without zmq.rs) echo every message (`wire::echo`); prints the guard's address, then
//!   serves until SIGINT.
//! - `guard_echo outbound ADDR COUNT PAUSE_MS`: a zmq.rs DEALER linked to ADDR through
//!   `open_outbound`; sends COUNT messages PAUSE_MS apart, expects each echoed, prints `ok`.
//!
//! Guard counters are printed to stderr at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use meshmon_agent::net::guard::{GuardStats, open_outbound, run_inbound};
use meshmon_agent::net::wire;
use meshmon_agent::net::zmtp::Limits;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

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

async fn outbound(
    addr: SocketAddr,
    count: u32,
    pause_ms: u64,
    stats: &Arc<GuardStats>,
) -> Result<()> {
    let shutdown = CancellationToken::new();
    let (local, relay) =
        open_outbound(addr, Limits::default(), Arc::clone(stats), shutdown.clone()).await?;
    let mut dealer = DealerSocket::new();
    dealer.connect(&format!("tcp://{local}")).await?;
    for i in 0..count {
        let sent = Bytes::from(format!("message {i}"));
        let message = ZmqMessage::try_from(vec![Bytes::from_static(b"interop"), sent.clone()])
            .map_err(|_| anyhow::anyhow!("empty message"))?;
        dealer.send(message).await?;
        let reply = tokio::time::timeout(Duration::from_secs(5), dealer.recv())
            .await
            .context("no echo within 5 s")??;
        if reply.get(1) != Some(&sent) {
            bail!("echo {i} differs: {reply:?}");
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    println!("ok");
    shutdown.cancel();
    relay.await?;
    Ok(())
}
