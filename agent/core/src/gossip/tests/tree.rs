//! Epidemic broadcast trees: pushing along one tree per origin, pruning on duplicates,
//! announcing on lazy links, grafting what an announcement says is missing.

use super::*;

/// A connected random graph of `n` nodes with mean degree about `degree` (a ring for
/// connectivity, then random chords), deterministic for a seed.
fn random_graph(n: usize, degree: usize, mut seed: u64) -> Vec<(usize, usize)> {
    let mut rnd = move |m: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % m
    };
    let mut edges: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    while edges.len() < n * degree / 2 {
        let (a, b) = (rnd(n), rnd(n));
        if a != b && !edges.contains(&(a, b)) && !edges.contains(&(b, a)) {
            edges.push((a, b));
        }
    }
    edges
}

fn mesh(n: usize, degree: usize, seed: u64) -> Sim {
    let mut s = Sim::new(n, 16);
    for (a, b) in random_graph(n, degree, seed) {
        s.link(a, b);
    }
    s
}

impl Sim {
    /// Every live node originates one frame, then a second passes in 100 ms ticks.
    fn round(&mut self, dead: &[usize]) {
        for i in (0..self.nodes.len()).filter(|i| !dead.contains(i)) {
            self.originate(i);
        }
        for _ in 0..10 {
            self.advance(100_000);
        }
    }

    /// The node's links go silent both ways, as when its host dies.
    fn kill(&mut self, k: usize) {
        for (id, &(a, b)) in self.links.clone().iter().enumerate() {
            let id = id as u64;
            if a == k || b == k {
                self.stalled.push((a, 2 * id));
                self.stalled.push((b, 2 * id + 1));
            }
        }
    }

    fn duplicates(&self) -> u64 {
        self.nodes.iter().map(|g| g.counters().duplicates).sum()
    }
}

#[test]
fn trees_converge_to_no_duplicates_with_every_frame_delivered_once() {
    let n = 30;
    let mut s = mesh(n, 5, 7);
    for _ in 0..3 {
        s.round(&[]);
    }
    let dup_before = s.duplicates();
    assert!(dup_before > 0, "the first frames flood");
    let sends_before = s.sent.len();
    let rounds = 5;
    for _ in 0..rounds {
        s.round(&[]);
    }
    assert_eq!(
        s.duplicates(),
        dup_before,
        "no duplicate once the trees formed"
    );
    for node in 0..n {
        for o in (0..n).filter(|&o| o != node) {
            assert_eq!(s.seen_by(node, o), 3 + rounds, "node {node} origin {o}");
        }
    }
    // Per round: each of the n frames crosses n - 1 tree links, plus about one heartbeat
    // per link direction (which carries the announcements).
    let per_round = (s.sent.len() - sends_before) / rounds;
    let links = s.links.len();
    assert!(
        per_round <= n * (n - 1) + 2 * links * 12 / 10,
        "{per_round} sends per round for {links} links"
    );
    // The lazy links are there: a tree per origin keeps n - 1 of the links.
    let lazy: usize = (0..n)
        .map(|i| {
            s.nodes[i]
                .trees
                .lazy_links(&format!("n{}", (i + 1) % n))
                .len()
        })
        .sum();
    assert!(lazy > 0, "some links turned lazy");
}

#[test]
fn a_dead_node_is_routed_around_within_three_seconds_by_grafts() {
    let n = 30;
    let mut s = mesh(n, 5, 11);
    for _ in 0..4 {
        s.round(&[]);
    }
    // Kill the node that relays the most (the largest tree share): its subtrees must graft.
    let k = (0..n)
        .max_by_key(|&i| s.sent.iter().filter(|(from, _, _)| *from == i).count())
        .expect("nodes");
    s.kill(k);
    let dead = [k];
    let before: Vec<Vec<usize>> = (0..n)
        .map(|node| (0..n).map(|o| s.seen_by(node, o)).collect())
        .collect();
    // One round, then 3 s of ticks at most: every live node has every live origin's frame.
    for i in (0..n).filter(|i| *i != k) {
        s.originate(i);
    }
    for _ in 0..30 {
        s.advance(100_000);
    }
    for node in (0..n).filter(|i| *i != k) {
        for o in (0..n).filter(|&o| o != node && o != k) {
            assert_eq!(
                s.seen_by(node, o),
                before[node][o] + 1,
                "node {node} misses origin {o} 3 s after node {k} died"
            );
        }
    }
    let grafts: u64 = s.nodes.iter().map(|g| g.counters().grafts).sum();
    assert!(grafts > 0, "the dead node's subtrees grafted");
    // And it stays so, exactly once, in the rounds after.
    for _ in 0..4 {
        s.round(&dead);
    }
    for node in (0..n).filter(|i| *i != k) {
        for o in (0..n).filter(|&o| o != node && o != k) {
            assert_eq!(
                s.seen_by(node, o),
                before[node][o] + 5,
                "node {node} origin {o}"
            );
        }
    }
}

