//! Gossip driven through a simulated network: machines joined by in-memory links, a fake
//! clock, a queue of messages. No sockets.

use super::*;
use meshmon_proto::Key;
use meshmon_proto::payload::{ByteBuf, HostInfo, Status};
use proptest::prelude::*;
use std::collections::VecDeque;

struct Sim {
    nodes: Vec<Gossip>,
    /// link id -> (node a, node b); peer id on a is 2*link, on b 2*link+1.
    links: Vec<(usize, usize)>,
    queue: VecDeque<(usize, PeerId, Bytes)>,
    delivered: Vec<Vec<Delivered>>,
    now: Now,
    /// Frames a node sent: (node, peer, bytes), for replay tests.
    sent: Vec<(usize, PeerId, Bytes)>,
    /// Peers whose messages are not delivered (stalled).
    stalled: Vec<(usize, PeerId)>,
}

fn key() -> Keyring {
    Keyring::new(vec![
        Key::from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").expect("key"),
    ])
    .expect("ring")
}

impl Sim {
    fn new(n: usize, max_hops: u8) -> Sim {
        let nodes = (0..n)
            .map(|i| {
                let mut c = GossipConfig::new(&format!("n{i}"), 1000 + i as u64, max_hops);
                c.deliver_all = true;
                Gossip::new(c, key())
            })
            .collect();
        Sim {
            nodes,
            links: Vec::new(),
            queue: VecDeque::new(),
            delivered: vec![Vec::new(); n],
            now: Now {
                mono_us: 1_000_000,
                wall_ms: 1_700_000_000_000,
            },
            sent: Vec::new(),
            stalled: Vec::new(),
        }
    }

    fn other_end(&self, node: usize, peer: PeerId) -> Option<(usize, PeerId)> {
        let (a, b) = *self.links.get((peer / 2) as usize)?;
        if peer.is_multiple_of(2) && node == a {
            Some((b, peer + 1))
        } else if peer % 2 == 1 && node == b {
            Some((a, peer - 1))
        } else {
            None
        }
    }

    fn input(&mut self, node: usize, input: Input) {
        let mut out = Vec::new();
        self.nodes[node].handle(self.now, input, &mut out);
        for a in out {
            match a {
                Action::Send { peer, bytes } => {
                    self.sent.push((node, peer, bytes.clone()));
                    if self.stalled.contains(&(node, peer)) {
                        continue;
                    }
                    if let Some((to, to_peer)) = self.other_end(node, peer) {
                        self.queue.push_back((to, to_peer, bytes));
                    }
                }
                Action::Disconnect { .. } => {}
                Action::Deliver(d) => self.delivered[node].push(*d),
            }
        }
    }

    /// Links a (dialler) to b.
    fn link(&mut self, a: usize, b: usize) {
        let id = self.links.len() as u64;
        self.links.push((a, b));
        self.input(
            b,
            Input::PeerUp {
                peer: 2 * id + 1,
                direction: Direction::In,
                addr: format!("n{a}"),
            },
        );
        self.input(
            a,
            Input::PeerUp {
                peer: 2 * id,
                direction: Direction::Out,
                addr: format!("n{b}"),
            },
        );
        self.run();
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((to, peer, bytes)) = self.queue.pop_front() {
            self.input(to, Input::Message { peer, bytes });
            steps += 1;
            assert!(steps < 1_000_000, "no quiescence");
        }
    }

    fn advance(&mut self, us: u64) {
        self.now.mono_us += us;
        self.now.wall_ms += us / 1000;
        for i in 0..self.nodes.len() {
            self.input(i, Input::Tick);
        }
        self.run();
    }

    fn originate(&mut self, node: usize) {
        let info = Payload::HostInfo(HostInfo {
            os: format!("os of n{node}"),
            ..HostInfo::default()
        });
        self.input(node, Input::Local(info));
        self.run();
    }

    fn seen_by(&self, node: usize, origin: usize) -> usize {
        let name = format!("n{origin}");
        self.delivered[node]
            .iter()
            .filter(|d| {
                d.header.origin == name && d.from.is_some() && !d.header.flags.contains(Flags::LINK)
            })
            .count()
    }
}

