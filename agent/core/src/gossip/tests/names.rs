//! Two live hosts with one name in a simulated mesh: both learn of it, every node marks it, and
//! only the higher boot's frames are delivered once both are live.

use super::*;

#[test]
fn two_hosts_named_dup_are_detected_everywhere_and_only_the_higher_boot_is_delivered() {
    // n0 - n1 - n2 in a line; "dup" boot 5 hangs off n0, "dup" boot 9 off n2.
    let mut sim = Sim::new(5, 8);
    for (i, boot) in [(3, 5), (4, 9)] {
        let mut c = GossipConfig::new("dup", boot, 8);
        c.deliver_all = true;
        sim.nodes[i] = Gossip::new(c, key());
    }
    sim.link(0, 1);
    sim.link(1, 2);
    sim.link(3, 0);
    sim.link(4, 2);
    let mut conflict_at = None;
    for step in 0..40u64 {
        for i in 0..5 {
            sim.originate(i);
        }
        sim.advance(250_000);
        if conflict_at.is_none() && sim.nodes[1].names.in_conflict("dup") {
            conflict_at = Some(step);
            sim.delivered[1].clear();
        }
    }
    let at = conflict_at.expect("n1 marks the conflict");
    assert!(
        at <= 16,
        "detected within 4 s of simulated time, took {at} steps"
    );
    for i in 0..3 {
        let st = sim.nodes[i].status();
        let dup = st.hosts.iter().find(|h| h.name == "dup").expect("dup row");
        assert!(dup.name_conflict, "n{i} marks dup");
        assert_eq!(dup.boot_id, 9, "n{i} shows the higher boot");
        assert!(sim.nodes[i].rival_frames() > 0, "n{i} flooded the rival on");
        assert_eq!(sim.nodes[i].name_conflicts(), 0, "n{i} is not named dup");
    }
    for i in [3, 4] {
        assert!(
            sim.nodes[i].name_conflicts() > 0,
            "dup (node {i}) counts the other's frames"
        );
    }
    let boots: std::collections::BTreeSet<u64> = sim.delivered[1]
        .iter()
        .filter(|d| d.header.origin == "dup")
        .map(|d| d.header.boot_id)
        .collect();
    assert_eq!(boots, [9].into(), "only the higher boot is delivered");
}

#[test]
fn a_restart_under_the_same_name_is_not_a_conflict() {
    let mut sim = Sim::new(3, 8);
    sim.link(0, 1);
    sim.link(1, 2);
    for _ in 0..12 {
        sim.originate(2);
        sim.advance(250_000);
    }
    // n2 restarts with a higher boot id on the same links.
    let mut c = GossipConfig::new("n2", 5000, 8);
    c.deliver_all = true;
    sim.nodes[2] = Gossip::new(c, key());
    sim.input(
        2,
        Input::PeerUp {
            peer: 3,
            direction: Direction::In,
            addr: "n1".into(),
        },
    );
    sim.input(1, Input::PeerDown { peer: 2 });
    sim.input(
        1,
        Input::PeerUp {
            peer: 2,
            direction: Direction::Out,
            addr: "n2".into(),
        },
    );
    sim.run();
    for _ in 0..40 {
        sim.originate(2);
        sim.advance(250_000);
    }
    for i in 0..2 {
        let st = sim.nodes[i].status();
        let n2 = st.hosts.iter().find(|h| h.name == "n2").expect("n2 row");
        assert!(!n2.name_conflict, "n{i}: a restart is no conflict");
        assert_eq!(n2.boot_id, 5000);
    }
}