#[test]
fn a_duplicate_prunes_the_link_on_both_sides_and_it_is_announced_instead() {
    // A triangle: n0's frames reach n2 directly and through n1.
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.link(1, 2);
    s.link(0, 2);
    // Host info first: a duplicate descriptor prunes nothing. Then samples.
    s.round(&[]);
    assert!(s.nodes[2].trees.lazy_links("n0").is_empty());
    s.round(&[]);
    let lazy_12 = s.nodes[2].trees.lazy_links("n0");
    assert_eq!(lazy_12.len(), 1, "n2 pruned one link for n0");
    // The pruned side stopped pushing n0's frames on that link.
    let before = s.duplicates();
    s.round(&[]);
    s.round(&[]);
    assert_eq!(s.duplicates(), before);
    for node in 0..3 {
        for o in (0..3).filter(|&o| o != node) {
            assert_eq!(s.seen_by(node, o), 4);
        }
    }
}

#[test]
fn heartbeats_and_status_are_never_more_than_a_second_apart() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    let mut last: Option<u64> = None;
    let mut worst = 0;
    for _ in 0..100 {
        let from = s.sent.len();
        s.advance(100_000);
        let hb = s.sent[from..].iter().any(|(node, _, b)| {
            *node == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::Heartbeat)
        });
        if hb {
            if let Some(l) = last {
                worst = worst.max(s.now.mono_us - l);
            }
            last = Some(s.now.mono_us);
        }
    }
    assert!(
        worst > 0 && worst <= 1_000_000,
        "worst heartbeat gap {worst} us"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// In any connected graph, over rounds in which the trees form (prunes, announcements),
    /// every node delivers every origin's every frame exactly once.
    #[test]
    fn tree_broadcast_is_exactly_once_in_any_connected_graph(
        (n, extra) in (3usize..10).prop_flat_map(|n| (Just(n), proptest::collection::vec((0..n, 0..n), 0..2 * n)))
    ) {
        let mut s = Sim::new(n, 16);
        for i in 1..n {
            s.link(i - 1, i);
        }
        for (a, b) in extra {
            if a != b {
                s.link(a, b);
            }
        }
        for _ in 0..4 {
            s.round(&[]);
        }
        for node in 0..n {
            for o in (0..n).filter(|&o| o != node) {
                prop_assert_eq!(s.seen_by(node, o), 4);
            }
        }
    }
}

/// The tree bookkeeping alone: a frame of `origin` seq `seq` arriving on `from` with `hops`.
fn tree_frame(t: &mut Trees, from: PeerId, hops: u8, seq: u64, forwarded: bool, now_us: u64) {
    let h = Header {
        kind: Kind::Samples,
        flags: Flags(0),
        origin: "o".into(),
        boot_id: 1,
        seq,
        ts_ms: 0,
    };
    let bytes = Bytes::from_static(b"frame");
    t.on_frame(&h, Some(from), hops, now_us, forwarded.then_some(&bytes));
}

#[test]
fn a_frame_that_came_too_far_to_be_passed_on_is_not_announced() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 7, 1, false, 5);
    t.prune("o", 2);
    let (_, haves) = t.take_for(2, 10);
    assert!(haves.is_empty(), "nothing to graft from here: {haves:?}");
    tree_frame(&mut t, 1, 3, 2, true, 15);
    let (_, haves) = t.take_for(2, 20);
    assert_eq!(haves.len(), 1);
    assert_eq!(
        haves[0].1, 4,
        "announced with the hops it would be pushed with"
    );
}

