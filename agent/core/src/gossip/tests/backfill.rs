//! Backfill through the simulated network: gaps asked for, replays routed and accepted.

use super::*;

fn dashboard(name: &str, boot: u64) -> Gossip {
    let mut c = GossipConfig::new(name, boot, 8);
    c.deliver_all = true;
    c.backfill = true;
    Gossip::new(c, key())
}

fn frames_of(s: &Sim, node: usize, origin: &str, replay: bool) -> Vec<u64> {
    let mut v: Vec<u64> = s.delivered[node]
        .iter()
        .filter(|d| {
            d.header.origin == origin && d.replay == replay && !d.header.flags.contains(Flags::LINK)
        })
        .map(|d| d.header.seq)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_cut_off_dashboard_gets_exactly_the_missing_frames_back_along_the_reverse_path() {
    // n0 - n1 - n2 (dashboard), and n3 hanging off n1: the replay must not go to n3.
    let mut s = Sim::new(4, 8);
    s.nodes[2] = dashboard("n2", 1002);
    s.link(0, 1);
    s.link(1, 2);
    s.link(3, 1);
    for _ in 0..5 {
        s.originate(0);
    }
    s.originate(2); // like every node, the dashboard gossips its own metrics: routes to it exist
    assert_eq!(frames_of(&s, 2, "n0", false).len(), 5);
    // Cut n1 -> n2 (link 1, peer 2 on n1) while n0 sends 15 more frames.
    s.stalled.push((1, 2));
    for _ in 0..15 {
        s.originate(0);
    }
    s.stalled.clear();
    s.originate(0);
    assert_eq!(s.nodes[2].gaps("n0"), vec![(6, 20)]);
    let sent_before = s.sent.len();
    s.advance(2_500_000);
    s.advance(100_000);
    let replayed = frames_of(&s, 2, "n0", true);
    assert!(
        (6..=20).all(|q| replayed.contains(&q)),
        "the whole gap, marked replay: {replayed:?}"
    );
    let tail = crate::gossip::backfill::TAIL;
    assert!(
        replayed.iter().all(|q| *q <= 20 + tail),
        "at most the tail after the gap: {replayed:?}"
    );
    assert!(
        replayed.iter().filter(|q| **q < 6).count() <= 2,
        "at most the decoder's context before it: {replayed:?}"
    );
    assert!(s.nodes[2].gaps("n0").is_empty());
    let replay_to_n3 = s.sent[sent_before..]
        .iter()
        .filter(|(n, p, b)| {
            *n == 1
                && *p == 5
                && Frame::decode(b).is_ok_and(|f| f.header.flags.contains(Flags::REPLAY))
        })
        .count();
    assert_eq!(
        replay_to_n3, 0,
        "requests and replays follow routes, they do not flood"
    );
    assert_eq!(frames_of(&s, 3, "n0", true), Vec::<u64>::new());
    // Live frames keep flowing, each once. Frame 21 skipped 6..=20: of those, what n1 still
    // held for grafts (the last few) came live by a graft as well; the replay covers it all.
    let live = frames_of(&s, 2, "n0", false);
    let mut once = live.clone();
    once.dedup();
    assert_eq!(live, once, "no live frame twice");
    assert!(
        live.starts_with(&[1, 2, 3, 4, 5]) && live.ends_with(&[21]),
        "{live:?}"
    );
    let held = 21 - crate::gossip::tree::CACHE_FRAMES as u64;
    assert!(
        live.iter().all(|q| *q <= 5 || *q >= held),
        "between them only what n1 still held: {live:?}"
    );
}

#[test]
fn a_restarted_dashboard_resumes_from_the_store_and_fills_the_gap() {
    let mut s = Sim::new(2, 8);
    s.link(0, 1);
    for _ in 0..10 {
        s.originate(0);
    }
    // n1 restarts as a dashboard whose store holds n0's frames up to seq 4.
    s.nodes[1] = dashboard("n1", 9999);
    s.input(
        1,
        Input::Resume {
            origin: "n0".into(),
            boot_id: 1000,
            seq: 4,
        },
    );
    s.input(0, Input::PeerDown { peer: 0 });
    s.link(0, 1);
    s.originate(0);
    s.advance(2_500_000);
    s.advance(100_000);
    let mut got = frames_of(&s, 1, "n0", true);
    got.extend(frames_of(&s, 1, "n0", false));
    assert!(
        (5..=11).all(|q| got.contains(&q)),
        "live or replayed, nothing missing since seq 4: {got:?}"
    );
    assert!(s.nodes[1].gaps("n0").is_empty());
}

#[test]
fn a_replay_of_someone_elses_frames_is_refused() {
    let mut s = Sim::new(3, 8);
    s.nodes[2] = dashboard("n2", 1002);
    s.link(0, 2);
    s.link(1, 2);
    s.originate(0);
    let foreign: Vec<ByteBuf> = s
        .sent
        .iter()
        .filter(|(n, _, b)| {
            *n == 0 && Frame::decode(b).is_ok_and(|f| f.header.kind == Kind::HostInfo)
        })
        .map(|(_, _, b)| ByteBuf::from(b.to_vec()))
        .collect();
    let before = s.delivered[2].len();
    let forged = Payload::Replay(meshmon_proto::payload::Replay {
        to: "n2".into(),
        frames: foreign,
        last: true,
    });
    s.input(1, Input::Local(forged));
    s.run();
    assert!(
        s.delivered[2][before..].iter().all(|d| !d.replay),
        "n1 may not replay n0's frames"
    );
}
