//! Runs a simulated fleet against a meshmon node and prints a line of counters every 10 s:
//!
//! ```sh
//! cargo run --release -p meshmon-sim --example fleet_sim -- \
//!     --target 127.0.0.1:7000 --hosts 500 --interval 1s [--aligned] --pattern flap [--key FILE]
//! ```
//!
//! Stops on Ctrl-C or SIGTERM, or after `--duration`. Exit codes: 0 done, 1 runtime failure,
//! 2 bad arguments.

use anyhow::Context as _;
use clap::Parser;
use meshmon_proto::units::parse_duration;
use meshmon_sim::{Fleet, FleetConfig, Pattern};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Simulated hosts speaking the meshmon protocol into one node.
#[derive(Parser, Debug)]
#[command(name = "fleet_sim")]
struct Args {
    /// The node's mesh port, host:port.
    #[arg(long)]
    target: SocketAddr,
    /// Number of simulated hosts.
    #[arg(long, default_value_t = 500)]
    hosts: usize,
    /// Sample interval of every host (500ms, 1s, ...).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Hosts send at once on the wall clock's multiples of the interval, as agents collect
    /// (over 100 hosts: in up to ten slots; default: the hosts' frames spread evenly).
    #[arg(long)]
    aligned: bool,
    /// steady, walk, flap (20 s period) or flap:PERIOD.
    #[arg(long, default_value = "steady")]
    pattern: Pattern,
    /// Series per host (at least 3).
    #[arg(long, default_value_t = 3)]
    series: usize,
    /// Mesh key file (as written by `meshmon keygen`); none: the null key of keyless nodes.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Host names are PREFIX0000, PREFIX0001, ...
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// The fleet's name in its Hello.
    #[arg(long, default_value = "sim-fleet")]
    link_name: String,
    /// Seed of the random walks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How often to print the counters.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    report: Duration,
    /// Stop after this long (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

fn main() {
    let args = Args::parse();
    let code = match run(args) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("fleet_sim: {error:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = FleetConfig::new(args.target, args.hosts);
    cfg.interval = args.interval;
    cfg.aligned = args.aligned;
    cfg.pattern = args.pattern;
    cfg.series = args.series;
    cfg.name_prefix = args.prefix;
    cfg.link_name = args.link_name;
    cfg.seed = args.seed;
    if let Some(key) = &args.key {
        cfg = cfg.with_key_file(key)?;
    }
    if let Err(error) = cfg.validate() {
        eprintln!("fleet_sim: {error}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let stop = CancellationToken::new();
        let fleet = Fleet::start(cfg.clone(), stop.clone())?;
        println!(
            "fleet_sim: {} hosts ({} .. {}) every {:?} into {}, pattern {:?}",
            cfg.hosts,
            cfg.host_name(0),
            cfg.host_name(cfg.hosts - 1),
            cfg.interval,
            cfg.target,
            cfg.pattern
        );
        let started = Instant::now();
        let mut report = tokio::time::interval(args.report);
        report.tick().await;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        let until = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                () = &mut until => break,
                _ = report.tick() => {
                    println!("[{:>6.0}s] {}", started.elapsed().as_secs_f64(), fleet.stats());
                }
            }
        }
        let last = fleet.stats();
        fleet.join().await;
        println!("[{:>6.0}s] final: {last}", started.elapsed().as_secs_f64());
        Ok(())
    })
}
