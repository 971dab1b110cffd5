//! The gossip simulator on 100 nodes (mean degree 5, 3-8), with the real gossip machine and
//! real sealing: after 10 % of the nodes are killed at once, no surviving node misses a frame
//! of a surviving origin, the mesh heals within 3 s of simulated time, and every node knows
//! every host. Short windows keep it quick in a debug build (sealing dominates).

use meshmon_sim::mesh::{Fault, MeshConfig, run};
use std::time::Duration;

fn small() -> MeshConfig {
    let mut cfg = MeshConfig::new(100);
    cfg.seed = 14;
    cfg.warmup = Duration::from_secs(2);
    cfg.measure = Duration::from_secs(1);
    cfg.series = 7;
    cfg.after = Duration::from_secs(4);
    cfg.drain = Duration::from_secs(1);
    cfg
}

#[test]
fn hundred_nodes_heal_after_ten_percent_are_killed() {
    let r = run(&small(), Fault::Kill).expect("runs");
    eprintln!(
        "{}",
        meshmon_sim::mesh::report::table(std::slice::from_ref(&r), &[])
    );
    for s in &r.stale {
        eprintln!("silent: {s:?}");
    }
    assert_eq!(r.killed, 10);
    assert!(r.steady.deliveries > 0, "frames flowed in the window");
    assert_eq!(
        r.missed, 0,
        "no surviving node misses a surviving origin's frame"
    );
    assert!(r.heal.healed, "healed before the run ended");
    assert!(
        r.heal.time_us <= 3_000_000,
        "healed within 3 s, took {} ms",
        r.heal.time_us / 1000
    );
    assert_eq!(r.hosts_missing, 0, "every node sees every host");
    assert!(r.steady.latency_p50_us > 0 && r.steady.latency_max_us < 1_000_000);
}
