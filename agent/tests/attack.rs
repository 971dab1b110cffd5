//! Hostile raw TCP input against a real `meshmon agent` process: random bytes, a truncated
//! greeting held open, a frame header claiming 2^44 bytes, a 1 GiB claim with a slow body, a
//! 100k-part message and 300 idle connections, all at once. The agent must stay up with
//! bounded memory while its link to a neighbour keeps delivering frames without a gap.

mod common;
mod zmtp_util;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zmtp_util::{closed_within, handshake, send_lossy};

async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    TcpStream::connect(addr).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_neither_crashes_nor_balloons_the_agent_and_links_keep_flowing() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, ring) = key_file(dir.path(), "mesh.key");
    let mut victim = Spec::new("victim");
    victim.key = Some(key.clone());
    let mut friend = Spec::new("friend");
    friend.key = Some(key);
    friend.neighbours = vec![victim.port];
    let mut v = Agent::start(dir.path(), &victim);
    let f = Agent::start(dir.path(), &friend);
    wait_all_see(
        &[f.target(), v.target()],
        &["friend", "victim"],
        &ring,
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("not converged: {e}"));
    let watch = Recorder::attach(&f.target(), &ring).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline_kb = v.rss_kb();
    let addr: SocketAddr = v.target().parse().expect("addr");
    let from = Instant::now();

    // 300 idle connections, held past the 5 s handshake deadline.
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Some(s) = connect(addr).await {
            idle.push(s);
        }
    }
    assert_eq!(
        idle.len(),
        300,
        "all 300 connections accepted (the cap is 1,024)"
    );

    let mut attacks = tokio::task::JoinSet::new();
    // Random bytes on 20 connections.
    for i in 0..20u64 {
        attacks.spawn(async move {
            let mut s = connect(addr).await?;
            let data: Vec<u8> = (0..4096u64)
                .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i * 97) >> 7) as u8)
                .collect();
            send_lossy(&mut s, &data).await;
            closed_within(&mut s, Duration::from_secs(6))
                .await
                .map(|_| "random")
        });
    }
    // A truncated greeting, held open: closed at the handshake deadline.
    attacks.spawn(async move {
        let mut s = connect(addr).await?;
        send_lossy(&mut s, &handshake()[..20]).await;
        closed_within(&mut s, Duration::from_secs(7))
            .await
            .map(|_| "truncated greeting")
    });
    // A valid handshake, then a frame header claiming 2^44 bytes.
    attacks.spawn(async move {
        let mut s = connect(addr).await?;
        let mut b = handshake();
        b.push(0x02);
        b.extend_from_slice(&(1u64 << 44).to_be_bytes());
        send_lossy(&mut s, &b).await;
        closed_within(&mut s, Duration::from_secs(3))
            .await
            .map(|_| "2^44 claim")
    });
    // A 1 GiB claim with a slowly trickled body.
    attacks.spawn(async move {
        let mut s = connect(addr).await?;
        let mut b = handshake();
        b.push(0x02);
        b.extend_from_slice(&(1u64 << 30).to_be_bytes());
        send_lossy(&mut s, &b).await;
        let chunk = vec![0x55u8; 1024];
        for _ in 0..200 {
            if s.write_all(&chunk).await.is_err() {
                return Some("1 GiB claim");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        closed_within(&mut s, Duration::from_secs(1))
            .await
            .map(|_| "1 GiB claim")
    });
    // A message of 100,000 parts.
    attacks.spawn(async move {
        let mut s = connect(addr).await?;
        let mut b = handshake();
        for _ in 0..100_000 {
            b.extend_from_slice(&[0x01, 0x01, 0x00]);
        }
        send_lossy(&mut s, &b).await;
        closed_within(&mut s, Duration::from_secs(3))
            .await
            .map(|_| "100k parts")
    });

    let mut peak_kb = 0;
    let mut closed = Vec::new();
    loop {
        tokio::select! {
            r = attacks.join_next() => match r {
                Some(r) => closed.push(r.expect("attack task")),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                peak_kb = peak_kb.max(v.rss_kb());
            }
        }
    }
    peak_kb = peak_kb.max(v.rss_kb());
    let unclosed: Vec<_> = closed.iter().filter(|c| c.is_none()).collect();
    assert!(
        unclosed.is_empty(),
        "every hostile connection is closed by the agent: {closed:?}"
    );

    // The idle ones are gone after the handshake deadline too.
    let mut still_open = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(50)).await.is_none() {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "idle connections closed at the handshake deadline"
    );
    let to = Instant::now();

    assert!(v.alive(), "the agent survived");
    let growth_kb = peak_kb.saturating_sub(baseline_kb);
    eprintln!(
        "victim RSS: baseline {baseline_kb} kB, peak {peak_kb} kB under attack (+{growth_kb} kB)"
    );
    assert!(
        growth_kb < 32 * 1024,
        "memory stays bounded: +{growth_kb} kB"
    );
    let gap = watch.max_gap("victim", from, to);
    assert!(
        gap <= Duration::from_secs(3),
        "the victim's frames kept flowing to its neighbour: gap {gap:?}"
    );
    // And the victim still answers as a node.
    let s = status(&v.target(), &ring)
        .await
        .expect("victim answers after the attack");
    assert!(fresh_hosts(&s, Duration::from_secs(3)).contains(&"friend".to_owned()));
}
