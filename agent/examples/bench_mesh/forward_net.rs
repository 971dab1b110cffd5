//! Figure 2b and 3a: the same forwarding load through real sockets. One real agent (release
//! binary, production settings) has 3 neighbours, each a bench [`Client`] in the node role
//! that pushes pre-sealed Samples frames of its own origins (origin % 3) at a paced rate
//! within the agent's credit window, and acknowledges what the agent forwards to it.
//!
//! Measured per window: frames/s the agent forwarded (gossip frames with hops >= 1 arriving
//! at the clients, divided by 2 because each input frame goes to the 2 other peers), the
//! agent's CPU% (user + system from /proc/PID/stat over the window; 100 % = one core) and its
//! RSS. The bench process itself (3 zmq.rs sockets) shares the same 2 cores, so this is a
//! lower bound of what the agent alone could do.

use crate::client::Client;
use crate::forward::{ORIGINS, PEERS, sample_frames};
use crate::procs::{Lab, free_port, loadavg};
use crate::stats::{Row, spread};
use anyhow::Result;
use bytes::Bytes;
use meshmon_proto::payload::Role;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Runs `windows` windows of `window` at `rate` frames/s in total.
pub async fn run(lab: &Lab, rate: f64, windows: usize, window: Duration) -> Result<Vec<Row>> {
    let warmup = Duration::from_secs(1);
    let total = warmup + window * windows as u32;
    // 15 % spare so that the push never runs dry inside the last window.
    let per_origin = ((rate * total.as_secs_f64() * 1.15) / ORIGINS as f64).ceil() as u64;
    eprintln!("fig 2b: sealing {} frames", per_origin as usize * ORIGINS);
    let frames = sample_frames(&lab.keyring, per_origin, 1)?;
    let mut per_client: Vec<Vec<Bytes>> = vec![Vec::new(); PEERS as usize];
    for (o, b) in frames {
        per_client[o % PEERS as usize].push(b);
    }

    let port = free_port()?;
    let agent = lab.start("fwd", port, &[])?;
    let mut clients = Vec::new();
    for p in 0..PEERS {
        clients.push(
            Client::connect(
                &agent.target(),
                &format!("synth-{p}"),
                Role::Node,
                &lab.keyring,
                false,
            )
            .await?,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = agent.rss_kib()? as f64 / 1024.0;
    for (c, f) in clients.iter().zip(per_client) {
        c.push(f, rate / PEERS as f64).await?;
    }
    tokio::time::sleep(warmup).await;

    let forwarded = |cs: &[Client]| {
        cs.iter()
            .map(|c| c.counters.forwarded_in.load(Relaxed))
            .sum::<u64>()
    };
    let pushed = |cs: &[Client]| {
        cs.iter()
            .map(|c| c.counters.pushed.load(Relaxed))
            .sum::<u64>()
    };
    let (mut fwd_rates, mut in_rates, mut cpus, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in 0..windows {
        let (t, f0, p0, c0) = (
            Instant::now(),
            forwarded(&clients),
            pushed(&clients),
            agent.cpu_s()?,
        );
        tokio::time::sleep(window).await;
        let dt = t.elapsed().as_secs_f64();
        let (f1, p1, c1) = (forwarded(&clients), pushed(&clients), agent.cpu_s()?);
        let fwd = (f1 - f0) as f64 / 2.0 / dt;
        let cpu = (c1 - c0) / dt * 100.0;
        eprintln!(
            "fig 2b: window {}: in {:.0}/s, forwarded {fwd:.0}/s, agent CPU {cpu:.0} %",
            w + 1,
            (p1 - p0) as f64 / dt
        );
        fwd_rates.push(fwd);
        in_rates.push((p1 - p0) as f64 / dt);
        cpus.push(cpu);
        rss.push(agent.rss_kib()? as f64 / 1024.0);
    }
    // Stop pushing, let the last forwards drain, then compare everything pushed with
    // everything forwarded. (The node's own Status cannot tell: with 2,000 hosts it
    // exceeds the 64 KiB frame limit and is never sent.)
    for c in &clients {
        c.push(Vec::new(), 0.0).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (pushed_all, forwarded_all) = (pushed(&clients), forwarded(&clients));
    for c in clients {
        c.finish().await;
    }
    drop(agent);

    let (fwd, _, _) = spread(&fwd_rates);
    let (input, _, _) = spread(&in_rates);
    let (cpu, _, _) = spread(&cpus);
    let per_core = if cpu > 0.0 {
        fwd / (cpu / 100.0)
    } else {
        f64::NAN
    };
    let lost = pushed_all as f64 - forwarded_all as f64 / 2.0;
    let drops = format!(
        "{pushed_all} pushed in all, {:.2} % not forwarded to both peers",
        lost.max(0.0) / pushed_all.max(1) as f64 * 100.0
    );
    Ok(vec![
        Row::new(
            "2b. frames/s forwarded by a real agent, 3 socket peers",
            "frames/s",
            &fwd_rates,
            ">= 50,000/s",
            format!(
                "{} offered {rate:.0}/s (3 peers x {:.0}/s, paced, within credits), median input {input:.0}/s; {drops}; = {per_core:.0} frames forwarded per agent CPU-second",
                if fwd >= 50_000.0 { "met;" } else { "MISSED;" },
                rate / PEERS as f64
            ),
        ),
        Row::new(
            "2b. agent CPU during 2b (100 % = 1 core)",
            "%",
            &cpus,
            "-",
            format!(
                "user+system from /proc/PID/stat; the bench peers share the same 2 cores; load average {}",
                loadavg()
            ),
        ),
        Row::new(
            "3a. agent RSS under 2b load (3 links)",
            "MiB",
            &rss,
            "-",
            format!("VmRSS at the end of each window; {rss_idle:.1} MiB with the 3 links idle"),
        ),
    ])
}
