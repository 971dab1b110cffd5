//! Memory of the guard under idle connections and huge length claims. Its own test binary
//! (one process, one test) so that the RSS readings are not disturbed by other tests.
//! Run with `--nocapture` to see the measured numbers.

mod zmtp_util;

use std::time::Duration;

use meshmon_agent::net::zmtp::Limits;
use tokio::io::AsyncWriteExt;
use zmtp_util::{Chatter, Guard, closed_within, handshake, raw, rss_kib, send_lossy};

const IDLE: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_flat_under_idle_connections_and_huge_claims() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let guard = Guard::start(limits.clone()).await;
    let chatter = Chatter::start(guard.addr).await;
    chatter.assert_alive("at start").await;

    // 300 connections that send nothing: no buffers, no upstream connection.
    let base = rss_kib();
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(raw(guard.addr).await);
    }
    guard
        .wait_for("all admitted", |s| s.accepted == IDLE + 1)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let silent = rss_kib().saturating_sub(base);
    println!("rss for {IDLE} silent connections: +{silent} KiB (base {base} KiB)");
    chatter.assert_alive("with silent connections").await;
    for conn in &mut idle {
        assert!(closed_within(conn, Duration::from_secs(3)).await.is_some());
    }
    drop(idle);
    guard
        .wait_for("silent ones timed out", |s| s.handshake_timeouts == IDLE)
        .await;

    // 300 connections stuck after a partial greeting: buffers and an upstream connection
    // (and a zmq.rs handshake task) each, until the deadline.
    let base = rss_kib();
    let mut partial = Vec::new();
    for _ in 0..IDLE {
        let mut conn = raw(guard.addr).await;
        send_lossy(&mut conn, &handshake()[..10]).await;
        partial.push(conn);
    }
    guard
        .wait_for("all admitted", |s| s.accepted == 2 * IDLE + 1)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stuck = rss_kib().saturating_sub(base);
    println!("rss for {IDLE} connections stuck mid-greeting: +{stuck} KiB (base {base} KiB)");
    chatter.assert_alive("with half-open connections").await;
    for conn in &mut partial {
        assert!(closed_within(conn, Duration::from_secs(3)).await.is_some());
    }
    drop(partial);
    guard
        .wait_for("stuck ones timed out", |s| s.handshake_timeouts == 2 * IDLE)
        .await;

    // A 1 GiB claim with a slowly trickled body: closed at the header, nothing buffered.
    let base = rss_kib();
    let mut conn = raw(guard.addr).await;
    let mut bytes = handshake();
    bytes.push(0x02);
    bytes.extend_from_slice(&(1u64 << 30).to_be_bytes());
    send_lossy(&mut conn, &bytes).await;
    let chunk = vec![0x55u8; 64 * 1024];
    let mut trickled = 0usize;
    for _ in 0..4_800 {
        // Up to 300 MiB, 64 KiB every 2 ms, until the guard's close makes writes fail.
        if conn.write_all(&chunk).await.is_err() {
            break;
        }
        trickled += chunk.len();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let grown = rss_kib().saturating_sub(base);
    println!("rss after a 1 GiB claim (trickled {trickled} bytes before the close): +{grown} KiB");
    assert!(
        trickled < 16 << 20,
        "the guard kept reading: {trickled} bytes"
    );
    guard
        .wait_for("1 GiB violation", |s| s.violations == 1)
        .await;
    chatter.assert_alive("after the 1 GiB claim").await;

    // Loose bounds: a task and a socket cost about a KiB each; buffers allocated for silent
    // sockets (16 KiB each) or memory for a claimed frame would cost megabytes.
    // Measured (debug build, client sockets included): ~0.5 MiB, ~6 MiB, 0.
    assert!(silent < 3 * 1024, "silent connections cost {silent} KiB");
    assert!(stuck < 16 * 1024, "stuck connections cost {stuck} KiB");
    assert!(grown < 4 * 1024, "the 1 GiB claim grew RSS by {grown} KiB");
}
