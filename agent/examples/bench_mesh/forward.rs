//! Figure 2a: how many gossip frames one node verifies and forwards per second on one core,
//! driving the sans-io [`Gossip`] machine directly (no sockets, no tokio).
//!
//! The node has 3 node peers. Frames come from 2,000 origins with increasing `seq`, as sealed
//! Samples deltas of realistic size built with the real `Keyring::seal` before the clock
//! starts; each origin's frames enter on one peer (origin % 3), so input is spread
//! round-robin over the peers as in a mesh. A frame accepted from peer p is forwarded to the
//! other two: the run counts those `Action::Send`s. The simulated peers acknowledge every 256
//! frames they are sent with a pre-sealed Heartbeat (so the node's credits never run out and
//! the node also opens those heartbeats, as it would), and the clock ticks every 1,024 inputs.
//!
//! The one change from production settings: `peer_rate`/`peer_burst` are raised so that the
//! per-link token bucket (25,000 frames/s, burst 50,000) never throttles; the bucket is still
//! consulted for every frame. In production that bucket caps 3 links at 75,000 frames/s in.

use crate::stats::Row;
use anyhow::{Context as _, Result};
use bytes::Bytes;
use meshmon_agent::gossip::{Action, Direction, Gossip, GossipConfig, Input, Now, PeerId};
use meshmon_agent::net::mesh::wall_ms;
use meshmon_proto::num::Num;
use meshmon_proto::payload::{Heartbeat, Hello, Role, Samples};
use meshmon_proto::{Flags, Header, Keyring, Payload};
use std::time::Instant;

/// Origins whose frames are fed.
pub const ORIGINS: usize = 2_000;
/// Node peers of the node under test.
pub const PEERS: u64 = 3;
/// Values changed per Samples delta: gives sealed frames of about 250 bytes.
const CHANGED: usize = 26;
/// The simulated peers acknowledge every this many frames (a quarter of the window).
const ACK_EVERY: u64 = 256;

/// Sealed Samples frames, seq-major (seq 1 of every origin, then seq 2, ...), each with the
/// index of the origin it came from.
pub fn sample_frames(
    keyring: &Keyring,
    per_origin: u64,
    first_seq: u64,
) -> Result<Vec<(usize, Bytes)>> {
    let ts = wall_ms();
    let mut out = Vec::with_capacity(ORIGINS * per_origin as usize);
    for seq in first_seq..first_seq + per_origin {
        for o in 0..ORIGINS {
            let c: Vec<Num> = (0..CHANGED)
                .flat_map(|i| {
                    // A mix like the core set's: percentages and loads (float32), byte
                    // counts and rates (integers of 4 to 8 bytes).
                    let x = (o * 31 + seq as usize * 7 + i * 13) % 1000;
                    let v = if i % 3 == 0 {
                        (x * 1_048_573) as f64
                    } else {
                        x as f64 / 7.3
                    };
                    [Num((i * 2) as f64), Num(v)]
                })
                .collect();
            let payload = Payload::Samples(Samples {
                t: 1,
                n: seq,
                k: false,
                v: Vec::new(),
                c,
            });
            let header = Header {
                kind: payload.kind(),
                flags: Flags::default(),
                origin: format!("origin-{o:04}"),
                boot_id: 1_700_000_000_000_000,
                seq,
                ts_ms: ts + seq * 1000,
            };
            out.push((
                o,
                Bytes::from(keyring.seal(&header, 0, &payload.encode()?)?),
            ));
        }
    }
    Ok(out)
}

/// A sealed link frame from simulated peer `name`.
fn link_frame(keyring: &Keyring, name: &str, seq: u64, payload: &Payload) -> Result<Bytes> {
    let header = Header {
        kind: payload.kind(),
        flags: Flags::LINK,
        origin: name.to_owned(),
        boot_id: 42,
        seq,
        ts_ms: wall_ms(),
    };
    Ok(Bytes::from(keyring.seal(&header, 0, &payload.encode()?)?))
}

