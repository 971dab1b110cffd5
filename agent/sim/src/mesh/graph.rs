//! Random connected graphs for the mesh simulator: every node has between `min` and `max`
//! neighbours, `mean` on average; and the graph questions the scenarios ask (is what is left
//! connected, how far apart are nodes, two connected halves).
//!
//! Not here: links' latency or state (`engine`).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::VecDeque;

/// An undirected graph; each edge `(a, b)` is dialled by `a`.
#[derive(Debug, Clone)]
pub struct Graph {
    pub n: usize,
    pub edges: Vec<(usize, usize)>,
    pub adj: Vec<Vec<usize>>,
}

impl Graph {
    fn empty(n: usize) -> Graph {
        Graph {
            n,
            edges: Vec::new(),
            adj: vec![Vec::new(); n],
        }
    }

    fn has(&self, a: usize, b: usize) -> bool {
        self.adj[a].contains(&b)
    }

    fn add(&mut self, a: usize, b: usize) {
        self.edges.push((a, b));
        self.adj[a].push(b);
        self.adj[b].push(a);
    }

    /// A random connected graph: a random tree (each node joins a random earlier one that has
    /// room), then edges for nodes below `min`, then random edges until the mean degree is
    /// `mean`, never beyond `max` at a node. Needs `n > max >= min >= 1`.
    pub fn random(n: usize, min: usize, max: usize, mean: f64, rng: &mut StdRng) -> Graph {
        let mut g = Graph::empty(n);
        if n < 2 {
            return g;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        for i in 1..n {
            // A random earlier node with room (one always exists: a tree has leaves).
            loop {
                let j = order[rng.random_range(0..i)];
                if g.adj[j].len() < max {
                    g.add(order[i], j);
                    break;
                }
            }
        }
        let target = ((mean * n as f64) / 2.0).round() as usize;
        let mut tries = 0usize;
        let limit = 200 * n + 10_000;
        // Raise every node to `min`, then add random edges up to the mean.
        for a in 0..n {
            while g.adj[a].len() < min && tries < limit {
                tries += 1;
                let b = rng.random_range(0..n);
                if b != a && !g.has(a, b) && g.adj[b].len() < max {
                    g.add(a, b);
                }
            }
        }
        while g.edges.len() < target && tries < limit {
            tries += 1;
            let a = rng.random_range(0..n);
            let b = rng.random_range(0..n);
            if a != b && !g.has(a, b) && g.adj[a].len() < max && g.adj[b].len() < max {
                g.add(a, b);
            }
        }
        g
    }

    /// Mean, smallest and largest degree.
    pub fn degrees(&self) -> (f64, usize, usize) {
        let d: Vec<usize> = self.adj.iter().map(Vec::len).collect();
        let mean = d.iter().sum::<usize>() as f64 / self.n.max(1) as f64;
        (
            mean,
            d.iter().copied().min().unwrap_or(0),
            d.iter().copied().max().unwrap_or(0),
        )
    }

    /// Hop distances from `from` to every node among `alive` (`usize::MAX`: unreachable).
    pub fn distances(&self, from: usize, alive: &[bool]) -> Vec<usize> {
        let mut dist = vec![usize::MAX; self.n];
        let mut q = VecDeque::new();
        dist[from] = 0;
        q.push_back(from);
        while let Some(a) = q.pop_front() {
            for &b in &self.adj[a] {
                if alive[b] && dist[b] == usize::MAX {
                    dist[b] = dist[a] + 1;
                    q.push_back(b);
                }
            }
        }
        dist
    }

    /// Whether the nodes in `alive` are connected among themselves.
    pub fn connected(&self, alive: &[bool]) -> bool {
        let Some(start) = alive.iter().position(|a| *a) else {
            return true;
        };
        let d = self.distances(start, alive);
        (0..self.n).all(|i| !alive[i] || d[i] != usize::MAX)
    }

    /// The longest shortest path among the nodes in `alive` (`None` if not connected).
    pub fn diameter(&self, alive: &[bool]) -> Option<usize> {
        let mut worst = 0;
        for i in (0..self.n).filter(|&i| alive[i]) {
            for (j, d) in self.distances(i, alive).into_iter().enumerate() {
                if alive[j] {
                    if d == usize::MAX {
                        return None;
                    }
                    worst = worst.max(d);
                }
            }
        }
        Some(worst)
    }

    /// `k` random nodes (never one of `keep`) whose loss leaves the rest connected; `None`
    /// if 1,000 draws found none.
    pub fn victims(&self, k: usize, keep: &[usize], rng: &mut StdRng) -> Option<Vec<usize>> {
        let candidates: Vec<usize> = (0..self.n).filter(|i| !keep.contains(i)).collect();
        for _ in 0..1000 {
            let mut c = candidates.clone();
            c.shuffle(rng);
            c.truncate(k);
            let mut alive = vec![true; self.n];
            for &v in &c {
                alive[v] = false;
            }
            if self.connected(&alive) {
                c.sort_unstable();
                return Some(c);
            }
        }
        None
    }

    /// Two halves, each connected: the first half in breadth-first order from a random node,
    /// and the rest. `side[i]` is 0 or 1. `None` if 1,000 starts found none.
    pub fn halves(&self, rng: &mut StdRng) -> Option<Vec<u8>> {
        for _ in 0..1000 {
            let start = rng.random_range(0..self.n);
            let mut side = vec![1u8; self.n];
            let mut seen = vec![false; self.n];
            let mut q = VecDeque::from([start]);
            seen[start] = true;
            let mut taken = 0;
            while let Some(a) = q.pop_front() {
                if taken == self.n / 2 {
                    break;
                }
                side[a] = 0;
                taken += 1;
                for &b in &self.adj[a] {
                    if !seen[b] {
                        seen[b] = true;
                        q.push_back(b);
                    }
                }
            }
            let one: Vec<bool> = side.iter().map(|s| *s == 1).collect();
            let zero: Vec<bool> = side.iter().map(|s| *s == 0).collect();
            if self.connected(&zero) && self.connected(&one) {
                return Some(side);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_graphs_are_connected_within_degree_bounds() {
        for (n, seed) in [(10, 1), (100, 2), (500, 3)] {
            let mut rng = StdRng::seed_from_u64(seed);
            let g = Graph::random(n, 3, 8, 5.0, &mut rng);
            let (mean, min, max) = g.degrees();
            assert!(g.connected(&vec![true; n]), "n={n}");
            assert!(min >= 3 && max <= 8, "n={n}: {min}..{max}");
            assert!((mean - 5.0).abs() < 0.1, "n={n}: mean {mean}");
            let mut e: Vec<(usize, usize)> =
                g.edges.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
            e.sort_unstable();
            e.dedup();
            assert_eq!(e.len(), g.edges.len(), "no edge twice");
        }
    }

    #[test]
    fn victims_leave_the_rest_connected_and_halves_are_connected() {
        let mut rng = StdRng::seed_from_u64(9);
        let g = Graph::random(200, 3, 8, 5.0, &mut rng);
        let v = g.victims(20, &[0], &mut rng).expect("victims");
        assert_eq!(v.len(), 20);
        assert!(!v.contains(&0));
        let mut alive = vec![true; 200];
        for x in &v {
            alive[*x] = false;
        }
        assert!(g.connected(&alive));
        let side = g.halves(&mut rng).expect("halves");
        assert_eq!(side.iter().filter(|s| **s == 0).count(), 100);
        assert!(g.diameter(&[true; 200]).is_some_and(|d| d >= 3));
    }
}
