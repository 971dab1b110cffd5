//! Ticks only when something is due (`wake`): an idle node ticks once a second, links still
//! get a heartbeat within every second and their heartbeats fall into step, a silent link is
//! still dropped after 5 s, and work that arrives between ticks brings the next one forward.
//! (`Sim::advance` ticks a node only when it asked, so every other test of this module runs
//! on planned ticks too.)

use super::*;

/// Node 0's heartbeats per peer in the messages sent since `from`.
fn heartbeats_since(s: &Sim, from: usize) -> Vec<PeerId> {
    s.sent[from..]
        .iter()
        .filter(|(node, _, b)| {
            *node == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::Heartbeat)
        })
        .map(|(_, peer, _)| *peer)
        .collect()
}

#[test]
fn an_idle_node_ticks_once_a_second() {
    let mut s = Sim::new(1, 8);
    s.originate(0);
    for _ in 0..100 {
        s.advance(100_000);
    }
    assert!(
        (9..=11).contains(&s.ticks[0]),
        "{} ticks in 10 s (100 when ticking every 100 ms)",
        s.ticks[0]
    );
}

#[test]
fn heartbeats_stay_within_a_second_fall_into_step_and_a_silent_link_is_dropped() {
    // A star: node 0 and four neighbours, linked 300 ms apart so that their heartbeats start
    // out of step; everyone originates a frame a second.
    let mut s = Sim::new(5, 8);
    for i in 1..5 {
        s.link(0, i);
        for _ in 0..3 {
            s.advance(100_000);
        }
    }
    let mut last: BTreeMap<PeerId, u64> = BTreeMap::new();
    let mut worst = 0;
    let mut hb_ticks_late = 0;
    let mut ticks_10s = 0;
    for step in 0..200 {
        if step % 10 == 0 {
            for i in 0..5 {
                s.originate(i);
            }
        }
        if step == 100 {
            ticks_10s = s.ticks[0];
        }
        let from = s.sent.len();
        s.advance(100_000);
        let hbs = heartbeats_since(&s, from);
        if step >= 100 && !hbs.is_empty() {
            hb_ticks_late += 1;
        }
        for peer in hbs {
            if let Some(l) = last.insert(peer, s.now.mono_us) {
                worst = worst.max(s.now.mono_us - l);
            }
        }
    }
    assert_eq!(last.len(), 4, "every link had heartbeats");
    assert!(worst <= 1_000_000, "worst heartbeat gap {worst} us");
    // In step: one wake-up a second carries all four links' heartbeats.
    assert!(
        hb_ticks_late <= 12,
        "{hb_ticks_late} ticks with heartbeats over the last 10 s"
    );
    let late = s.ticks[0] - ticks_10s;
    assert!(late <= 15, "{late} ticks over the last 10 s");

    // Node 4 goes silent (link 3, both ways): dropped 5 s after it was last heard.
    s.stalled.push((0, 6));
    s.stalled.push((4, 7));
    let heard = s.nodes[0]
        .peers()
        .find(|(id, _)| **id == 6)
        .map(|(_, p)| p.last_rx_us)
        .expect("link to node 4");
    let mut dropped_at = None;
    for _ in 0..70 {
        s.advance(100_000);
        if s.nodes[0].node_peers() == 3 {
            dropped_at = Some(s.now.mono_us);
            break;
        }
    }
    let after = dropped_at.expect("silent link dropped") - heard;
    assert!(
        (5_000_000..=5_300_000).contains(&after),
        "dropped {after} us after its last message"
    );
}

#[test]
fn a_duplicate_between_ticks_brings_the_next_tick_forward() {
    let mut s = Sim::new(3, 8);
    s.link(0, 1);
    s.link(1, 2);
    s.link(2, 0);
    s.originate(0); // host info, whose duplicates prune nothing
    for _ in 0..30 {
        s.advance(100_000);
    }
    assert!(
        s.nodes.iter().all(|g| g.next_tick_us() > s.now.mono_us),
        "nothing due at rest"
    );
    // The first sample of node 0 reaches 1 and 2 twice each: a prune waits for a heartbeat.
    s.originate(0);
    assert!(
        s.nodes.iter().any(|g| g.next_tick_us() <= s.now.mono_us),
        "a prune is due on the next grid point"
    );
    let prunes = |s: &Sim| s.nodes.iter().map(|g| g.counters().prunes).sum::<u64>();
    assert!(prunes(&s) > 0);
    s.advance(100_000);
    s.originate(0);
    s.advance(100_000);
    assert_eq!(s.seen_by(1, 0), 3);
    assert_eq!(s.seen_by(2, 0), 3);
}

#[test]
fn tick_grid_rounds_up_and_never_repeats_a_point() {
    let mut g = TickGrid::new(100_000);
    assert_eq!(g.next(0), 0, "first tick at once");
    g.fired(2_000);
    assert_eq!(g.next(0), 100_000, "not twice on one grid point");
    assert_eq!(g.next(950_001), 1_000_000, "rounded up to the grid");
    g.fired(1_730_000);
    assert_eq!(
        g.next(1_000_000),
        1_800_000,
        "a late tick does not make up for missed points"
    );
}
