//! Wire bytes per second the issue-16 core collectors add: runs the real collector every 1 s
//! on this machine for N seconds (default 60) and feeds each reading to several real sample
//! encoders: without the new series, with each group alone, and with all of them. Prints the
//! encoded payload bytes per second of each (MessagePack, what is sealed into frames: the
//! frame header, seal and ZMTP framing are the same per frame whichever series it carries).
//!
//! `cargo run -p meshmon-agent --example collect_wire -- 60`

use meshmon_agent::collect::{CollectOptions, Collector, Sample};
use meshmon_proto::samples::SampleEncoder;
use std::time::{Duration, Instant};

/// Whether a series name is in a set.
type Filter = fn(&str) -> bool;

/// The groups of new series, by name.
const GROUPS: [(&str, Filter); 3] = [
    ("disk I/O (diskio.*)", |n| n.starts_with("diskio.")),
    ("net errors and drops", |n| {
        n == "net.errors"
            || n == "net.drops"
            || n.ends_with("_errors_per_s")
            || n.ends_with("_drops_per_s")
    }),
    ("PSI and OOM kills", |n| {
        n.starts_with("psi.") || n == "mem.oom_kills"
    }),
];

fn is_new(name: &str) -> bool {
    GROUPS.iter().any(|(_, f)| f(name))
}

/// One encoder fed the series `keep` selects, and what it produced.
struct Variant {
    name: String,
    keep: Box<dyn Fn(&str) -> bool>,
    enc: SampleEncoder,
    bytes: usize,
    series: usize,
}

impl Variant {
    fn new(name: String, keep: impl Fn(&str) -> bool + 'static) -> Variant {
        Variant {
            name,
            keep: Box::new(keep),
            enc: SampleEncoder::new(),
            bytes: 0,
            series: 0,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let mut c = Collector::new(CollectOptions::default())?;
    // Variants: base, base + each group, everything.
    let mut variants = vec![Variant::new("without the new series".into(), |n| {
        !is_new(n)
    })];
    for (name, f) in GROUPS {
        variants.push(Variant::new(format!("+ {name}"), move |n| {
            !is_new(n) || f(n)
        }));
    }
    variants.push(Variant::new("everything".into(), |_| true));
    let start = Instant::now();
    // The collector's first reading (in `new`) primes the rates; the first one here is 1 s on.
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..secs {
        let values = c.collect();
        for var in &mut variants {
            let v: Vec<Sample> = values
                .iter()
                .filter(|(k, _)| (var.keep)(&k.name))
                .cloned()
                .collect();
            var.series = v.len();
            for p in var.enc.encode(&v) {
                var.bytes += p.encode()?.len();
            }
        }
        let next = start + Duration::from_secs(i + 2);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let base = variants[0].bytes as f64 / secs as f64;
    println!(
        "{secs} readings at 1 s on this host; encoded sample payload bytes (tables, key frames and deltas)"
    );
    println!("| series set | series | bytes/s | added bytes/s |");
    println!("|---|---|---|---|");
    for v in &variants {
        let bps = v.bytes as f64 / secs as f64;
        println!(
            "| {} | {} | {bps:.0} | {:+.0} |",
            v.name,
            v.series,
            bps - base
        );
    }
    Ok(())
}
