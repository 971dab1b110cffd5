//! Figure 4: what one host's gossip costs on one link, in bytes per second. Two real agents,
//! srv01 dialling srv02, both collecting the core metric set every second. A viewer client on
//! srv02 records every frame whose origin is srv01 (a node passes it to viewers exactly as
//! it crossed the link), and one on srv01 does the same for srv02. Bytes = frame length plus its ZMTP frame header
//! (2 bytes up to 255 bytes of body, else 9). The figure is taken over 30 s windows, which
//! cover the 30 s cycles of the series table and host info. TCP/IP headers are not counted,
//! nor the link's own heartbeats (one per second each way, shared by every host on the link).

use crate::client::{Arrival, Client};
use crate::procs::{Lab, free_ports, wait_converged};
use crate::stats::Row;
use anyhow::Result;
use meshmon_proto::payload::{Heartbeat, Role};
use meshmon_proto::{Flags, Header, Kind, Payload};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(30);

fn wire_len(frame_len: usize) -> usize {
    frame_len + if frame_len <= 255 { 2 } else { 9 }
}

/// Runs for `windows` windows of 30 s.
pub async fn run(lab: &Lab, windows: usize) -> Result<Vec<Row>> {
    let ports = free_ports(2)?;
    // README-style host names: the origin name is in every frame (1 B/s per character).
    let b = lab.start("srv02", ports[1], &[])?;
    let a = lab.start("srv01", ports[0], &[ports[1]])?;
    wait_converged(&[a.target(), b.target()], 2, lab, Duration::from_secs(20)).await?;
    let on_a =
        Client::connect(&a.target(), "bw-viewer-a", Role::Viewer, &lab.keyring, true).await?;
    let on_b =
        Client::connect(&b.target(), "bw-viewer-b", Role::Viewer, &lab.keyring, true).await?;
    let t0 = Instant::now();
    eprintln!("fig 4: recording {} s", WINDOW.as_secs() * windows as u64);
    tokio::time::sleep(WINDOW * windows as u32 + Duration::from_millis(500)).await;
    let at_a = on_a.finish().await;
    let at_b = on_b.finish().await;
    drop((a, b));

    let mut rates = Vec::new();
    let mut kinds = [0usize; 3];
    let mut sizes = Vec::new();
    for (seen, origin) in [(&at_b, "srv01"), (&at_a, "srv02")] {
        for w in 0..windows {
            let from = t0 + WINDOW * w as u32;
            let to = from + WINDOW;
            let frames: Vec<&Arrival> = seen
                .iter()
                .filter(|f| f.header.origin == origin && f.at >= from && f.at < to)
                .collect();
            let bytes: usize = frames.iter().map(|f| wire_len(f.bytes.len())).sum();
            rates.push(bytes as f64 / WINDOW.as_secs_f64());
            for f in &frames {
                match f.header.kind {
                    Kind::Samples => {
                        kinds[0] += 1;
                        sizes.push(f.bytes.len());
                    }
                    Kind::SeriesTable => kinds[1] += 1,
                    _ => kinds[2] += 1,
                }
            }
        }
    }
    let series = series_count(lab, &at_b);
    sizes.sort_unstable();
    let med_sample = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let hb = heartbeat_len(lab)?;
    let med = crate::stats::spread(&rates).0;
    Ok(vec![Row::new(
        "4. gossip bytes/s of one host on one link (2 agents, core metrics)",
        "B/s",
        &rates,
        "<= 400 B/s",
        format!(
            "{} hosts srv01 and srv02, {} x 30 s windows each; {series} series on this machine; {} Samples (median {med_sample} B), {} SeriesTable, {} HostInfo frames; +ZMTP 2/9 B per frame, TCP/IP not counted; link heartbeats add ~{} B/s per direction per link",
            if med <= 400.0 { "met;" } else { "MISSED;" },
            windows,
            kinds[0],
            kinds[1],
            kinds[2],
            wire_len(hb)
        ),
    )])
}

/// Series in the newest series table received.
fn series_count(lab: &Lab, seen: &[Arrival]) -> usize {
    seen.iter()
        .rev()
        .filter(|f| f.header.kind == Kind::SeriesTable)
        .find_map(|f| {
            let plain = lab.keyring.open(&f.bytes).ok()?;
            match Payload::decode(Kind::SeriesTable, &plain.plaintext) {
                Ok(Payload::SeriesTable(t)) => Some(t.series.len()),
                _ => None,
            }
        })
        .unwrap_or(0)
}

/// Length of a typical sealed heartbeat between two agents that have been up a while.
fn heartbeat_len(lab: &Lab) -> Result<usize> {
    let hb = Payload::Heartbeat(Heartbeat {
        acked: 100_000,
        sent_us: 3_600_000_000,
        echo_us: 3_599_999_000,
        held_us: 400_000,
        ..Default::default()
    });
    let header = Header {
        kind: Kind::Heartbeat,
        flags: Flags::LINK,
        origin: "srv01".into(),
        boot_id: meshmon_agent::node::new_boot_id(),
        seq: 100_000,
        ts_ms: meshmon_agent::net::mesh::wall_ms(),
    };
    Ok(lab.keyring.seal(&header, 0, &hb.encode()?)?.len())
}