#[test]
fn line_floods_to_every_node_exactly_once() {
    let mut s = Sim::new(5, 8);
    for i in 0..4 {
        s.link(i, i + 1);
    }
    for i in 0..5 {
        s.originate(i);
    }
    for n in 0..5 {
        for o in (0..5).filter(|&o| o != n) {
            assert_eq!(s.seen_by(n, o), 1, "node {n} sees origin {o} once");
        }
        assert_eq!(s.nodes[n].hosts().len(), 5);
    }
    let h = s.nodes[0]
        .hosts()
        .into_iter()
        .find(|h| h.name == "n4")
        .expect("n4 known");
    assert_eq!(h.hops, 4);
    assert_eq!(h.os, "os of n4");
}

#[test]
fn ring_with_chord_deduplicates() {
    let mut s = Sim::new(6, 8);
    for i in 0..6 {
        s.link(i, (i + 1) % 6);
    }
    s.link(0, 3);
    for i in 0..6 {
        s.originate(i);
    }
    for n in 0..6 {
        for o in (0..6).filter(|&o| o != n) {
            assert_eq!(s.seen_by(n, o), 1);
        }
    }
    assert!(s.nodes.iter().map(|g| g.counters().duplicates).sum::<u64>() > 0);
    let h = s.nodes[0]
        .hosts()
        .into_iter()
        .find(|h| h.name == "n3")
        .expect("n3");
    assert_eq!(h.hops, 1, "the chord is the shortest path");
}

#[test]
fn frames_stop_at_max_hops() {
    let mut s = Sim::new(6, 3);
    for i in 0..5 {
        s.link(i, i + 1);
    }
    s.originate(0);
    assert_eq!(s.seen_by(3, 0), 1, "3 hops away: reached");
    assert_eq!(s.seen_by(4, 0), 0, "4 hops away: not reached");
    assert_eq!(s.seen_by(5, 0), 0);
}

#[test]
fn wrong_key_is_rejected_at_first_hop_and_counted() {
    let mut s = Sim::new(3, 8);
    let bad = Keyring::new(vec![Key::generate().expect("rng")]).expect("ring");
    let mut c = GossipConfig::new("n0", 1000, 8);
    c.deliver_all = true;
    s.nodes[0] = Gossip::new(c, bad);
    s.link(0, 1);
    s.link(1, 2);
    s.originate(0);
    s.advance(1_000_000);
    assert_eq!(s.seen_by(1, 0), 0);
    assert_eq!(s.seen_by(2, 0), 0);
    assert!(s.nodes[1].counters().auth_failures >= 1);
    let link = s.nodes[1]
        .peers()
        .find(|(id, _)| **id == 1)
        .map(|(_, p)| p.auth_failures);
    assert!(link.unwrap_or(0) >= 1, "counted on the link it came from");
    assert_eq!(s.nodes[2].counters().auth_failures, 0, "never forwarded");
    assert!(s.nodes[1].hosts().iter().all(|h| h.name != "n0"));
}

#[test]
fn replayed_frames_are_dropped() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    s.originate(0);
    let gossip: Vec<Bytes> = s
        .sent
        .iter()
        .filter(|(n, _, b)| {
            *n == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::HostInfo)
        })
        .map(|(_, _, b)| b.clone())
        .collect();
    assert_eq!(gossip.len(), 1);
    let before = s.seen_by(1, 0);
    s.input(
        1,
        Input::Message {
            peer: 1,
            bytes: gossip[0].clone(),
        },
    );
    assert_eq!(s.seen_by(1, 0), before, "replay not delivered");
    assert_eq!(s.nodes[1].counters().duplicates, 1);
}