#[test]
fn an_announcement_over_fewer_hops_grafts_that_link_once_and_asks_for_nothing() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 6, 5, true, 1);
    assert!(!t.heard_shorter("o", 2, 6, 100), "not shorter");
    assert!(!t.heard_shorter("o", 1, 2, 100), "the parent itself");
    assert!(t.heard_shorter("o", 2, 3, 100));
    assert!(
        !t.heard_shorter("o", 3, 2, 200),
        "at most one per origin every 2 s"
    );
    assert!(t.heard_shorter("o", 3, 2, 100 + crate::gossip::tree::SHORTER_EVERY_US));
    let (pending, _) = t.take_for(2, 300);
    assert_eq!(pending.graft.len(), 1);
    let g = &pending.graft[0];
    assert!(
        g.2 > g.3,
        "an empty range: the push resumes, nothing is resent ({g:?})"
    );
}

#[test]
fn grafts_go_to_the_announcer_with_the_fewest_hops_first() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 1, true, 1);
    for (peer, hops) in [(5, 6), (6, 2), (7, u8::MAX), (8, 4)] {
        t.announced(
            "o",
            peer,
            &meshmon_proto::payload::Have("o".into(), 1, 2),
            hops,
            2,
            0,
        );
    }
    let mut order = Vec::new();
    for i in 0..4 {
        let now = crate::gossip::tree::GRAFT_AFTER_US + i * crate::gossip::tree::GRAFT_RETRY_US;
        assert_eq!(t.due_grafts(now, |_, _, _| false), 1);
        let peer = (5..=8).find(|p| t.has_pending(*p)).expect("a graft");
        t.take_for(peer, now);
        order.push(peer);
    }
    assert_eq!(order, vec![6, 8, 5, 7]);
}

#[test]
fn a_duplicate_on_a_link_this_node_announces_on_is_still_pruned() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 1, true, 1);
    assert!(t.prune("o", 2), "newly lazy");
    t.take_for(2, 10);
    // The peer was grafted by a shorter path elsewhere and pushes again: tell it again.
    assert!(!t.prune("o", 2), "already lazy here");
    let (pending, _) = t.take_for(2, 20);
    assert_eq!(pending.prune, vec!["o".to_owned()]);
}

#[test]
fn a_parent_that_prunes_this_node_is_grafted_back_at_once() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 7, true, 1);
    assert!(!t.pruned_by("o", 2), "not the parent: just announce to it");
    assert!(
        t.pruned_by("o", 1),
        "the parent saw our push as a duplicate and pruned us"
    );
    assert!(!t.has_pending(2));
    let (pending, _) = t.take_for(1, 10);
    assert_eq!(pending.graft.len(), 1);
    let g = &pending.graft[0];
    assert_eq!((g.1, g.2, g.3), (1, 8, 7), "an empty range: keep pushing");
    assert_eq!(t.lazy_links("o"), vec![2, 1], "this node announces to both");
}

#[test]
fn a_gap_below_the_newest_is_grafted_with_the_range_widened_down_to_it() {
    use crate::gossip::tree::GRAFT_AFTER_US;
    let mut t = Trees::new(16);
    assert_eq!(t.first_seq("o", 1), None);
    tree_frame(&mut t, 1, 2, 3, true, 1);
    tree_frame(&mut t, 1, 2, 5, true, 2);
    assert_eq!(
        t.first_seq("o", 1),
        Some(3),
        "frames before 3 were never ours"
    );
    let have = meshmon_proto::payload::Have("o".into(), 1, 6);
    t.announced("o", 2, &have, 3, 6, 10);
    // Frame 4 never came: a later look (an announcement of 6 again, or a pushed frame that
    // skipped it) widens the range, and the graft is due no later than a fresh one.
    t.announced("o", 3, &have, 3, 4, 20);
    assert_eq!(t.due_grafts(GRAFT_AFTER_US, |_, _, _| false), 0);
    assert_eq!(t.due_grafts(GRAFT_AFTER_US + 10, |_, _, s| s == 5), 1);
    let (pending, _) = t.take_for(2, GRAFT_AFTER_US + 10);
    assert_eq!(pending.graft.len(), 1);
    let g = &pending.graft[0];
    assert_eq!((g.2, g.3), (4, 6), "from the gap to the newest announced");
}

