//! The ZMTP guard against real zmq.rs sockets and raw adversarial TCP clients, on 127.0.0.1:
//! inbound connections (the public port) and outbound links (`link::run`), both served
//! in-line.

mod zmtp_util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meshmon_agent::net::guard::GuardStats;
use meshmon_agent::net::link::{self, LinkCmd, LinkEvent, LinkParams};
use meshmon_agent::net::zmtp::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zmtp_util::{
    Chatter, Guard, closed_within, dealer, echo_router, handshake, raw, ready, round_trip,
    send_lossy, test_limits,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_and_router_talk_through_the_inbound_guard() {
    let guard = Guard::start(Limits::default()).await;
    let mut dealer = dealer(guard.addr).await;
    round_trip(&mut dealer, &[b"hello"]).await;
    round_trip(&mut dealer, &[b"a", b"", &[7; 300], &[9; 60_000]]).await;
    for i in 0..50u8 {
        round_trip(&mut dealer, &[b"seq", &[i]]).await;
    }
    let stats = guard.stats();
    assert_eq!((stats.accepted, stats.open, stats.violations), (1, 1, 0));
}

/// A link task (`link::run`: our in-line DEALER, as a node dials a neighbour) to `addr`.
struct Link {
    commands: mpsc::Sender<LinkCmd>,
    events: mpsc::Receiver<LinkEvent>,
    stats: Arc<GuardStats>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    fn start(addr: SocketAddr, limits: Limits) -> Link {
        let (events, from_link) = mpsc::channel::<LinkEvent>(1024);
        let (commands, rx) = mpsc::channel(1024);
        let stats = Arc::new(GuardStats::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(link::run(LinkParams {
            link: 0,
            target: addr.to_string(),
            events,
            commands: rx,
            limits,
            stats: Arc::clone(&stats),
            shutdown: shutdown.clone(),
        }));
        Link {
            commands,
            events: from_link,
            stats,
            shutdown,
            task,
        }
    }

    async fn next(&mut self) -> Option<LinkEvent> {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn up(&mut self) {
        match self.next().await {
            Some(LinkEvent::Up { .. }) => {}
            other => panic!("link up expected, got {other:?}"),
        }
    }

    async fn round_trip(&mut self, body: &[u8]) {
        let sent = Bytes::copy_from_slice(body);
        self.commands
            .send(LinkCmd::Send(sent.clone()))
            .await
            .expect("link task");
        match self.next().await {
            Some(LinkEvent::Message { bytes, .. }) => assert_eq!(bytes, sent),
            other => panic!("echo expected, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_reaches_the_inbound_guard_in_line_both_ends() {
    let guard = Guard::start(Limits::default()).await;
    let mut link = Link::start(guard.addr, Limits::default());
    link.up().await;
    link.round_trip(b"hello").await;
    link.round_trip(&[7; 60_000]).await;
    for i in 0..50u8 {
        link.round_trip(&[i; 3]).await;
    }
    assert_eq!(link.stats.snapshot().open, 1);
    // Cancelling the link's token ends it and closes the far side too.
    link.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), link.task)
        .await
        .expect("link ends on cancel")
        .expect("link task");
    assert_eq!(link.stats.snapshot().open, 0);
    guard.wait_for("inbound side closed", |s| s.open == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_talks_to_a_zmq_rs_router_and_redials_after_a_reset() {
    let router = echo_router().await;
    let mut link = Link::start(router, Limits::default());
    link.up().await;
    link.round_trip(b"one").await;
    // The mesh task declares the peer dead: the link drops and dials again.
    link.commands.send(LinkCmd::Reset).await.expect("link task");
    assert!(matches!(link.next().await, Some(LinkEvent::Down { .. })));
    link.up().await;
    link.round_trip(b"two").await;
    assert_eq!(link.stats.snapshot().violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_validates_what_the_remote_sends() {
    // A hostile "neighbour": valid handshake, then a frame claiming 2^44 bytes.
    let evil = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let evil_addr = evil.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = evil.accept().await {
            tokio::spawn(async move {
                let mut bytes = zmtp_util::greeting();
                bytes.extend(ready("ROUTER"));
                bytes.push(0x02);
                bytes.extend_from_slice(&(1u64 << 44).to_be_bytes());
                let _ = stream.write_all(&bytes).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    let mut link = Link::start(evil_addr, Limits::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(link.stats.snapshot().violations >= 1);
    // The bad frame may arrive with the handshake (no Up at all) or after it (Up, then
    // Down); no message ever passes.
    let mut up = false;
    while let Ok(event) = link.events.try_recv() {
        match event {
            LinkEvent::Up { .. } => up = true,
            LinkEvent::Down { .. } => up = false,
            LinkEvent::Message { .. } => panic!("a message passed: {event:?}"),
        }
    }
    assert!(!up, "the link is down after the violation");
    // A neighbour whose READY names an incompatible socket type never comes up.
    let publisher = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pub_addr = publisher.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = publisher.accept().await {
            let mut bytes = zmtp_util::greeting();
            bytes.extend(ready("PUB"));
            let _ = stream.write_all(&bytes).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let mut link = Link::start(pub_addr, Limits::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(link.events.try_recv().is_err(), "no Up for a PUB socket");
    assert!(link.stats.snapshot().violations >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_silent_or_closed_port_never_comes_up() {
    // Closed: connection refused, re-dialled with backoff, never up.
    let unused = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = unused.local_addr().expect("addr");
    drop(unused);
    let mut closed = Link::start(addr, Limits::default());
    // Silent: accepts TCP and says nothing; the handshake deadline ends each attempt.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            kept.push(stream);
        }
    });
    let mut mute = Link::start(silent_addr, test_limits());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(closed.events.try_recv().is_err());
    assert!(mute.events.try_recv().is_err());
    assert!(mute.stats.snapshot().handshake_timeouts >= 1);
    assert!(
        mute.stats.snapshot().open <= 1,
        "at most the attempt in progress is open"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused() {
    // A long handshake deadline: the admitted idle connections must outlive the test.
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let guard = Guard::start(limits).await;
    let mut first = raw(guard.addr).await;
    let _second = raw(guard.addr).await;
    guard.wait_for("two admitted", |s| s.accepted == 2).await;

    let mut third = raw(guard.addr).await;
    assert!(
        closed_within(&mut third, Duration::from_millis(300))
            .await
            .is_some(),
        "third connection was not refused"
    );
    guard
        .wait_for("one refused", |s| s.refused_over_cap == 1)
        .await;
    assert!(
        closed_within(&mut first, Duration::from_millis(100))
            .await
            .is_none(),
        "an admitted connection was closed"
    );

    // A slot frees when a connection ends.
    drop(first);
    guard.wait_for("slot freed", |s| s.open == 1).await;
    let _fourth = raw(guard.addr).await;
    guard.wait_for("fourth admitted", |s| s.accepted == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_guard_and_closes_connections() {
    let guard = Guard::start(test_limits()).await;
    let mut dealer_conn = raw(guard.addr).await;
    send_lossy(&mut dealer_conn, &handshake()).await;
    guard.wait_for("admitted", |s| s.accepted == 1).await;
    guard.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), guard.task)
        .await
        .expect("run_inbound returns on shutdown")
        .expect("guard task");
    assert!(
        closed_within(&mut dealer_conn, Duration::from_secs(1))
            .await
            .is_some()
    );
    assert_eq!(guard.stats.snapshot().open, 0);
}

/// Every hostile input is cut off while a legitimate DEALER keeps talking to the ROUTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_inputs_leave_a_legitimate_pair_untouched() {
    let limits = test_limits();
    let guard = Guard::start(limits.clone()).await;
    let chatter = Chatter::start(guard.addr).await;
    chatter.assert_alive("at start").await;

    // Random bytes: rejected at once.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut conn = raw(guard.addr).await;
    send_lossy(&mut conn, &noise).await;
    assert!(
        closed_within(&mut conn, Duration::from_secs(1))
            .await
            .is_some()
    );
    guard
        .wait_for("noise violation", |s| s.violations == 1)
        .await;

    // Random bytes after a valid handshake: rejected too.
    let mut conn = raw(guard.addr).await;
    let mut bytes = handshake();
    bytes.extend_from_slice(&noise);
    send_lossy(&mut conn, &bytes).await;
    assert!(
        closed_within(&mut conn, Duration::from_secs(1))
            .await
            .is_some()
    );
    guard
        .wait_for("post-handshake noise violation", |s| s.violations == 2)
        .await;
    chatter.assert_alive("after random bytes").await;

    // A truncated greeting held open: closed at the handshake deadline, not before.
    let mut conn = raw(guard.addr).await;
    send_lossy(&mut conn, &zmtp_util::greeting()[..20]).await;
    let took = closed_within(&mut conn, Duration::from_secs(3))
        .await
        .expect("truncated greeting closed");
    assert!(
        took >= limits.handshake_timeout - Duration::from_millis(100),
        "{took:?}"
    );
    guard
        .wait_for("handshake timeout", |s| s.handshake_timeouts == 1)
        .await;

    // A frame claiming 2^44 bytes: the connection closes, the process lives.
    let mut conn = raw(guard.addr).await;
    let mut bytes = handshake();
    bytes.push(0x02);
    bytes.extend_from_slice(&(1u64 << 44).to_be_bytes());
    send_lossy(&mut conn, &bytes).await;
    assert!(
        closed_within(&mut conn, Duration::from_secs(1))
            .await
            .is_some()
    );
    guard
        .wait_for("2^44 violation", |s| s.violations == 3)
        .await;
    chatter.assert_alive("after the 2^44 claim").await;

    // A 100k-part message: closed at part max_parts + 1.
    let mut conn = raw(guard.addr).await;
    let mut bytes = handshake();
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[0x01, 1, b'x']);
    }
    send_lossy(&mut conn, &bytes).await;
    assert!(
        closed_within(&mut conn, Duration::from_secs(1))
            .await
            .is_some()
    );
    guard
        .wait_for("too many parts", |s| s.violations == 4)
        .await;

    // A valid handshake, then silence: closed at the idle timeout.
    let mut conn = raw(guard.addr).await;
    send_lossy(&mut conn, &handshake()).await;
    let took = closed_within(&mut conn, Duration::from_secs(3))
        .await
        .expect("idle connection closed");
    assert!(
        took >= limits.idle_timeout - Duration::from_millis(100),
        "{took:?}"
    );
    guard
        .wait_for("idle timeout", |s| s.idle_timeouts == 1)
        .await;

    chatter.assert_alive("at the end").await;
    let stats = guard.stats();
    assert_eq!(stats.open, 1, "only the chatter is left: {stats:?}");
}