#[test]
fn restarted_origin_is_accepted_and_old_boot_is_stale() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    s.originate(0);
    let old: Vec<Bytes> = s
        .sent
        .iter()
        .filter(|(n, _, _)| *n == 0)
        .map(|(_, _, b)| b.clone())
        .collect();
    // n0 restarts with a newer boot id.
    let mut c = GossipConfig::new("n0", 5000, 8);
    c.deliver_all = true;
    s.nodes[0] = Gossip::new(c, key());
    s.input(1, Input::PeerDown { peer: 1 });
    s.link(0, 1);
    s.originate(0);
    assert_eq!(s.seen_by(1, 0), 2);
    let dropped = s.nodes[1].counters().dropped;
    for b in old
        .into_iter()
        .filter(|b| Frame::decode(b).is_ok_and(|f| !f.header.flags.contains(Flags::LINK)))
    {
        s.input(1, Input::Message { peer: 3, bytes: b });
    }
    assert_eq!(
        s.seen_by(1, 0),
        2,
        "frames of the old boot are not accepted"
    );
    assert!(s.nodes[1].counters().dropped > dropped);
}

#[test]
fn stalled_peer_costs_drops_not_queue_and_others_keep_flowing() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.link(0, 2);
    // Node 2 stops reading: nothing 0 sends to it arrives, so it never acknowledges.
    s.stalled.push((0, 2));
    for _ in 0..3000 {
        s.originate(0);
    }
    let to_stalled = s.sent.iter().filter(|(n, p, _)| *n == 0 && *p == 2).count();
    assert!(
        to_stalled <= 1024 + 2,
        "at most a window (+hello, heartbeat): {to_stalled}"
    );
    assert_eq!(s.seen_by(1, 0), 3000, "the healthy peer got everything");
    let dropped = s.nodes[0]
        .peers()
        .find(|(id, _)| **id == 2)
        .map_or(0, |(_, p)| p.dropped);
    assert!(dropped >= 3000 - 1024);
}

#[test]
fn silent_peer_is_disconnected_after_five_seconds() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    s.stalled.push((1, 1));
    let mut out = Vec::new();
    for _ in 0..4 {
        s.advance(1_000_000);
    }
    assert_eq!(s.nodes[0].node_peers(), 1, "4 s: still up");
    s.now.mono_us += 1_500_000;
    s.nodes[0].handle(s.now, Input::Tick, &mut out);
    assert!(out.contains(&Action::Disconnect { peer: 0 }));
    assert_eq!(s.nodes[0].node_peers(), 0);
}

#[test]
fn heartbeats_measure_rtt_and_return_credit() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    for _ in 0..3 {
        s.advance(1_000_000);
    }
    let p = s.nodes[0]
        .peers()
        .next()
        .map(|(_, p)| p.clone())
        .expect("peer");
    assert_eq!(p.rtt_us, Some(0), "simulated links are instant");
    for _ in 0..5000 {
        s.originate(0);
    }
    assert_eq!(
        s.seen_by(1, 0),
        5000,
        "acks at a quarter window keep credit flowing"
    );
}

#[test]
fn flooding_peer_is_rate_limited_and_cannot_starve_others() {
    let mut s2 = Sim::new(3, 8);
    for n in &mut s2.nodes {
        n.cfg.peer_rate = 100;
        n.cfg.peer_burst = 100;
    }
    s2.link(1, 0);
    s2.link(2, 0);
    for _ in 0..1000 {
        s2.originate(1);
    }
    s2.originate(2);
    assert!(s2.seen_by(0, 1) < 200, "flooder limited to its burst");
    assert_eq!(s2.seen_by(0, 2), 1, "the other peer still gets through");
}