/// Runs the machine over `frames` `runs` times; returns the table rows.
pub fn run(keyring: &Keyring, frames: &[(usize, Bytes)], runs: usize) -> Result<Vec<Row>> {
    // Peer p acknowledges with acked = 256 * k; each peer is sent at most 2/3 of the frames.
    let acks_per_peer = frames.len() as u64 * 2 / 3 / ACK_EVERY + 2;
    let mut acks: Vec<Vec<Bytes>> = vec![Vec::new()];
    for p in 1..=PEERS {
        let name = format!("peer-{p}");
        let v = (1..=acks_per_peer)
            .map(|k| {
                let hb = Payload::Heartbeat(Heartbeat {
                    acked: k * ACK_EVERY,
                    sent_us: k,
                    echo_us: 0,
                    held_us: 0,
                    ..Default::default()
                });
                link_frame(keyring, &name, k + 1, &hb)
            })
            .collect::<Result<Vec<_>>>()?;
        acks.push(v);
    }
    let mean_len = frames.iter().map(|(_, b)| b.len()).sum::<usize>() as f64 / frames.len() as f64;
    let mut rates = Vec::new();
    for r in 0..runs {
        let rate = run_once(keyring, frames, &acks)?;
        eprintln!("fig 2a: run {}: {rate:.0} frames/s", r + 1);
        rates.push(rate);
    }
    let med = crate::stats::spread(&rates).0;
    Ok(vec![Row::new(
        "2a. frames/s one node verifies + forwards (sans-io Gossip, 1 thread)",
        "frames/s",
        &rates,
        ">= 50,000/s",
        format!(
            "{} {} frames/run from {ORIGINS} origins, mean {mean_len:.0} B sealed, each forwarded to 2 of 3 peers; peer_rate raised so the 25k/s/link limiter never fires",
            if med >= 50_000.0 { "met;" } else { "MISSED;" },
            frames.len()
        ),
    )])
}

fn run_once(keyring: &Keyring, frames: &[(usize, Bytes)], acks: &[Vec<Bytes>]) -> Result<f64> {
    let mut cfg = GossipConfig::new("bench-node", 7, 8);
    cfg.peer_rate = 1_000_000_000;
    cfg.peer_burst = 1_000_000_000;
    let mut g = Gossip::new(cfg, keyring.clone());
    let start = Instant::now();
    let now = || Now {
        mono_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX) + 1,
        wall_ms: wall_ms(),
    };
    let mut out = Vec::with_capacity(16);
    for p in 1..=PEERS {
        g.handle(
            now(),
            Input::PeerUp {
                peer: p,
                direction: Direction::In,
                addr: format!("peer-{p}"),
            },
            &mut out,
        );
        // The three-way hello: open with a nonce, then echo the machine's.
        let hello = |echo: u64| {
            Payload::Hello(Hello {
                name: format!("peer-{p}"),
                boot_id: 42,
                role: Role::Node,
                version: "bench".into(),
                window: 1024,
                nonce: 7,
                echo,
            })
        };
        g.handle(
            now(),
            Input::Message {
                peer: p,
                bytes: link_frame(keyring, &format!("peer-{p}"), 1, &hello(0))?,
            },
            &mut out,
        );
        let theirs = out
            .drain(..)
            .find_map(|a| match a {
                Action::Send { bytes, .. } => keyring.open(&bytes).ok().and_then(|o| {
                    match Payload::decode(o.header.kind, &o.plaintext) {
                        Ok(Payload::Hello(h)) => Some(h.nonce),
                        _ => None,
                    }
                }),
                _ => None,
            })
            .context("the machine did not answer the hello")?;
        g.handle(
            now(),
            Input::Message {
                peer: p,
                bytes: link_frame(keyring, &format!("peer-{p}"), 2, &hello(theirs))?,
            },
            &mut out,
        );
    }
    anyhow::ensure!(
        g.node_peers() == PEERS as usize,
        "simulated peers did not join"
    );
    out.clear();

    // Credit-bearing frames sent to each peer (forwards), and acknowledgements due.
    let mut sent = [0u64; PEERS as usize + 1];
    let mut due: Vec<PeerId> = Vec::new();
    let mut forwards = 0u64;
    let t = Instant::now();
    for (i, (origin, bytes)) in frames.iter().enumerate() {
        let from = 1 + (*origin as u64 % PEERS);
        let n = now();
        g.handle(
            n,
            Input::Message {
                peer: from,
                bytes: bytes.clone(),
            },
            &mut out,
        );
        for a in out.drain(..) {
            if let Action::Send { peer, .. } = a
                && peer != from
            {
                forwards += 1;
                sent[peer as usize] += 1;
                if sent[peer as usize].is_multiple_of(ACK_EVERY) {
                    due.push(peer);
                }
            }
        }
        for peer in due.drain(..) {
            let k = (sent[peer as usize] / ACK_EVERY - 1) as usize;
            let bytes = acks[peer as usize][k].clone();
            g.handle(n, Input::Message { peer, bytes }, &mut out);
            out.clear();
        }
        if i % 1024 == 0 {
            g.handle(n, Input::Tick, &mut out);
            out.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let c = g.counters();
    anyhow::ensure!(
        c.accepted == frames.len() as u64 && forwards == 2 * frames.len() as u64 && c.dropped == 0,
        "not every frame was accepted and forwarded twice: accepted {}, forwards {forwards}, dropped {}, auth failures {}",
        c.accepted,
        c.dropped,
        c.auth_failures
    );
    Ok(frames.len() as f64 / secs)
}
