//! Gossip driven through a simulated network: machines joined by in-memory links, a fake
//! clock, a queue of messages. No sockets.

use super::*;

mod backfill;
mod link;
mod names;
mod tree;
mod wake;
use meshmon_proto::Key;
use meshmon_proto::frame::TAG_LEN;
use meshmon_proto::payload::{ByteBuf, HostInfo, Samples, Status};
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
    /// Ticks fed to each node.
    ticks: Vec<u64>,
    /// Frames each node originated with [`Sim::originate`].
    originated: Vec<u64>,
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
            ticks: vec![0; n],
            originated: vec![0; n],
        }
    }

    /// Node `node` announces a credit window of `window` frames (before it links).
    fn set_window(&mut self, node: usize, window: u32) {
        let mut c = GossipConfig::new(&format!("n{node}"), 1000 + node as u64, 8);
        c.deliver_all = true;
        c.window = window;
        self.nodes[node] = Gossip::new(c, key());
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

    /// Time passes; every node whose next tick is due by then is ticked, as the mesh task
    /// does ([`Gossip::next_tick_us`]): tests that step 100 ms at a time run on the agent's
    /// grid and skip the ticks it skips.
    fn advance(&mut self, us: u64) {
        self.now.mono_us += us;
        self.now.wall_ms += us / 1000;
        for i in 0..self.nodes.len() {
            if self.nodes[i].next_tick_us() <= self.now.mono_us {
                self.input(i, Input::Tick);
                self.ticks[i] += 1;
            }
        }
        self.run();
    }

    /// The node's next frame, as an agent sends them: host info first, then samples (key
    /// frames). A join hands over host info out of band of the trees, so only samples shape
    /// them (a duplicate descriptor prunes nothing).
    fn originate(&mut self, node: usize) {
        let n = self.originated[node];
        self.originated[node] += 1;
        let payload = if n == 0 {
            Payload::HostInfo(HostInfo {
                os: format!("os of n{node}"),
                ..HostInfo::default()
            })
        } else {
            Payload::Samples(Samples {
                n,
                k: true,
                ..Samples::default()
            })
        };
        self.input(node, Input::Local(payload));
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

/// A node that only passes frames on (no dashboard, `deliver_all` off) verifies their seals
/// without decrypting them: a frame altered in its ciphertext or its tag is still refused,
/// counted, and never passed on, and the genuine frame then goes through once.
#[test]
fn a_node_that_only_forwards_still_refuses_an_altered_frame() {
    let mut s = Sim::new(3, 8);
    s.nodes[1] = Gossip::new(GossipConfig::new("n1", 1001, 8), key());
    s.link(0, 1);
    s.link(1, 2);
    s.originate(0);
    s.input(0, Input::Local(Payload::Samples(Samples::default())));
    let (to, peer, genuine) = s.queue.pop_front().expect("pushed to n1");
    assert_eq!(to, 1);
    assert!(s.queue.is_empty());
    let samples_seen_by_2 = |s: &Sim| {
        s.delivered[2]
            .iter()
            .filter(|d| d.header.origin == "n0" && d.header.kind == Kind::Samples)
            .count()
    };
    for at in [genuine.len() - 1, genuine.len() - TAG_LEN - 1] {
        let mut altered = genuine.to_vec();
        altered[at] ^= 0x01;
        let before = s.nodes[1].counters().auth_failures;
        s.queue.push_back((1, peer, Bytes::from(altered)));
        s.run();
        assert_eq!(s.nodes[1].counters().auth_failures, before + 1, "byte {at}");
        assert_eq!(samples_seen_by_2(&s), 0, "byte {at}: not passed on");
    }
    s.queue.push_back((1, peer, genuine));
    s.run();
    assert_eq!(samples_seen_by_2(&s), 1);
    assert!(
        s.delivered[1]
            .iter()
            .all(|d| d.header.kind != Kind::Samples)
    );
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
fn stalled_peer_costs_drops_and_a_window_queued_and_others_keep_flowing() {
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
    let (dropped, queued) = s.nodes[0]
        .peers()
        .find(|(id, _)| **id == 2)
        .map_or((0, 0), |(_, p)| (p.dropped, p.backlog.len()));
    assert_eq!(queued, 1024, "a window waits for credits, no more");
    assert!(dropped >= 3000 - 2 * 1024);
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
    fn one_frame_reaches_every_node_exactly_once_in_any_connected_graph((n, extra) in connected_graph()) {
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