#[test]
fn viewer_gets_status_and_every_frame_but_never_forwards() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    // Node 2 is a viewer attached to node 1.
    let mut c = GossipConfig::new("viewer", 1, 8);
    c.role = Role::Viewer;
    c.deliver_all = true;
    s.nodes[2] = Gossip::new(c, key());
    s.link(2, 1);
    assert!(
        s.delivered[2]
            .iter()
            .any(|d| matches!(d.payload, Payload::Status(_))),
        "status at once"
    );
    s.originate(0);
    s.originate(1);
    assert_eq!(s.seen_by(2, 0), 1);
    assert_eq!(s.seen_by(2, 1), 1);
    s.input(2, Input::Local(Payload::HostInfo(HostInfo::default())));
    s.run();
    assert_eq!(s.seen_by(1, 2), 0, "viewers originate nothing");
    s.advance(1_000_000);
    let status = s.delivered[2].iter().rev().find_map(|d| match &d.payload {
        Payload::Status(st) => Some(st.clone()),
        _ => None,
    });
    let status = status.expect("status");
    assert_eq!(status.node, "n1");
    assert_eq!(status.hosts.len(), 2);
    assert!(status.links.iter().any(|l| l.role == "viewer"));
}

#[test]
fn garbage_from_a_peer_is_dropped_and_counted() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    for b in [&b""[..], b"\x01", b"\x01\x00\xff\xff", &[0u8; 100][..]] {
        s.input(
            1,
            Input::Message {
                peer: 1,
                bytes: Bytes::copy_from_slice(b),
            },
        );
    }
    assert_eq!(s.nodes[1].counters().malformed, 4);
}

fn connected_graph() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (3usize..9).prop_flat_map(|n| {
        let extra = proptest::collection::vec((0..n, 0..n), 0..n);
        (Just(n), extra)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// In any connected graph within max_hops, every node delivers every origin's frame
    /// exactly once.
    #[test]
    fn flooding_is_exactly_once_in_any_connected_graph((n, extra) in connected_graph()) {
        let mut s = Sim::new(n, 16);
        for i in 1..n {
            s.link(i - 1, i);
        }
        for (a, b) in extra {
            if a != b {
                s.link(a, b);
            }
        }
        for i in 0..n {
            s.originate(i);
        }
        for node in 0..n {
            for o in (0..n).filter(|&o| o != node) {
                prop_assert_eq!(s.seen_by(node, o), 1);
            }
        }
    }

    /// Random bytes from a peer never panic and are never delivered.
    #[test]
    fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut s = Sim::new(2, 8);
        s.link(0, 1);
        let before = s.delivered[1].len();
        s.input(1, Input::Message { peer: 1, bytes: Bytes::from(data) });
        prop_assert_eq!(s.delivered[1].len(), before);
    }
}

#[test]
fn a_joining_node_learns_every_hosts_info_at_once() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.originate(0);
    assert_eq!(s.seen_by(1, 0), 1);
    s.link(2, 1);
    assert_eq!(
        s.seen_by(2, 0),
        1,
        "n1 hands n2 the host info of n0 when n2 joins"
    );
    assert_eq!(s.seen_by(0, 2), 0, "n2 has originated nothing yet");
}

#[test]
fn a_replayed_hello_opens_no_link() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    // Every Hello n0 sent on its link to n1: the opening one and the one echoing n1's nonce.
    let hellos: Vec<Bytes> = s
        .sent
        .iter()
        .filter(|(n, p, b)| {
            *n == 0 && *p == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::Hello)
        })
        .map(|(_, _, b)| b.clone())
        .collect();
    assert_eq!(hellos.len(), 2);
    // An attacker replays them on a new connection to n2 (which never saw n0).
    let mut out = Vec::new();
    s.nodes[2].handle(
        s.now,
        Input::PeerUp {
            peer: 99,
            direction: Direction::In,
            addr: "evil".into(),
        },
        &mut out,
    );
    for h in &hellos {
        s.nodes[2].handle(
            s.now,
            Input::Message {
                peer: 99,
                bytes: h.clone(),
            },
            &mut out,
        );
    }
    assert_eq!(s.nodes[2].node_peers(), 0, "no link accepted");
    assert!(
        s.nodes[2].counters().auth_failures >= 1,
        "the stale echo is counted"
    );
    out.clear();
    s.originate(2);
    s.nodes[2].handle(
        s.now,
        Input::Local(Payload::HostInfo(HostInfo::default())),
        &mut out,
    );
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Send { peer: 99, .. })),
        "nothing is sent to the replayer"
    );
}

