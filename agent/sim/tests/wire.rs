//! The fleet against a bare zmq.rs ROUTER on 127.0.0.1 playing a node, written from
//! PROTOCOL.md alone: everything the fleet sends is opened and decoded with `meshmon_proto`
//! and checked (hello, origins, boot ids, gap-free sequences, payloads, pacing, credits,
//! reconnects, backfill answers, a wrong key).

use bytes::Bytes;
use meshmon_proto::payload::{BackfillRequest, Heartbeat, Hello, Role};
use meshmon_proto::samples::SampleDecoder;
use meshmon_proto::{Flags, Header, Key, Keyring, Kind, Payload};
use meshmon_sim::{Fleet, FleetConfig, FleetHandle, Pattern};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// A frame the fake node received, opened.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    header: Header,
    payload: Option<Payload>,
}

/// The node's side of one link, by hand.
struct FakeNode {
    router: RouterSocket,
    keyring: Keyring,
    peer: Option<Bytes>,
    nonce: u64,
    seq: u64,
    window: u32,
    /// Credit-bearing frames received.
    received: u64,
}

impl FakeNode {
    async fn bind(addr: &str, keyring: &Keyring, window: u32) -> (FakeNode, SocketAddr) {
        let mut router = RouterSocket::new();
        let ep = router.bind(&format!("tcp://{addr}")).await.expect("bind");
        let addr: SocketAddr = ep
            .to_string()
            .trim_start_matches("tcp://")
            .parse()
            .expect("addr");
        let node = FakeNode {
            router,
            keyring: keyring.clone(),
            peer: None,
            nonce: 0xfeed,
            seq: 0,
            window,
            received: 0,
        };
        (node, addr)
    }

    fn seal(&mut self, origin: &str, flags: Flags, payload: &Payload) -> Bytes {
        self.seq += 1;
        let header = Header {
            kind: payload.kind(),
            flags,
            origin: origin.into(),
            boot_id: 7,
            seq: self.seq,
            ts_ms: 1,
        };
        Bytes::from(
            self.keyring
                .seal(&header, 0, &payload.encode().expect("encode"))
                .expect("seal"),
        )
    }

    async fn send(&mut self, bytes: Bytes) {
        let id = self.peer.clone().expect("a peer");
        let mut msg = ZmqMessage::from(id);
        msg.push_back(bytes);
        self.router.send(msg).await.expect("send");
    }

    async fn send_link(&mut self, payload: Payload) {
        let b = self.seal("node", Flags::LINK, &payload);
        self.send(b).await;
    }

    async fn ack(&mut self) {
        let acked = self.received;
        self.send_link(Payload::Heartbeat(Heartbeat {
            acked,
            ..Heartbeat::default()
        }))
        .await;
    }

    /// The next message within `wait`: (frame bytes), remembering the sender.
    async fn recv(&mut self, wait: Duration) -> Option<Bytes> {
        let msg = tokio::time::timeout(wait, self.router.recv())
            .await
            .ok()?
            .ok()?;
        let mut parts = msg.into_vec().into_iter();
        self.peer = parts.next();
        parts.next()
    }

    /// Opens a frame; link control frames are not credit-bearing.
    fn open(&mut self, bytes: Bytes) -> Option<Got> {
        let o = self.keyring.open(&bytes).ok()?;
        let control = o.header.flags.contains(Flags::LINK)
            && matches!(o.header.kind, Kind::Hello | Kind::Heartbeat);
        if !control {
            self.received += 1;
        }
        Some(Got {
            at: Instant::now(),
            payload: Payload::decode(o.header.kind, &o.plaintext).ok(),
            header: o.header,
        })
    }

    /// Does the three-way hello as the listening side; returns the fleet's Hello.
    async fn handshake(&mut self) -> Hello {
        let first = loop {
            let b = self.recv(Duration::from_secs(10)).await.expect("a hello");
            if let Some(Got {
                payload: Some(Payload::Hello(h)),
                ..
            }) = self.open(b)
            {
                break h;
            }
        };
        assert_eq!(first.echo, 0, "the dialler opens with echo 0");
        let window = self.window;
        let nonce = self.nonce;
        self.send_link(Payload::Hello(Hello {
            name: "node".into(),
            boot_id: 7,
            role: Role::Node,
            version: "test".into(),
            window,
            nonce,
            echo: first.nonce,
        }))
        .await;
        let b = self
            .recv(Duration::from_secs(5))
            .await
            .expect("third hello");
        let Some(Got {
            payload: Some(Payload::Hello(third)),
            ..
        }) = self.open(b)
        else {
            panic!("the fleet's second message is its echoing hello")
        };
        assert_eq!((third.nonce, third.echo), (first.nonce, nonce));
        first
    }

