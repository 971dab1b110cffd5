//! A stalled neighbour (SIGSTOP: its TCP buffers fill, it answers nothing) must not slow the
//! other links, and killing it afterwards must not deadlock the node (zmq.rs issue #210:
//! a ROUTER whose stalled peer is killed deadlocked 10 times out of 10). Also: SIGTERM stops
//! an agent cleanly.

mod common;

use common::*;
use rustix::process::{Pid, Signal, kill_process};
use std::time::{Duration, Instant};

fn signal(a: &Agent, sig: Signal) {
    let pid = Pid::from_raw(a.pid() as i32).expect("pid");
    kill_process(pid, sig).expect("signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_then_killed_neighbour_neither_slows_nor_deadlocks_the_node() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Spec::new("hub");
    let mut good = Spec::new("good");
    good.neighbours = vec![hub.port];
    let mut stalled = Spec::new("stalled");
    stalled.neighbours = vec![hub.port];
    let hub_agent = Agent::start(dir.path(), &hub);
    let good_agent = Agent::start(dir.path(), &good);
    let mut stalled_agent = Agent::start(dir.path(), &stalled);
    let all = ["good", "hub", "stalled"];
    wait_all_see(
        &[hub_agent.target(), good_agent.target()],
        &all,
        &null_ring(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("not converged: {e}"));
    let watch = Recorder::attach(&good_agent.target(), &null_ring()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let from = Instant::now();
    signal(&stalled_agent, Signal::STOP);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let s = status(&hub_agent.target(), &null_ring())
        .await
        .expect("hub answers while a peer is stalled");
    assert!(
        !fresh_hosts(&s, Duration::from_secs(6)).contains(&"stalled".to_owned()),
        "the stalled node is no longer heard"
    );
    let links: Vec<&str> = s.links.iter().map(|l| l.peer.as_str()).collect();
    assert!(
        !links.contains(&"stalled"),
        "the silent link was dropped after 5 s: {links:?}"
    );

    stalled_agent.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = Instant::now();
    let gap = watch.max_gap("hub", from, to);
    assert!(
        gap <= Duration::from_secs(3),
        "hub's frames kept reaching good: gap {gap:?}"
    );
    let s = status(&hub_agent.target(), &null_ring())
        .await
        .expect("hub still answers after its stalled peer was killed (no deadlock)");
    assert_eq!(
        fresh_hosts(&s, Duration::from_secs(3)),
        vec!["good".to_owned(), "hub".to_owned()]
    );
}

#[test]
fn sigterm_stops_an_agent_cleanly() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Agent::start(dir.path(), &Spec::new("term"));
    std::thread::sleep(Duration::from_secs(1));
    signal(&a, Signal::TERM);
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = a.child.try_wait() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "agent did not stop within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit: {status:?}");
    let log = std::fs::read_to_string(dir.path().join("term.log")).expect("log");
    assert!(log.contains("shutting down"), "{log}");
}