#[test]
fn a_late_viewer_gets_every_origins_host_info_and_table_at_once() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.originate(0);
    s.originate(1);
    let table = Payload::SeriesTable(meshmon_proto::payload::SeriesTable {
        table: 1,
        series: vec![],
    });
    s.input(0, Input::Local(table));
    s.run();
    let mut c = GossipConfig::new("viewer", 1, 8);
    c.role = Role::Viewer;
    c.deliver_all = true;
    s.nodes[2] = Gossip::new(c, key());
    s.link(2, 1);
    let kinds: Vec<(String, Kind)> = s.delivered[2]
        .iter()
        .filter(|d| !d.header.flags.contains(Flags::LINK))
        .map(|d| (d.header.origin.clone(), d.header.kind))
        .collect();
    assert!(kinds.contains(&("n0".into(), Kind::HostInfo)), "{kinds:?}");
    assert!(
        kinds.contains(&("n0".into(), Kind::SeriesTable)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("n1".into(), Kind::HostInfo)), "{kinds:?}");
}

fn dashboard(name: &str, boot: u64) -> Gossip {
    let mut c = GossipConfig::new(name, boot, 8);
    c.deliver_all = true;
    c.backfill = true;
    Gossip::new(c, key())
}

fn frames_of(s: &Sim, node: usize, origin: &str, replay: bool) -> Vec<u64> {
    let mut v: Vec<u64> = s.delivered[node]
        .iter()
        .filter(|d| {
            d.header.origin == origin && d.replay == replay && !d.header.flags.contains(Flags::LINK)
        })
        .map(|d| d.header.seq)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_cut_off_dashboard_gets_exactly_the_missing_frames_back_along_the_reverse_path() {
    // n0 - n1 - n2 (dashboard), and n3 hanging off n1: the replay must not go to n3.
    let mut s = Sim::new(4, 8);
    s.nodes[2] = dashboard("n2", 1002);
    s.link(0, 1);
    s.link(1, 2);
    s.link(3, 1);
    for _ in 0..5 {
        s.originate(0);
    }
    s.originate(2); // like every node, the dashboard gossips its own metrics: routes to it exist
    assert_eq!(frames_of(&s, 2, "n0", false).len(), 5);
    // Cut n1 -> n2 (link 1, peer 2 on n1) while n0 sends 15 more frames.
    s.stalled.push((1, 2));
    for _ in 0..15 {
        s.originate(0);
    }
    s.stalled.clear();
    s.originate(0);
    assert_eq!(s.nodes[2].gaps("n0"), vec![(6, 20)]);
    let sent_before = s.sent.len();
    s.advance(2_500_000);
    s.advance(100_000);
    let replayed = frames_of(&s, 2, "n0", true);
    assert!(
        (6..=20).all(|q| replayed.contains(&q)),
        "the whole gap, marked replay: {replayed:?}"
    );
    let tail = super::backfill::TAIL;
    assert!(
        replayed.iter().all(|q| *q <= 20 + tail),
        "at most the tail after the gap: {replayed:?}"
    );
    assert!(
        replayed.iter().filter(|q| **q < 6).count() <= 2,
        "at most the decoder's context before it: {replayed:?}"
    );
    assert!(s.nodes[2].gaps("n0").is_empty());
    let replay_to_n3 = s.sent[sent_before..]
        .iter()
        .filter(|(n, p, b)| {
            *n == 1
                && *p == 5
                && Frame::decode(b).is_ok_and(|f| f.header.flags.contains(Flags::REPLAY))
        })
        .count();
    assert_eq!(
        replay_to_n3, 0,
        "requests and replays follow routes, they do not flood"
    );
    assert_eq!(frames_of(&s, 3, "n0", true), Vec::<u64>::new());
    // Live frames keep flowing and are not duplicated by the replay.
    assert_eq!(frames_of(&s, 2, "n0", false), vec![1, 2, 3, 4, 5, 21]);
}

#[test]
fn a_restarted_dashboard_resumes_from_the_store_and_fills_the_gap() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    for _ in 0..10 {
        s.originate(0);
    }
    // n1 restarts as a dashboard whose store holds n0's frames up to seq 4.
    s.nodes[1] = dashboard("n1", 9999);
    s.input(
        1,
        Input::Resume {
            origin: "n0".into(),
            boot_id: 1000,
            seq: 4,
        },
    );
    s.input(0, Input::PeerDown { peer: 0 });
    s.link(0, 1);
    s.originate(0);
    s.advance(2_500_000);
    s.advance(100_000);
    let mut got = frames_of(&s, 1, "n0", true);
    got.extend(frames_of(&s, 1, "n0", false));
    assert!(
        (5..=11).all(|q| got.contains(&q)),
        "live or replayed, nothing missing since seq 4: {got:?}"
    );
    assert!(s.nodes[1].gaps("n0").is_empty());
}