    /// Collects gossip for `span`, acknowledging every 250 ms (`ack` false: never).
    async fn collect(&mut self, span: Duration, ack: bool) -> Vec<Got> {
        let end = Instant::now() + span;
        let mut last_ack = Instant::now();
        let mut out = Vec::new();
        while Instant::now() < end {
            if let Some(b) = self.recv(Duration::from_millis(50)).await
                && let Some(g) = self.open(b)
                && !g.header.flags.contains(Flags::LINK)
            {
                out.push(g);
            }
            if ack && last_ack.elapsed() >= Duration::from_millis(250) {
                self.ack().await;
                last_ack = Instant::now();
            }
        }
        out
    }
}

fn keyring() -> Keyring {
    Keyring::new(vec![Key::generate().expect("rng")]).expect("ring")
}

fn fleet(addr: SocketAddr, hosts: usize, key: &Keyring) -> FleetConfig {
    let mut cfg = FleetConfig::new(addr, hosts);
    cfg.interval = Duration::from_millis(500);
    cfg.series = 5;
    cfg.pattern = Pattern::RandomWalk;
    cfg.key = Some(key.clone());
    cfg
}

async fn start(cfg: FleetConfig) -> (FleetHandle, CancellationToken) {
    let stop = CancellationToken::new();
    (Fleet::start(cfg, stop.clone()).expect("start"), stop)
}

