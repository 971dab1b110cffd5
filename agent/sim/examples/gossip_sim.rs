//! Runs the real gossip state machine for meshes of N nodes in simulated time and prints one
//! table: traffic per node, redundancy, latency, state, healing after 10 % of the nodes are
//! killed at once, and a partition healed after 30 s.
//!
//! ```sh
//! cargo run --release -p meshmon-sim --example gossip_sim -- \
//!     --nodes 100,500,2000 --partition-nodes 100,500 --seed 1
//! ```
//!
//! Exit codes: 0 done, 1 a run failed, 2 bad arguments.

use clap::Parser;
use meshmon_proto::units::parse_duration;
use meshmon_sim::mesh::{Fault, KillMode, MeshConfig, report};
use std::time::{Duration, Instant};

/// The gossip simulator (see `meshmon_sim::mesh`).
#[derive(Parser, Debug)]
#[command(name = "gossip_sim")]
struct Args {
    /// Mesh sizes, comma-separated.
    #[arg(long, default_value = "100,500,2000", value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Mean degree.
    #[arg(long, default_value_t = 5.0)]
    degree: f64,
    #[arg(long, default_value_t = 3)]
    min_degree: usize,
    #[arg(long, default_value_t = 8)]
    max_degree: usize,
    /// Per-link one-way latency range in ms, drawn once per link: MIN,MAX.
    #[arg(long, default_value = "0.5,5", value_delimiter = ',')]
    latency_ms: Vec<f64>,
    /// Mean of the exponential jitter added to every message, ms.
    #[arg(long, default_value_t = 0.2)]
    jitter_ms: f64,
    /// Probability that a message is lost on a link.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Series per node (mesh metrics included).
    #[arg(long, default_value_t = 30)]
    series: usize,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Every node samples at its own phase, spread over the interval (default: on the same
    /// wall-clock boundaries, as agents do).
    #[arg(long)]
    spread: bool,
    /// Every node collects on the same instant, whatever the mesh's size (a stress: agents
    /// spread meshes above 100 hosts over up to ten slots).
    #[arg(long, conflicts_with = "spread")]
    one_instant: bool,
    #[arg(long, default_value_t = 32)]
    max_hops: u8,
    /// Credit window of every node (frames in flight per link).
    #[arg(long, default_value_t = 1024)]
    window: u32,
    /// Dashboard nodes (they decode everything and ask for missing frames).
    #[arg(long, default_value_t = 1)]
    dashboards: usize,
    /// Warm-up before the measured window; one value, or one per size. Default: 5s, and 2s
    /// from 1,000 nodes.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    warmup: Option<Vec<Duration>>,
    /// Measured window; one value, or one per size. Default: 5s, and 1s from 1,000 nodes.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    measure: Option<Vec<Duration>>,
    /// Simulated time after the kill or the heal. Default: 5s, and 4s from 1,000 nodes.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    after: Option<Vec<Duration>>,
    /// Frames originated in the last DRAIN are not judged. Default: 2s, and 1s from 1,000
    /// nodes.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    drain: Option<Vec<Duration>>,
    /// Fraction of the nodes killed at once.
    #[arg(long, default_value_t = 0.1)]
    kill: f64,
    /// crash (silence) or exit (connections close).
    #[arg(long, default_value = "crash")]
    kill_mode: String,
    /// Partition length.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    partition: Duration,
    /// Sizes that also run the partition scenario ("none": none).
    #[arg(long, default_value = "100,500", value_delimiter = ',')]
    partition_nodes: Vec<String>,
    /// Late = slower than this many times the measured window's largest latency.
    #[arg(long, default_value_t = 2.0)]
    late_factor: f64,
}

fn main() {
    let args = Args::parse();
    let bad = |m: String| -> ! {
        eprintln!("gossip_sim: {m}");
        std::process::exit(2)
    };
    if args.latency_ms.len() != 2 {
        bad("--latency-ms: expected MIN,MAX in ms, e.g. 0.5,5".into());
    }
    let kill_mode = match args.kill_mode.as_str() {
        "crash" => KillMode::Crash,
        "exit" => KillMode::Exit,
        other => bad(format!("--kill-mode {other}: expected crash or exit")),
    };
    for (flag, v) in [
        ("--warmup", &args.warmup),
        ("--measure", &args.measure),
        ("--after", &args.after),
        ("--drain", &args.drain),
    ] {
        if v.as_ref()
            .is_some_and(|v| v.len() != 1 && v.len() != args.nodes.len())
        {
            bad(format!("{flag}: one duration, or one per --nodes value"));
        }
    }
    // The value for size i: given, or by size (large meshes cost ~85 s of CPU per simulated
    // second with flooding, so their windows are shorter).
    let pick = |v: &Option<Vec<Duration>>, i: usize, n: usize, small: u64, large: u64| match v {
        Some(v) => v[if v.len() == 1 { 0 } else { i }],
        None => Duration::from_millis(if n >= 1000 { large } else { small }),
    };
    let partition_nodes: Vec<usize> = args
        .partition_nodes
        .iter()
        .filter(|s| s.as_str() != "none")
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| bad(format!("--partition-nodes: '{s}' is not a number")))
        })
        .collect();
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut partitions = Vec::new();
    let mut jobs = Vec::new();
    println!(
        "gossip_sim: seed {}, degree {} ({}-{}), latency {}-{} ms + jitter {} ms, loss {}, \
         {} series at {:?} ({}), max hops {}, window {}, {} dashboard(s), kill {} % ({:?})",
        args.seed,
        args.degree,
        args.min_degree,
        args.max_degree,
        args.latency_ms[0],
        args.latency_ms[1],
        args.jitter_ms,
        args.loss,
        args.series,
        args.interval,
        if args.spread {
            "spread"
        } else if args.one_instant {
            "one instant"
        } else {
            "aligned"
        },
        args.max_hops,
        args.window,
        args.dashboards,
        args.kill * 100.0,
        kill_mode
    );
    for (i, &n) in args.nodes.iter().enumerate() {
        let mut cfg = MeshConfig::new(n);
        cfg.mean_degree = args.degree;
        cfg.min_degree = args.min_degree;
        cfg.max_degree = args.max_degree;
        cfg.latency = (ms(args.latency_ms[0]), ms(args.latency_ms[1]));
        cfg.jitter = ms(args.jitter_ms);
        cfg.loss = args.loss;
        cfg.seed = args.seed;
        cfg.series = args.series;
        cfg.interval = args.interval;
        cfg.aligned = !args.spread;
        cfg.one_instant = args.one_instant;
        cfg.max_hops = args.max_hops;
        cfg.window = args.window;
        cfg.dashboards = args.dashboards;
        cfg.warmup = pick(&args.warmup, i, n, 5000, 2000);
        cfg.measure = pick(&args.measure, i, n, 5000, 1000);
        cfg.after = pick(&args.after, i, n, 5000, 4000);
        cfg.drain = pick(&args.drain, i, n, 2000, 1000);
        cfg.kill_fraction = args.kill;
        cfg.kill_mode = kill_mode;
        cfg.partition = args.partition;
        cfg.late_factor = args.late_factor;
        if let Err(e) = cfg.validate() {
            bad(format!("N={n}: {e}"));
        }
        jobs.push((cfg.clone(), Fault::Kill));
        if partition_nodes.contains(&n) {
            jobs.push((cfg, Fault::Partition));
        }
    }
    // Every run on a thread of its own: each is single-threaded and deterministic, the
    // machine's cores share them.
    let results: Vec<(usize, Fault, Result<report::Report, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(cfg, fault)| {
                s.spawn(move || {
                    let t = Instant::now();
                    let r = meshmon_sim::mesh::run(cfg, *fault).map_err(|e| e.to_string());
                    eprintln!(
                        "N={}: {fault:?} run done in {:.1} s",
                        cfg.nodes,
                        t.elapsed().as_secs_f64()
                    );
                    (cfg.nodes, *fault, r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (0, Fault::Kill, Err("the run panicked".into())))
            })
            .collect()
    });
    for (n, fault, r) in results {
        match r {
            Ok(r) if fault == Fault::Kill => kills.push(r),
            Ok(r) => partitions.push(r),
            Err(e) => {
                eprintln!("gossip_sim: N={n} {fault:?} run: {e}");
                std::process::exit(1);
            }
        }
    }
    print!("{}", report::table(&kills, &partitions));
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}