#[test]
fn a_replay_of_someone_elses_frames_is_refused() {
    let mut s = Sim::new(3, 8);
    s.nodes[2] = dashboard("n2", 1002);
    s.link(0, 2);
    s.link(1, 2);
    s.originate(0);
    let foreign: Vec<ByteBuf> = s
        .sent
        .iter()
        .filter(|(n, _, b)| {
            *n == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::HostInfo)
        })
        .map(|(_, _, b)| ByteBuf::from(b.to_vec()))
        .collect();
    let before = s.delivered[2].len();
    let forged = Payload::Replay(meshmon_proto::payload::Replay {
        to: "n2".into(),
        frames: foreign,
        last: true,
    });
    s.input(1, Input::Local(forged));
    s.run();
    assert!(
        s.delivered[2][before..].iter().all(|d| !d.replay),
        "n1 may not replay n0's frames"
    );
}

#[test]
fn frames_dropped_by_the_rate_limit_are_still_acknowledged() {
    let mut s = Sim::new(2, 8);
    for n in &mut s.nodes {
        n.cfg.peer_rate = 100;
        n.cfg.peer_burst = 100;
    }
    s.link(0, 1);
    for _ in 0..3000 {
        s.originate(0);
    }
    let p = s.nodes[0]
        .peers()
        .next()
        .map(|(_, p)| p.clone())
        .expect("peer");
    assert!(
        p.sent - p.acked_by_peer < 1024 / 4 + 1,
        "credits came back: sent {} acked {}",
        p.sent,
        p.acked_by_peer
    );
    assert_eq!(p.dropped, 0, "the sender never ran out of credit");
    let before = s.seen_by(1, 0);
    s.advance(5_000_000);
    s.originate(0);
    assert_eq!(
        s.seen_by(1, 0),
        before + 1,
        "the link still carries frames after the burst"
    );
}

#[test]
fn a_status_of_many_hosts_is_paged_under_the_frame_limit_and_reassembles() {
    let mut s = Sim::new(2, 8);
    let mut c = GossipConfig::new("viewer", 1, 8);
    c.role = Role::Viewer;
    c.deliver_all = true;
    c.window = 4096;
    s.nodes[1] = Gossip::new(c, key());
    for i in 0..2000u64 {
        let h = Header {
            kind: Kind::HostInfo,
            flags: Flags::default(),
            origin: format!("host-with-a-longish-name-{i:05}"),
            boot_id: 1,
            seq: 1,
            ts_ms: 0,
        };
        s.nodes[0].touch_host(&h, 3, s.now);
    }
    s.link(1, 0);
    let parts: Vec<Status> = s.delivered[1]
        .iter()
        .filter_map(|d| match &d.payload {
            Payload::Status(st) => Some(st.clone()),
            _ => None,
        })
        .collect();
    assert!(
        parts.len() >= 7,
        "2,000 hosts need several frames: {}",
        parts.len()
    );
    let mut asm = crate::viewer::StatusAssembler::default();
    let whole = parts
        .into_iter()
        .find_map(|p| asm.push(p))
        .expect("complete");
    assert_eq!(whole.hosts.len(), 2000);
}
