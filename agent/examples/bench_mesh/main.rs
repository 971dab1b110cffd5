//! Mesh benchmarks: per-hop latency along a line of real agents, forwarding throughput (the
//! sans-io machine on one thread, then a real agent through sockets), agent memory under load
//! and under idle attacker connections, and the bytes one host's gossip costs per link.
//! Prints one Markdown table (figure | median | min | max | target | note) on stdout;
//! progress goes to stderr. Everything runs on 127.0.0.1.
//!
//! Run it through `scripts/bench_mesh.sh [--quick]`, which builds the release binary first;
//! by hand: `cargo run --release -p meshmon-agent --example bench_mesh -- [--quick]
//! [--only 1,2a,2b,3,4] [--rate FRAMES_PER_S] [--meshmon PATH]`.
//!
//! Not here: pass/fail assertions on timings (this prints, tests assert behaviour).
//!
//! # Layout
//! - `procs`: starting `meshmon agent` processes, /proc readings.
//! - `client`: a bare protocol client (viewer or node role) that timestamps arrivals.
//! - `latency`: figure 1. `forward`: figure 2a. `forward_net`: figures 2b and 3a.
//! - `memory`: figures 3b/3c. `bandwidth`: figure 4. `stats`: quantiles and the table.

mod bandwidth;
mod client;
mod forward;
mod forward_net;
mod latency;
mod memory;
mod procs;
mod stats;

use anyhow::{Context, Result};
use stats::Row;
use std::path::PathBuf;
use std::time::Duration;

/// How much of everything to do.
struct Plan {
    only: Option<Vec<String>>,
    meshmon: PathBuf,
    /// Figure 1: windows and their length.
    lat_windows: usize,
    lat_window: Duration,
    /// Figure 2a: runs and frames per origin per run.
    sansio_runs: usize,
    sansio_per_origin: u64,
    /// Figure 2b: offered frames/s in total, windows and their length.
    net_rate: f64,
    net_windows: usize,
    net_window: Duration,
    /// Figure 3: fresh agents per variant.
    mem_rounds: usize,
    /// Figure 4: 30 s windows.
    bw_windows: usize,
}

impl Plan {
    fn from_args() -> Result<Plan> {
        let mut args = std::env::args().skip(1);
        let (mut quick, mut only, mut meshmon, mut rate) = (false, None, None, None);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--only" => {
                    let v = args.next().context("--only needs a list like 1,2a,4")?;
                    only = Some(v.split(',').map(str::to_owned).collect());
                }
                "--meshmon" => {
                    meshmon = Some(PathBuf::from(
                        args.next().context("--meshmon needs a path")?,
                    ))
                }
                "--rate" => {
                    let v = args.next().context("--rate needs frames per second")?;
                    rate = Some(
                        v.parse::<f64>()
                            .with_context(|| format!("--rate: '{v}' is not a number"))?,
                    );
                }
                other => anyhow::bail!(
                    "unknown argument '{other}' (expected --quick, --only, --rate, --meshmon)"
                ),
            }
        }
        let meshmon = meshmon
            .or_else(procs::default_meshmon)
            .context("no meshmon binary next to this example; build it (cargo build --release) or pass --meshmon PATH")?;
        Ok(Plan {
            only,
            meshmon,
            lat_windows: if quick { 2 } else { 3 },
            lat_window: Duration::from_secs(if quick { 5 } else { 10 }),
            sansio_runs: 5,
            sansio_per_origin: if quick { 25 } else { 100 },
            net_rate: rate.unwrap_or(72_000.0),
            net_windows: 3,
            net_window: Duration::from_secs(if quick { 2 } else { 4 }),
            mem_rounds: if quick { 1 } else { 3 },
            bw_windows: if quick { 1 } else { 2 },
        })
    }

    fn wants(&self, fig: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|f| f == fig))
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("bench_mesh: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the figures; `Ok(false)` if one of them could not be measured.
fn run() -> Result<bool> {
    let plan = Plan::from_args()?;
    let lab = procs::Lab::new(plan.meshmon.clone())?;
    let mut rows: Vec<Row> = Vec::new();

    // 2a first, on this thread, while no agent is running.
    if plan.wants("2a") {
        eprintln!(
            "fig 2a: sealing {} frames",
            forward::ORIGINS as u64 * plan.sansio_per_origin
        );
        let r = forward::sample_frames(&lab.keyring, plan.sansio_per_origin, 1)
            .and_then(|frames| forward::run(&lab.keyring, &frames, plan.sansio_runs));
        push(
            &mut rows,
            r,
            "2a. frames/s one node verifies + forwards (sans-io)",
            ">= 50,000/s",
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Ctrl-C or SIGTERM drops the figure in progress, and with it every agent it started.
        tokio::select! {
            () = async_figures(&plan, &lab, &mut rows) => Ok(()),
            r = interrupted() => r,
        }
    })?;
    stats::print(&rows);
    Ok(!rows.iter().any(|r| r.note.starts_with("FAILED")))
}

async fn async_figures(plan: &Plan, lab: &procs::Lab, rows: &mut Vec<Row>) {
    if plan.wants("1") {
        let r = latency::run(lab, plan.lat_windows, plan.lat_window).await;
        push(rows, r, "1. hop latency, 8-node line", "p99 <= 2 ms");
    }
    if plan.wants("2b") {
        let r = forward_net::run(lab, plan.net_rate, plan.net_windows, plan.net_window).await;
        push(
            rows,
            r,
            "2b. frames/s forwarded by a real agent",
            ">= 50,000/s",
        );
    }
    if plan.wants("3") {
        let r = memory::run(lab, plan.mem_rounds).await;
        push(rows, r, "3. agent RSS with 300 attacker connections", "-");
    }
    if plan.wants("4") {
        let r = bandwidth::run(lab, plan.bw_windows).await;
        push(
            rows,
            r,
            "4. gossip bytes/s of one host on one link",
            "<= 400 B/s",
        );
    }
}

fn push(rows: &mut Vec<Row>, r: Result<Vec<Row>>, figure: &str, target: &str) {
    match r {
        Ok(v) => rows.extend(v),
        Err(error) => {
            eprintln!("{figure}: {error:#}");
            rows.push(Row::failed(figure, target, &error));
        }
    }
}

async fn interrupted() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    anyhow::bail!("interrupted; agents stopped")
}
