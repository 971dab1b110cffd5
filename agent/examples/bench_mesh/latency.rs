//! Figure 1: per-hop latency along a line of 8 real agents at the normal 1 frame/s per host.
//!
//! One viewer client is attached to every node and timestamps each gossip frame
//! (origin, boot_id, seq) the moment it arrives. A frame from node j travels j -> j+1 -> ...
//! and j -> j-1 -> ...; its latency over the hop k -> k+1 is arrival(k+1) - arrival(k). The
//! viewer's own hop (node -> viewer) is the same kind of hop at every node, so it cancels in
//! the difference up to its jitter, which is therefore included in the figure. The origin's
//! own viewer counts as position 0 (it receives the frame as it is originated).

use crate::client::{Arrival, Client};
use crate::procs::{Agent, Lab, free_ports, loadavg, wait_converged};
use crate::stats::{Row, quantile, spread};
use anyhow::Result;
use meshmon_proto::payload::Role;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const NODES: usize = 8;

/// Runs the line for `windows` windows of `window` each; returns the table rows.
pub async fn run(lab: &Lab, windows: usize, window: Duration) -> Result<Vec<Row>> {
    let ports = free_ports(NODES)?;
    let mut agents: Vec<Agent> = Vec::new();
    // Start from the end of the line so every neighbour is already listening.
    for i in (0..NODES).rev() {
        let next: Vec<u16> = ports.get(i + 1).copied().into_iter().collect();
        agents.push(lab.start(&format!("n{i}"), ports[i], &next)?);
    }
    agents.reverse();
    let mut clients = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        clients.push(
            Client::connect(
                &a.target(),
                &format!("lat-viewer-{i}"),
                Role::Viewer,
                &lab.keyring,
                true,
            )
            .await?,
        );
    }
    // Warm-up: every node must list every host as fresh (links up, all paths working).
    let warm = Instant::now();
    let targets: Vec<String> = agents.iter().map(Agent::target).collect();
    wait_converged(&targets, NODES, lab, Duration::from_secs(30)).await?;
    let t0 = Instant::now() + Duration::from_secs(1);
    let total = window * windows as u32;
    eprintln!(
        "fig 1: line of {NODES} up after {:.1} s; recording {:.0} s",
        warm.elapsed().as_secs_f64(),
        total.as_secs_f64() + 1.0
    );
    tokio::time::sleep(total + Duration::from_secs(2)).await;
    let mut per_node = Vec::new();
    for c in clients {
        per_node.push(c.finish().await);
    }
    drop(agents);

    let (hops, origin_times) = hop_latencies(&per_node);
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut all = Vec::new();
    for w in 0..windows {
        let from = t0 + window * w as u32;
        let to = from + window;
        let mut v: Vec<f64> = hops
            .iter()
            .filter(|h| {
                origin_times
                    .get(&h.frame)
                    .is_some_and(|t| *t >= from && *t < to)
            })
            .map(|h| h.ms)
            .collect();
        v.sort_by(f64::total_cmp);
        p50s.push(quantile(&v, 0.5));
        p99s.push(quantile(&v, 0.99));
        all.extend(v);
    }
    all.sort_by(f64::total_cmp);
    let n = all.len();
    let (p50, p99, max) = (
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        quantile(&all, 1.0),
    );
    // By direction: k dials k+1, so rightwards a frame goes DEALER -> guard -> ROUTER, and
    // leftwards ROUTER -> guard -> outbound relay -> DEALER.
    let dir = |right: bool| {
        let mut v: Vec<f64> = hops
            .iter()
            .filter(|h| h.rightwards == right)
            .map(|h| h.ms)
            .collect();
        v.sort_by(f64::total_cmp);
        format!(
            "p50 {:.3} / p99 {:.3} ms",
            quantile(&v, 0.5),
            quantile(&v, 0.99)
        )
    };
    let (right, left) = (dir(true), dir(false));
    let where_ = format!(
        "{windows} windows of {:.0} s, load average {}",
        window.as_secs_f64(),
        loadavg()
    );
    let p99_ok = spread(&p99s).0 <= 2.0;
    Ok(vec![
        Row::new(
            "1. hop latency p50, 8-node line, 1 frame/s/host",
            "ms",
            &p50s,
            "-",
            format!(
                "{where_}; pooled over {n} (frame, hop) pairs: p50 {p50:.3} ms; by direction (send order inside a node differs, so viewer offsets cancel less well): dialler->listener {right}, listener->dialler {left}"
            ),
        ),
        Row::new(
            "1. hop latency p99, 8-node line, 1 frame/s/host",
            "ms",
            &p99s,
            "<= 2 ms",
            format!(
                "{} pooled p99 {p99:.3} ms, max {max:.3} ms",
                if p99_ok { "met;" } else { "MISSED;" }
            ),
        ),
    ])
}

type FrameKey = (String, u64, u64);

/// One frame crossing one link.
struct Hop {
    frame: FrameKey,
    ms: f64,
    /// From node k to k+1 (k dials k+1).
    rightwards: bool,
}

/// Every hop both of whose ends saw the frame, and each frame's time at its origin's viewer.
fn hop_latencies(per_node: &[Vec<Arrival>]) -> (Vec<Hop>, HashMap<FrameKey, Instant>) {
    let mut at: HashMap<FrameKey, [Option<Instant>; NODES]> = HashMap::new();
    for (k, arrivals) in per_node.iter().enumerate() {
        for a in arrivals {
            let h = &a.header;
            let e = at
                .entry((h.origin.clone(), h.boot_id, h.seq))
                .or_insert([None; NODES]);
            e[k] = Some(a.at);
        }
    }
    let mut hops = Vec::new();
    let mut origin_times = HashMap::new();
    for (key, times) in at {
        let Some(j) = key
            .0
            .strip_prefix('n')
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(t_origin) = times.get(j).copied().flatten() else {
            continue;
        };
        origin_times.insert(key.clone(), t_origin);
        for k in 0..NODES - 1 {
            // Away from the origin: right of it k -> k+1, left of it k+1 -> k.
            let (from, to) = if k >= j { (k, k + 1) } else { (k + 1, k) };
            if let (Some(a), Some(b)) = (times[from], times[to]) {
                hops.push(Hop {
                    frame: key.clone(),
                    ms: b.saturating_duration_since(a).as_secs_f64() * 1e3,
                    rightwards: from < to,
                });
            }
        }
    }
    (hops, origin_times)
}
