//! Figure 3b/3c: what idle attacker connections cost an agent in memory. A fresh agent with
//! no links settles; its RSS is the baseline. Then 300 raw TCP connections are opened to its
//! port and either send nothing, or send only the 10-byte ZMTP signature (which passes the
//! guard's first check, so the guard also opens its upstream connection to zmq.rs). RSS is
//! read 2.5 s later, inside the 5 s handshake deadline that would close them.

use crate::procs::{Agent, Lab, free_port};
use crate::stats::{Row, spread};
use anyhow::{Context, Result};
use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

const CONNECTIONS: usize = 300;
/// 0xFF, 8 bytes of padding, 0x7F: the start of every ZMTP 3 greeting.
const SIGNATURE: [u8; 10] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F];

/// Median of a few RSS readings 100 ms apart, in MiB.
async fn rss_mib(agent: &Agent) -> Result<f64> {
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(agent.rss_kib()? as f64 / 1024.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(spread(&v).0)
}

struct Round {
    base: f64,
    loaded: f64,
    fds_base: usize,
    fds_loaded: usize,
}

async fn round(lab: &Lab, send_signature: bool) -> Result<Round> {
    let agent = lab.start("idle", free_port()?, &[])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base = rss_mib(&agent).await?;
    let fds_base = agent.fds();
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(("127.0.0.1", agent.port)).context("attacker connect")?;
        if send_signature {
            s.write_all(&SIGNATURE)?;
        }
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let loaded = rss_mib(&agent).await?;
    let fds_loaded = agent.fds();
    drop(conns);
    Ok(Round {
        base,
        loaded,
        fds_base,
        fds_loaded,
    })
}

/// `rounds` fresh agents per variant.
pub async fn run(lab: &Lab, rounds: usize) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut bases = Vec::new();
    for (label, sig) in [
        ("3b. agent RSS + 300 idle TCP conns (send nothing)", false),
        (
            "3c. agent RSS + 300 TCP conns sending only the ZMTP signature",
            true,
        ),
    ] {
        let mut loaded = Vec::new();
        let mut deltas = Vec::new();
        let mut fds = (0, 0);
        for _ in 0..rounds {
            let r = round(lab, sig).await?;
            eprintln!(
                "fig 3: {label}: {:.1} -> {:.1} MiB, fds {} -> {}",
                r.base, r.loaded, r.fds_base, r.fds_loaded
            );
            bases.push(r.base);
            loaded.push(r.loaded);
            deltas.push((r.loaded - r.base) * 1024.0 / CONNECTIONS as f64);
            fds = (r.fds_base, r.fds_loaded);
        }
        let (d, dmin, dmax) = spread(&deltas);
        rows.push(Row::new(
            label,
            "MiB",
            &loaded,
            "-",
            format!("{d:.1} KiB per connection over the idle baseline (min {dmin:.1}, max {dmax:.1}); agent fds {} -> {}", fds.0, fds.1),
        ));
    }
    rows.insert(
        0,
        Row::new(
            "3. agent RSS idle, no links (baseline)",
            "MiB",
            &bases,
            "-",
            "fresh agent after 3 s, VmRSS from /proc/PID/status".into(),
        ),
    );
    Ok(rows)
}
