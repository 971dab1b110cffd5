//! Real `meshmon agent` processes on 127.0.0.1: convergence in a line and a ring, surviving
//! `kill -9` and rejoining, wrong keys, and hop limits.

mod common;

use common::*;
use std::time::{Duration, Instant};

const FIVE: [&str; 5] = ["a1", "a2", "a3", "a4", "a5"];

fn targets(agents: &[Agent]) -> Vec<String> {
    agents.iter().map(Agent::target).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn five_in_a_line_see_each_other_within_5s() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = line(&FIVE);
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let took = wait_all_see(
        &targets(&agents),
        &FIVE,
        &null_ring(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("not converged within 5 s: {e}"));
    eprintln!("line of 5 converged in {took:?}");
    let s = status(&agents[0].target(), &null_ring())
        .await
        .expect("status");
    let a5 = s.hosts.iter().find(|h| h.name == "a5").expect("a5");
    assert_eq!(a5.hops, 4, "a5 is four links from a1");
}

#[tokio::test(flavor = "current_thread")]
async fn ring_survives_kill_9_without_gaps_and_the_node_rejoins() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (key_path, ring_key) = key_file(dir.path(), "mesh.key");
    let mut specs = ring(&FIVE);
    for s in &mut specs {
        s.key = Some(key_path.clone());
    }
    let mut agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let took = wait_all_see(&targets(&agents), &FIVE, &ring_key, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("ring not converged within 5 s: {e}"));
    eprintln!("ring of 5 converged in {took:?}");

    // Watch what each surviving node receives, then kill a5 (linked to a4 and a1).
    let mut recorders = Vec::new();
    for a in &agents[..4] {
        recorders.push(Recorder::attach(&a.target(), &ring_key).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from = Instant::now();
    agents[4].kill();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let to = Instant::now();
    for (i, r) in recorders.iter().enumerate() {
        for origin in &FIVE[..4] {
            if *origin == FIVE[i] {
                continue;
            }
            let gap = r.max_gap(origin, from, to);
            assert!(
                gap <= Duration::from_secs(3),
                "{} saw a {gap:?} gap from {origin}",
                FIVE[i]
            );
        }
    }

    // Restart a5: back in the mesh within 5 s.
    let restarted = Instant::now();
    agents[4] = Agent::start(dir.path(), &specs[4]);
    let took = wait_all_see(&targets(&agents), &FIVE, &ring_key, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("a5 not back within 5 s: {e}"));
    eprintln!(
        "a5 back in the mesh {:?} after restart",
        restarted.elapsed().min(took)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_with_the_wrong_key_is_rejected_everywhere_and_counted() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, good_ring) = key_file(dir.path(), "good.key");
    let (bad, bad_ring) = key_file(dir.path(), "bad.key");
    let mut specs = line(&["k1", "k2", "k3"]);
    for s in &mut specs {
        s.key = Some(good.clone());
    }
    let mut intruder = Spec::new("intruder");
    intruder.key = Some(bad);
    intruder.neighbours = vec![specs[1].port, specs[0].port];
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let bad_agent = Agent::start(dir.path(), &intruder);
    // Convergence time is not what this test is about: a generous deadline.
    wait_all_see(
        &targets(&agents),
        &["k1", "k2", "k3"],
        &good_ring,
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("good mesh not converged: {e}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut failures = 0;
    for a in &agents {
        let s = status(&a.target(), &good_ring).await.expect("status");
        assert!(
            s.hosts.iter().all(|h| h.name != "intruder"),
            "{} accepted the intruder",
            a.spec.name
        );
        failures += s.auth_failures;
    }
    assert!(failures > 0, "authentication failures are counted");
    // The intruder's viewer (its own key) sees only itself: nothing of the mesh was accepted.
    let s = status(&bad_agent.target(), &bad_ring)
        .await
        .expect("intruder status");
    assert_eq!(
        fresh_hosts(&s, Duration::from_secs(60)),
        vec!["intruder".to_owned()]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn frames_stop_at_max_hops() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut specs = line(&["h1", "h2", "h3", "h4", "h5"]);
    for s in &mut specs {
        s.max_hops = 2;
    }
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    // h3 is within 2 hops of everyone.
    wait_all_see(
        &[agents[2].target()],
        &["h1", "h2", "h3", "h4", "h5"],
        &null_ring(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("h3 should see all: {e}"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status(&agents[0].target(), &null_ring())
        .await
        .expect("status");
    assert_eq!(
        fresh_hosts(&s, Duration::from_secs(60)),
        vec!["h1", "h2", "h3"],
        "h4, h5 are 3 and 4 hops away"
    );
}
