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
            assert_eq!(s.seen_by(node, o), 3);
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