#[test]
fn an_origin_whose_grafted_frames_keep_coming_late_still_grafts_its_newest() {
    // Each graft's frame comes, but only after the next frame was announced (a starved link):
    // the tries count what is still missing, so the newest is grafted as well.
    use crate::gossip::tree::{GRAFT_RETRY_US, GRAFT_TRIES};
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 4, true, 1);
    let mut now = 10;
    for seq in 5..5 + 2 * u64::from(GRAFT_TRIES) {
        let have = meshmon_proto::payload::Have("o".into(), 1, seq);
        t.announced("o", 2, &have, 3, seq, now);
        now += GRAFT_RETRY_US;
        assert_eq!(
            t.due_grafts(now, |_, _, s| s < seq),
            1,
            "frame {seq} grafted"
        );
        let (pending, _) = t.take_for(2, now);
        let g = &pending.graft[0];
        assert_eq!((g.2, g.3), (seq, seq));
    }
}

#[test]
fn a_repaired_frame_is_announced_on_the_next_tick_not_with_the_next_heartbeat() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 1, true, 1);
    t.prune("o", 2);
    t.take_for(2, 10);
    tree_frame(&mut t, 1, 2, 2, true, 20);
    assert!(!t.has_pending(2), "a frame on time waits for the heartbeat");
    // Frame 3 never came from the parent; a neighbour announced it and it was grafted.
    let have = meshmon_proto::payload::Have("o".into(), 1, 3);
    t.announced("o", 3, &have, 3, 3, 30);
    tree_frame(&mut t, 3, 3, 3, true, 40);
    assert!(
        t.has_pending(2),
        "the lazy neighbour probably lost the same parent: announce now"
    );
    let (_, haves) = t.take_for(2, 50);
    assert_eq!(haves.len(), 1);
    assert_eq!(haves[0].0.2, 3);
    assert!(!t.has_pending(2));
}

#[test]
fn a_prune_still_waiting_is_taken_back_when_its_link_brings_the_newest_frame_first() {
    use crate::gossip::tree::Duplicate;
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 1, true, 1);
    assert_eq!(t.on_duplicate("o", 1, 1, 2, 2), Duplicate::Pruned);
    assert!(t.has_pending(2));
    // The push of frame 2 crossed the prune: link 2 delivered first, it is the parent now.
    tree_frame(&mut t, 2, 2, 2, true, 10);
    assert!(!t.has_pending(2), "the prune is not sent");
    assert!(t.lazy_links("o").is_empty());
}

#[test]
fn a_late_copy_of_an_older_frame_from_the_parent_does_not_prune_it() {
    use crate::gossip::tree::Duplicate;
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 5, true, 1);
    assert_eq!(t.on_duplicate("o", 1, 3, 2, 1), Duplicate::Nothing);
    assert!(t.lazy_links("o").is_empty());
    assert!(!t.has_pending(1));
    assert_eq!(
        t.on_duplicate("o", 1, 5, 2, 1),
        Duplicate::Pruned,
        "a second copy of the newest still prunes"
    );
}

#[test]
fn the_descriptors_a_join_hands_over_prune_nothing() {
    // A line n0 - n1 - n2; then n2 links to n0 directly. The join hands each side the other's
    // descriptors, which it already holds: duplicates that say nothing of the new link's path.
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.link(1, 2);
    s.round(&[]);
    s.round(&[]);
    s.link(2, 0);
    let (direct, via_n1) = (4, 3);
    assert!(s.nodes[2].trees.lazy_links("n0").is_empty());
    assert!(s.nodes[0].trees.lazy_links("n2").is_empty());
    // n0's next frame reaches n2 on the direct link first, and the copy through n1 prunes.
    s.round(&[]);
    assert_eq!(s.nodes[2].trees.lazy_links("n0"), vec![via_n1]);
    assert!(!s.nodes[2].trees.lazy_links("n0").contains(&direct));
    for node in 0..3 {
        for o in (0..3).filter(|&o| o != node) {
            assert_eq!(
                s.seen_by(node, o),
                3,
                "n{node} has every frame of n{o} once"
            );
        }
    }
}

