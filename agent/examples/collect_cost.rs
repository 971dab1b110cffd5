//! Prints what one `Collector::collect()` costs on this machine (median, p90 and max of 50
//! calls, 100 ms apart so caches are about as cold as between real intervals), then the series
//! of the last reading and the host info.
//!
//! `cargo run --release -p meshmon-agent --example collect_cost`

use meshmon_agent::collect::{CollectOptions, Collector};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut c = Collector::new(CollectOptions::default())?;
    std::thread::sleep(Duration::from_millis(250));
    let mut times = Vec::with_capacity(50);
    let mut last = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        last = c.collect();
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    times.sort();
    println!("| calls | series | median | p90 | max |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {} | {:?} | {:?} | {:?} |",
        times.len(),
        last.len(),
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[times.len() - 1],
    );
    println!();
    for (key, value) in &last {
        println!("{key} {value}");
    }
    println!("\n{:?}", c.host_info());
    Ok(())
}
