//! The store benchmark: prints a table of the four figures of the store issue.
//!
//! 1. ingest: samples/s one writer sustains for 2,000 hosts x 50 series at 1 Hz (150 s of
//!    data across a window boundary, so flushes and sealing are included);
//! 2. bytes per raw sample: file size after 1 h of 100 synthetic hosts (50 series each);
//! 3. `stats` over 7 days of 1 s data of one series (604,800 samples);
//! 4. a 7-day `series` at 1,000 points (`step` = 605 s).
//!
//! Each figure is the median of `--repeat` runs (default 3). Run it in release:
//! `scripts/bench_store.sh`. Times on a shared 2-core VM are noisy.

mod synth;

use meshmon_dashboard::{Clock, Ingest, Reader, Sample, StoreConfig, WriterHandle, start_writer};
use meshmon_proto::{Selector, SeriesKey};
use std::path::Path;
use std::time::{Duration, Instant};
use synth::Host;

const BASE: i64 = 1_767_225_600_000 - 60_000; // one minute before a window boundary

fn writer(db: &Path, now: i64) -> (WriterHandle, Clock) {
    let clock = Clock::manual(now);
    let mut cfg = StoreConfig::new(db);
    cfg.clock = clock.clone();
    (start_writer(cfg).expect("writer"), clock)
}

/// Feeds `secs` seconds of `hosts` synthetic hosts; returns (samples, seconds taken incl.
/// the final flush, samples dropped).
fn feed(db: &Path, hosts: usize, secs: i64) -> (u64, f64, u64) {
    let (w, clock) = writer(db, BASE);
    let keys = synth::keys();
    let names: Vec<String> = (0..hosts).map(|h| format!("host{h:04}")).collect();
    let mut gens: Vec<Host> = (0..hosts).map(|h| Host::new(h as u64 + 1)).collect();
    let mut vals = Vec::with_capacity(50);
    let start = Instant::now();
    for sec in 0..secs {
        clock.set(BASE + sec * 1000 + 999);
        for (h, g) in gens.iter_mut().enumerate() {
            let ts = g.ts(BASE, sec);
            g.values(&mut vals);
            let batch: Vec<Sample> = keys
                .iter()
                .zip(&vals)
                .map(|(k, &v)| Sample {
                    host: names[h].clone(),
                    series: k.clone(),
                    ts_ms: ts,
                    value: v,
                })
                .collect();
            while !w.try_send(Ingest::Samples(batch.clone())) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    w.flush().expect("flush");
    let took = start.elapsed().as_secs_f64();
    let h = w.shutdown();
    (h.accepted, took, h.dropped_queue)
}

fn file_bytes(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    let _: (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    std::fs::metadata(db).map_or(0, |m| m.len()) + wal
}

fn blob_bytes(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(
        "SELECT (SELECT coalesce(sum(length(data)), 0) FROM chunks) + \
         (SELECT coalesce(sum(length(data)), 0) FROM open_chunks)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("sum") as u64
}

/// Writes 7 days of one 1 s series and rolls it up; returns the reader's `now`.
fn seven_days(db: &Path) -> i64 {
    let (w, clock) = writer(db, BASE);
    let key = SeriesKey::new(meshmon_proto::metrics::Metric::CpuUsagePct);
    let mut g = Host::new(7);
    let mut vals = Vec::new();
    let mut batch = Vec::with_capacity(3600);
    for sec in 0..7 * 86_400 {
        let ts = g.ts(BASE, sec);
        g.values(&mut vals);
        batch.push(Sample {
            host: "h".into(),
            series: key.clone(),
            ts_ms: ts,
            value: vals[0],
        });
        if batch.len() == 3600 {
            clock.set(ts);
            while !w.try_send(Ingest::Samples(batch.clone())) {
                std::thread::sleep(Duration::from_millis(1));
            }
            batch.clear();
            if sec % 86_400 == 86_399 {
                w.maintain().expect("maintain");
            }
        }
    }
    let now = BASE + 7 * 86_400_000;
    clock.set(now);
    w.maintain().expect("maintain");
    w.shutdown();
    now
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let quick = args.iter().any(|a| a == "--quick");
    let dir = tempfile::tempdir().expect("tempdir");

    let (ingest_hosts, ingest_secs) = if quick { (2000, 40) } else { (2000, 150) };
    let mut rates = Vec::new();
    for i in 0..repeat {
        let db = dir.path().join(format!("ingest{i}.db"));
        let (n, took, dropped) = feed(&db, ingest_hosts, ingest_secs);
        let _ = dropped; // the bench retries when the queue is full
        rates.push(n as f64 / took);
        eprintln!("ingest run {i}: {n} samples in {took:.1} s");
    }

    let mut per_sample = Vec::new();
    let mut blob_per_sample = Vec::new();
    for i in 0..repeat.min(2) {
        let db = dir.path().join(format!("size{i}.db"));
        let (n, took, _) = feed(&db, 100, 3600);
        per_sample.push(file_bytes(&db) as f64 / n as f64);
        blob_per_sample.push(blob_bytes(&db) as f64 / n as f64);
        eprintln!(
            "size run {i}: {n} samples in {took:.1} s, {} bytes",
            file_bytes(&db)
        );
    }

    let db = dir.path().join("week.db");
    let t = Instant::now();
    let now = seven_days(&db);
    eprintln!(
        "7 days written and rolled up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let r = Reader::open(&db).expect("reader");
    let sel = Selector::parse("cpu.usage_pct").expect("selector");
    let since = now - 7 * 86_400_000;
    let mut stats_ms = Vec::new();
    let mut series_ms = Vec::new();
    let mut count = 0;
    let mut points = 0;
    for _ in 0..repeat.max(5) {
        let t = Instant::now();
        let st = r
            .stats("h", std::slice::from_ref(&sel), since, now)
            .expect("stats");
        stats_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        count = st[0].1.map_or(0, |s| s.count);
        let t = Instant::now();
        let s = r
            .series("h", &sel, since, now, Some(Duration::from_millis(604_800)))
            .expect("series");
        series_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        points = s[0].points.len();
    }

    println!("meshmon store benchmark (median of {repeat} runs; a shared 2-core VM is noisy)");
    println!("{:<58} {:>14} {:>12}", "figure", "measured", "target");
    println!(
        "{:<58} {:>14} {:>12}",
        format!("ingest, {ingest_hosts} hosts x 50 series, samples/s"),
        format!("{:.0}", median(rates)),
        ">= 100000"
    );
    println!(
        "{:<58} {:>14} {:>12}",
        "bytes per raw sample on disk, 1 h of 100 hosts x 50",
        format!("{:.2}", median(per_sample)),
        "<= 3"
    );
    println!(
        "{:<58} {:>14} {:>12}",
        "  of which chunk payload (bytes per sample)",
        format!("{:.2}", median(blob_per_sample)),
        ""
    );
    println!(
        "{:<58} {:>14} {:>12}",
        format!("stats over 7 days of 1 s data ({count} samples), ms"),
        format!("{:.1}", median(stats_ms)),
        "<= 100"
    );
    println!(
        "{:<58} {:>14} {:>12}",
        format!("7-day series at {points} points, ms"),
        format!("{:.1}", median(series_ms)),
        "<= 50"
    );
}