/// Per origin: (boot id, the sequence numbers in arrival order).
fn by_origin(frames: &[Got]) -> BTreeMap<String, (u64, Vec<u64>)> {
    let mut m: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for g in frames {
        let e = m.entry(g.header.origin.clone()).or_default();
        e.0 = g.header.boot_id;
        e.1.push(g.header.seq);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_sends_info_table_and_decodable_samples_spread_over_the_interval() {
    let key = keyring();
    let (mut node, addr) = FakeNode::bind("127.0.0.1:0", &key, 1024).await;
    let (fleet, _stop) = start(fleet(addr, 20, &key)).await;
    let hello = node.handshake().await;
    assert_eq!(
        (hello.name.as_str(), hello.role, hello.window),
        ("sim-fleet", Role::Node, 1024)
    );
    let frames = node.collect(Duration::from_millis(3200), true).await;
    let origins = by_origin(&frames);
    let names: Vec<&String> = origins.keys().collect();
    assert_eq!(names, fleet.host_names().iter().collect::<Vec<_>>());
    let mut boots: Vec<u64> = origins.values().map(|(b, _)| *b).collect();
    boots.sort_unstable();
    boots.dedup();
    assert_eq!(boots.len(), 20, "each host has a boot id of its own");
    for (origin, (_, seqs)) in &origins {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, &want, "{origin}: gap-free, in order");
        assert!(seqs.len() >= 7, "{origin}: {} frames in 3.2 s", seqs.len());
    }
    // Per host: host info, series table, then samples that decode to every series.
    let mut decoders: HashMap<String, SampleDecoder> = HashMap::new();
    for g in &frames {
        let dec = decoders.entry(g.header.origin.clone()).or_default();
        match (&g.payload, g.header.seq) {
            (Some(Payload::HostInfo(i)), 1) => {
                assert_eq!(i.interval_ms, 500);
                assert!(!i.dashboard);
            }
            (Some(Payload::SeriesTable(t)), 2) => {
                let names: Vec<&str> = t.series.iter().map(|s| s.0.as_str()).collect();
                for want in ["cpu.usage_pct", "mem.used_pct", "disk.used_pct"] {
                    assert!(names.contains(&want), "{names:?}");
                }
                assert_eq!(t.series.len(), 5);
                dec.table(t);
            }
            (Some(Payload::Samples(s)), seq) if seq >= 3 => {
                let (values, gap) = dec.apply(s);
                assert_eq!(gap, None, "{}: seq {seq}", g.header.origin);
                assert_eq!(values.len(), 5);
                for (k, v) in values {
                    if k.name.ends_with("_pct") {
                        assert!((0.0..=100.0).contains(&v), "{k} = {v}");
                    }
                }
            }
            (p, seq) => panic!("{}: unexpected {p:?} at seq {seq}", g.header.origin),
        }
    }
    // Spread, not bursts: within one interval, the 20 hosts' samples arrive over most of it.
    let samples: Vec<Instant> = frames
        .iter()
        .filter(|g| g.header.kind == Kind::Samples)
        .map(|g| g.at)
        .collect();
    let mid = samples.len() / 2;
    let spread = samples[mid + 10] - samples[mid - 9];
    assert!(
        spread >= Duration::from_millis(300),
        "20 hosts' samples within {spread:?} (interval 500 ms)"
    );
    let gaps: Vec<Duration> = samples.windows(2).map(|w| w[1] - w[0]).collect();
    let bunched = gaps
        .iter()
        .filter(|g| **g < Duration::from_millis(5))
        .count();
    assert!(
        bunched * 2 < gaps.len(),
        "{bunched} of {} consecutive samples within 5 ms",
        gaps.len()
    );
    let st = fleet.stats();
    assert!(
        st.connected && st.connects == 1 && st.reconnects == 0,
        "{st}"
    );
    assert_eq!(st.frames_refused(), 0, "{st}");
    eprintln!("{st}");
    fleet.join().await;
}

/// `aligned`: as agents collect, every host's samples leave at once on the wall clock's
/// multiples of the interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_hosts_send_their_samples_at_once_on_the_wall_clocks_boundaries() {
    let key = keyring();
    let (mut node, addr) = FakeNode::bind("127.0.0.1:0", &key, 1024).await;
    let mut cfg = fleet(addr, 20, &key);
    cfg.aligned = true;
    let (fleet, _stop) = start(cfg).await;
    node.handshake().await;
    let frames = node.collect(Duration::from_millis(2600), true).await;
    let samples: Vec<&Got> = frames
        .iter()
        .filter(|g| g.header.kind == Kind::Samples)
        .collect();
    assert!(samples.len() >= 80, "{} samples in 2.6 s", samples.len());
    for g in &samples {
        let past = g.header.ts_ms % 500;
        assert!(
            past < 50,
            "{} seq {} stamped {past} ms past a 500 ms boundary",
            g.header.origin,
            g.header.seq
        );
    }
    // In bursts: each host's frames of one round arrive within a few ms of the others'.
    let mut rounds: BTreeMap<u64, Vec<Instant>> = BTreeMap::new();
    for g in &samples {
        rounds.entry(g.header.ts_ms / 500).or_default().push(g.at);
    }
    for (round, at) in rounds.iter().filter(|(_, at)| at.len() == 20) {
        let (lo, hi) = (at.iter().min(), at.iter().max());
        let width = hi.zip(lo).map(|(h, l)| *h - *l).unwrap_or_default();
        assert!(
            width < Duration::from_millis(50),
            "round {round}: {width:?}"
        );
    }
    assert_eq!(fleet.stats().frames_refused(), 0);
    fleet.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_window_unacknowledged_and_refusals_are_counted() {
    let key = keyring();
    let (mut node, addr) = FakeNode::bind("127.0.0.1:0", &key, 8).await;
    let (fleet, _stop) = start(fleet(addr, 10, &key)).await;
    node.handshake().await;
    let frames = node.collect(Duration::from_millis(1500), false).await;
    assert_eq!(frames.len(), 8, "exactly the window, no acknowledgement");
    let st = fleet.stats();
    assert!(st.refused_no_credit > 0, "{st}");
    assert!(
        st.boots_deferred > 10,
        "hosts wait to boot until their first frames fit: {st}"
    );
    node.ack().await;
    let more = node.collect(Duration::from_millis(1000), false).await;
    assert_eq!(more.len(), 8, "another window after one acknowledgement");
    let origins = by_origin(&[frames, more].concat());
    // Every host that spoke began with its first frames (host info, table, samples)...
    for (origin, (_, seqs)) in &origins {
        assert_eq!(
            &seqs[..3.min(seqs.len())],
            &[1, 2, 3][..3.min(seqs.len())],
            "{origin}"
        );
    }
    // ...and the frames refused later left holes in its sequence: a dashboard asks for them.
    assert!(
        origins
            .values()
            .any(|(_, s)| s.windows(2).any(|w| w[1] > w[0] + 1)),
        "{origins:?}"
    );
    fleet.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_node_restarts_the_fleet_reconnects_resends_descriptors_and_answers_backfill() {
    let key = keyring();
    let (mut node, addr) = FakeNode::bind("127.0.0.1:0", &key, 1024).await;
    let (fleet, _stop) = start(fleet(addr, 4, &key)).await;
    node.handshake().await;
    let before = node.collect(Duration::from_millis(1200), true).await;
    let high_before = by_origin(&before)["sim-0001"]
        .1
        .last()
        .copied()
        .expect("frames");
    drop(node);
    // Down for a while: the hosts go on originating.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut node, _) = FakeNode::bind(&addr.to_string(), &key, 1024).await;
    node.handshake().await;
    let after = node.collect(Duration::from_millis(1500), true).await;
    let st = fleet.stats();
    assert_eq!((st.connects, st.reconnects), (2, 1), "{st}");
    assert!(st.refused_offline > 0, "{st}");
    // On the new link each host first re-sends its latest host info and series table.
    for name in fleet.host_names() {
        let kinds: Vec<Kind> = after
            .iter()
            .filter(|g| &g.header.origin == name)
            .map(|g| g.header.kind)
            .take(3)
            .collect();
        assert_eq!(
            kinds,
            [Kind::HostInfo, Kind::SeriesTable, Kind::Samples],
            "{name}"
        );
    }
    let seqs = &by_origin(&after)["sim-0001"].1;
    let first_live = seqs[2];
    assert!(
        first_live > high_before + 2,
        "frames while down are missing live"
    );
    // A dashboard asks sim-0001 for what it missed; the answer replays it, context first.
    let boot = by_origin(&after)["sim-0001"].0;
    let req = node.seal(
        "dash",
        Flags::REPLAY,
        &Payload::BackfillRequest(BackfillRequest {
            target: "sim-0001".into(),
            boot_id: boot,
            from_seq: high_before + 1,
            to_seq: first_live - 1,
        }),
    );
    node.send(req).await;
    let got = node.collect(Duration::from_millis(1000), true).await;
    let replays: Vec<&Got> = got
        .iter()
        .filter(|g| g.header.flags.contains(Flags::REPLAY))
        .collect();
    assert_eq!(replays.len(), 1, "one replay frame");
    assert_eq!(replays[0].header.origin, "sim-0001");
    let Some(Payload::Replay(r)) = &replays[0].payload else {
        panic!("a replay")
    };
    assert_eq!(r.to, "dash");
    assert!(r.last);
    let inner: Vec<u64> = r
        .frames
        .iter()
        .map(|f| {
            let o = key
                .open(f)
                .expect("inner frames are the origin's own sealed frames");
            assert_eq!(o.header.origin, "sim-0001");
            assert!(!o.header.flags.contains(Flags::REPLAY));
            o.header.seq
        })
        .collect();
    let range: Vec<u64> = (high_before + 1..first_live).collect();
    assert!(
        inner.ends_with(&range),
        "the whole range, in order: {inner:?}"
    );
    assert_eq!(fleet.stats().replays_sent, 1);
    fleet.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_with_the_wrong_key_never_gets_a_link() {
    let (mut node, addr) = FakeNode::bind("127.0.0.1:0", &keyring(), 1024).await;
    let (fleet, _stop) = start(fleet(addr, 2, &keyring())).await;
    // The node cannot open the fleet's hello; it answers one of its own anyway (a real node
    // would not), which the fleet cannot open either.
    let b = node.recv(Duration::from_secs(5)).await.expect("a hello");
    assert!(node.keyring.open(&b).is_err());
    node.send_link(Payload::Hello(Hello {
        name: "node".into(),
        nonce: 5,
        echo: 1,
        window: 1024,
        ..Hello::default()
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = fleet.stats();
    assert!(!st.connected && st.auth_failures == 1, "{st}");
    assert_eq!(st.frames_sent, 0);
    fleet.join().await;
}
