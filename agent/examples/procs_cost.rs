//! What the process collector costs on this machine and what it adds on the wire.
//!
//! Every second for `SECONDS` (default 30; first argument), reads the core metrics and the
//! processes (`collect.top_processes = 10`), times `Procs::collect` (median, p90, max), and
//! encodes two sample streams exactly as an agent does (`SampleEncoder`, MessagePack
//! payloads): the core values alone, and the core values plus the processes. The difference of
//! their encoded bytes per second is what the process collector adds per host (before the frame
//! header and seal, which are the same with or without it: the values ride in the same frame).
//! Prints one table.
//!
//! `cargo run --release -p meshmon-agent --example procs_cost [SECONDS]`

use meshmon_agent::collect::procs::Procs;
use meshmon_agent::collect::{CollectOptions, Collector};
use meshmon_proto::samples::SampleEncoder;
use std::path::Path;
use std::time::{Duration, Instant};

fn bytes(enc: &mut SampleEncoder, values: &[(meshmon_proto::SeriesKey, f64)]) -> usize {
    enc.encode(values)
        .iter()
        .map(|p| p.encode().map_or(0, |b| b.len()))
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let mut core = Collector::new(CollectOptions::default())?;
    let mut procs = Procs::new(Path::new("/proc"), 10, &["sshd".to_owned()]);
    procs.collect(Instant::now())?;
    let (mut plain, mut with) = (SampleEncoder::new(), SampleEncoder::new());
    let (mut plain_b, mut with_b) = (0usize, 0usize);
    let mut times = Vec::new();
    let mut series = 0;
    let mut names = std::collections::BTreeSet::new();
    let mut tables = 0;
    let mut last_set: Vec<String> = Vec::new();
    for _ in 0..secs {
        std::thread::sleep(Duration::from_secs(1));
        let mut values = core.collect();
        plain_b += bytes(&mut plain, &values);
        let t = Instant::now();
        let p = procs.collect(Instant::now())?;
        times.push(t.elapsed());
        series = p.len();
        let mut set: Vec<String> = p.iter().map(|(k, _)| k.to_string()).collect();
        set.sort();
        if set != last_set {
            tables += 1;
            last_set = set;
        }
        names.extend(
            p.iter()
                .filter_map(|(k, _)| k.label("name").map(str::to_owned)),
        );
        values.extend(p);
        with_b += bytes(&mut with, &values);
    }
    times.sort();
    let n = times.len().max(1);
    let pids = std::fs::read_dir("/proc")?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    println!(
        "| processes | readings | series per reading | distinct names seen | set changes | collect median | p90 | max | core B/s | core+procs B/s | added B/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {pids} | {n} | {series} | {} | {tables} | {:?} | {:?} | {:?} | {} | {} | {} |",
        names.len(),
        times[n / 2],
        times[n * 9 / 10],
        times[n - 1],
        plain_b as u64 / secs.max(1),
        with_b as u64 / secs.max(1),
        (with_b.saturating_sub(plain_b)) as u64 / secs.max(1),
    );
    Ok(())
}