#[test]
fn an_overdue_origin_grafts_every_lazy_link_once() {
    use crate::gossip::tree::OVERDUE_SLACK_US;
    let period = Some(1_000_000);
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 2, 1, true, 0);
    for peer in [2, 3] {
        t.prune("o", peer);
        t.take_for(peer, 0);
    }
    let due = 1_500_000 + OVERDUE_SLACK_US;
    assert_eq!(t.graft_overdue(due - 1, |_| period), 0, "not yet overdue");
    assert_eq!(t.graft_overdue(due, |_| period), 2);
    assert!(t.lazy_links("o").is_empty(), "every link pushes again");
    for peer in [2, 3] {
        let (pending, _) = t.take_for(peer, due);
        let g = &pending.graft[0];
        assert_eq!((g.2, g.3), (2, 1), "an empty range: push from frame 2 on");
    }
    assert_eq!(t.graft_overdue(due * 4, |_| period), 0, "once per frame");
    assert_eq!(
        t.graft_overdue(due * 4, |_| None),
        0,
        "no interval known: never"
    );
}

#[test]
fn a_frame_held_only_from_too_far_is_asked_for_again_and_kept_for_grafts() {
    let mut t = Trees::new(16);
    tree_frame(&mut t, 1, 7, 5, false, 1);
    assert!(t.wants_copy("o", 1, 5));
    assert!(t.heard_shorter("o", 2, 3, 10));
    let (pending, _) = t.take_for(2, 20);
    let g = &pending.graft[0];
    assert_eq!((g.2, g.3), (5, 5), "the newest frame is asked for again");
    let copy = Bytes::from_static(b"copy");
    t.keep_copy("o", (1, 5), 4, 30, &copy);
    assert!(!t.wants_copy("o", 1, 5));
    assert_eq!(t.grafted_by("o", 3, 1, 5, 5), vec![copy]);
    t.prune("o", 3);
    let (_, haves) = t.take_for(3, 40);
    assert_eq!(
        haves[0].1, 4,
        "announced now, with the hops it is passed on with"
    );
}

#[test]
fn a_push_that_finds_no_credit_is_announced_so_the_child_grafts_it() {
    // A line 0 - 1 - 2: node 2's only link is its parent for n0, eager, so no lazy neighbour
    // would ever announce a frame the parent could not push.
    let mut s = Sim::new(3, 8);
    s.set_window(2, 4);
    s.link(0, 1);
    s.link(1, 2);
    // Node 2's acknowledgements do not reach node 1 for a while (a slow reader): node 1 may
    // have only 4 frames in flight to it and 4 more queued, so of a burst of 11 it drops 3.
    s.stalled.push((2, 3));
    let seen = s.seen_by(2, 0);
    for _ in 0..11 {
        s.originate(0);
    }
    assert_eq!(s.seen_by(2, 0), seen + 4, "the window's worth arrived");
    let to_2 = |s: &Sim| {
        s.nodes[1]
            .peers()
            .find(|(id, _)| **id == 2)
            .map(|(_, p)| (p.dropped, p.backlog.len()))
    };
    assert_eq!(
        to_2(&s),
        Some((3, 4)),
        "node 1 queued a window, dropped the rest"
    );
    s.stalled.clear();
    // Node 1 announces the dropped ones on its next tick, and node 2 grafts them 150 ms
    // later; the queued ones leave on the graft's acknowledgement, ahead of the graft's
    // reply, which the window holds only in part: the rest is announced and grafted again.
    for _ in 0..10 {
        s.advance(100_000);
    }
    assert_eq!(
        s.seen_by(2, 0),
        seen + 11,
        "queued and grafted frames arrived"
    );
    assert_eq!(s.seen_by(1, 0), s.seen_by(2, 0), "exactly once");
}

#[test]
fn a_burst_beyond_the_credit_window_waits_for_credits_instead_of_a_graft() {
    let mut s = Sim::new(3, 8);
    s.set_window(2, 4);
    s.link(0, 1);
    s.link(1, 2);
    let seen = s.seen_by(2, 0);
    for _ in 0..7 {
        s.originate(0);
    }
    // No tick has passed: the 3 frames beyond the window left on node 2's acknowledgements.
    assert_eq!(s.seen_by(2, 0), seen + 7);
    let p = s.nodes[1].peers().find(|(id, _)| **id == 2).map(|(_, p)| p);
    assert!(p.is_some_and(|p| p.dropped == 0 && p.backlog.is_empty()));
    assert_eq!(s.nodes[2].counters().grafts, 0);
}
