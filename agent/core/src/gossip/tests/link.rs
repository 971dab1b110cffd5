//! The link protocol through the simulated network: hello, heartbeats, credits, liveness,
//! viewers, newcomers, paged status.

use super::*;

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

/// Frames a node originates before any node link is up (at start, before the first Hello)
/// reach the first neighbour that joins, live, in order: a dashboard must see a host's
/// first frames (an alert's identity includes the time of the first frame over its
/// threshold). Frames of a node that already had a link are not pushed again.
#[test]
fn frames_originated_before_any_link_reach_the_first_neighbour() {
    let mut s = Sim::new(3, 8);
    let sync = |n: usize| {
        Payload::AlertSync(meshmon_proto::payload::AlertSync {
            sent: vec![format!("early-{n}")],
            ..Default::default()
        })
    };
    s.originate(0);
    for n in 0..3 {
        s.input(0, Input::Local(sync(n)));
    }
    s.link(0, 1);
    let early: Vec<String> = s.delivered[1]
        .iter()
        .filter_map(|d| match &d.payload {
            Payload::AlertSync(a) if d.header.origin == "n0" => a.sent.first().cloned(),
            _ => None,
        })
        .collect();
    assert_eq!(early, ["early-0", "early-1", "early-2"], "in order, once");
    // A second neighbour gets them flooded from node 1, not again from node 0.
    s.link(2, 1);
    let pushed_again = s
        .sent
        .iter()
        .filter(|(from, _, bytes)| {
            *from == 0 && Frame::decode(bytes).is_ok_and(|f| f.header.kind == Kind::AlertSync)
        })
        .count();
    assert_eq!(pushed_again, 3, "each early frame left node 0 once");
}

/// A newcomer is handed more descriptors than its credit window holds (a mesh of more than
/// 512 hosts against the window of 1,024; here 11 hosts against 3): the rest wait on the
/// link's backlog and follow as its acknowledgements free credits, none dropped.
#[test]
fn a_joining_node_gets_every_descriptor_even_beyond_its_credit_window() {
    let mut s = Sim::new(12, 8);
    s.set_window(11, 3);
    for n in 1..=10 {
        s.link(n, 0);
        s.originate(n);
    }
    s.originate(0);
    s.link(11, 0);
    for o in 0..=10 {
        assert_eq!(s.seen_by(11, o), 1, "n11 has the host info of n{o}");
    }
    let p = s.nodes[0].peers().find(|(id, _)| **id == 2 * 10 + 1);
    assert!(p.is_some_and(|(_, p)| p.backlog.is_empty() && p.dropped == 0));
}
