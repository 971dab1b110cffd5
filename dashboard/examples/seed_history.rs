//! Writes days of history for simulated hosts into a store file through the real store writer
//! (the same path a dashboard node's frames take after decoding), so that a node started on
//! that file afterwards has long-range data to chart. Used by `scripts/bench_web.py` for the
//! web dashboard's 7-day chart figure; the series are those of a `fleet_sim` host
//! (`cpu.usage_pct`, `mem.used_pct`, `disk.used_pct{mount="/"}`), one sample a second, ending
//! now, with the 1-minute and 1-hour rollups made as a node makes them.
//!
//! ```sh
//! cargo run --release -p meshmon-dashboard --example seed_history -- \
//!     --db /tmp/store.db --hosts sim-0000,sim-0001 --days 7
//! ```

use meshmon_dashboard::{Clock, Ingest, Sample, StoreConfig, start_writer};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(db), Some(hosts)) = (arg(&args, "--db"), arg(&args, "--hosts")) else {
        eprintln!("usage: seed_history --db PATH --hosts NAME[,NAME...] [--days N]");
        std::process::exit(2);
    };
    let days: i64 = match arg(&args, "--days").map(|d| d.parse()) {
        None => 7,
        Some(Ok(d)) if d > 0 => d,
        Some(_) => {
            eprintln!("seed_history: --days: expected a positive whole number");
            std::process::exit(2);
        }
    };
    let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
    let keys = [
        SeriesKey::new(Metric::CpuUsagePct),
        SeriesKey::new(Metric::MemUsedPct),
        SeriesKey::labelled(Metric::DiskUsedPct, "/"),
    ];
    let now = meshmon_dashboard::time::now_ms();
    // Just inside the default raw retention (7 d), so nothing is trimmed at the first maintain.
    let secs = days * 86_400 - 600;
    let start_ms = now - secs * 1000;
    let clock = Clock::manual(start_ms);
    let mut cfg = StoreConfig::new(&db);
    cfg.clock = clock.clone();
    let w = match start_writer(cfg) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("seed_history: {db}: {e}");
            std::process::exit(1);
        }
    };
    let t = Instant::now();
    let mut batch = Vec::with_capacity(3600 * keys.len() * hosts.len());
    let mut written = 0u64;
    for sec in 0..secs {
        let ts = start_ms + sec * 1000;
        // A daily wave plus a little per-host offset: something to see on a 7-day chart.
        let day = (sec as f64 / 86_400.0 * std::f64::consts::TAU).sin();
        for (h, host) in hosts.iter().enumerate() {
            let wobble = ((sec * 7 + h as i64 * 13) % 17) as f64 / 4.0;
            let vals = [
                (35.0 + 25.0 * day + wobble).clamp(0.0, 100.0),
                50.0 + 10.0 * day + h as f64 % 20.0,
                40.0 + 20.0 * sec as f64 / secs as f64,
            ];
            for (k, v) in keys.iter().zip(vals) {
                batch.push(Sample {
                    host: host.clone(),
                    series: k.clone(),
                    ts_ms: ts,
                    value: (v * 10.0).round() / 10.0,
                });
            }
        }
        if sec % 3600 == 3599 || sec == secs - 1 {
            clock.set(ts);
            written += batch.len() as u64;
            let send = std::mem::take(&mut batch);
            while !w.try_send(Ingest::Samples(send.clone())) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if sec % 86_400 == 86_399
                && let Err(e) = w.maintain()
            {
                eprintln!("seed_history: maintain: {e}");
                std::process::exit(1);
            }
        }
    }
    clock.set(now);
    if let Err(e) = w.maintain().and_then(|()| w.flush()) {
        eprintln!("seed_history: {e}");
        std::process::exit(1);
    }
    let health = w.shutdown();
    println!(
        "seed_history: {written} samples ({} accepted) for {} hosts over {days} days in {:.1} s",
        health.accepted,
        hosts.len(),
        t.elapsed().as_secs_f64()
    );
}
