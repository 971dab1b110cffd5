//! The fresh-query benchmark: what asking a running node for its head costs. A writer holds
//! 2,000 hosts x 50 series (100,000 series) with four minutes unflushed on top of a written
//! minute, and serves its head on `<store>.sock`; each query of `meshmon query` runs through
//! the library (`cli::Query`) with the head, and again reading the file alone. Prints one table:
//! the median and the 90th percentile of `--repeat` runs (default 15) and the head's reply
//! size. Run it in release: `scripts/bench_head.sh`. Times on a shared 2-core VM are noisy.

#[path = "bench_store/synth.rs"]
mod synth;

use meshmon_dashboard::cli::{Format, Query};
use meshmon_dashboard::head::{HEAD_VERSION, HeadRequest, socket_path};
use meshmon_dashboard::{Clock, Ingest, Sample, StoreConfig, WriterHandle, start_writer};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};
use synth::Host;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const BASE: i64 = 1_767_225_600_000; // a window start

fn feed(
    w: &WriterHandle,
    clock: &Clock,
    gens: &mut [Host],
    names: &[String],
    secs: std::ops::Range<i64>,
) {
    let keys = synth::keys();
    let mut vals = Vec::with_capacity(50);
    for sec in secs {
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
}

/// Serves the head of `w` until `stop`.
fn serve(db: &Path, w: &WriterHandle, stop: CancellationToken) -> std::thread::JoinHandle<()> {
    let (heads, path) = (w.heads(), socket_path(db));
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let tracker = TaskTracker::new();
            let _ = tx.send(
                meshmon_dashboard::head::serve::start(path, heads, &tracker, &stop).is_some(),
            );
            stop.cancelled().await;
            tracker.close();
            tracker.wait().await;
        });
    });
    assert!(rx.recv().expect("endpoint"), "endpoint serves");
    t
}

/// Bytes of the framed reply to `req`.
fn reply_bytes(db: &Path, req: &HeadRequest) -> usize {
    let body = rmp_serde::to_vec_named(req).expect("encode");
    let mut s = std::os::unix::net::UnixStream::connect(socket_path(db)).expect("connect");
    s.write_all(&(body.len() as u32).to_be_bytes())
        .expect("write");
    s.write_all(&body).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    out.len()
}

fn times(repeat: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut t: Vec<f64> = (0..repeat)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[(t.len() * 9 / 10).min(t.len() - 1)])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(1);
    let hosts: usize = args
        .iter()
        .position(|a| a == "--hosts")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
        .max(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("head.db");
    let clock = Clock::manual(BASE);
    let mut cfg = StoreConfig::new(&db);
    cfg.clock = clock.clone();
    cfg.flush_every = Duration::from_secs(86_400);
    let w = start_writer(cfg).expect("writer");
    let names: Vec<String> = (0..hosts).map(|h| format!("host{h:04}")).collect();
    let mut gens: Vec<Host> = (0..hosts).map(|h| Host::new(h as u64 + 1)).collect();
    eprintln!("feeding {hosts} hosts x 50 series: 60 s written, 240 s unflushed ...");
    feed(&w, &clock, &mut gens, &names, 0..60);
    w.flush().expect("flush");
    feed(&w, &clock, &mut gens, &names, 60..300);
    let now = clock.now_ms();
    let stop = CancellationToken::new();
    let endpoint = serve(&db, &w, stop.clone());
    let q = Query {
        db: &db,
        format: Format::Csv,
        now_ms: now,
    };
    let req = |host: Option<&str>, names: Vec<String>| HeadRequest {
        version: HEAD_VERSION,
        host: host.map(str::to_owned),
        keys: host.is_some(),
        names,
        since_ms: now - 600_000,
        until_ms: now,
        ..HeadRequest::default()
    };
    type Run<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Run<'_>, Option<HeadRequest>)> = vec![
        (
            "series (1 series, 10 min)",
            Box::new(|| {
                q.series("host0001", "cpu.usage_pct", Some("10m"), None, None)
                    .expect("series");
            }),
            Some(req(Some("host0001"), vec!["cpu.usage_pct".into()])),
        ),
        (
            "stats (one host, 50 series, 10 min)",
            Box::new(|| {
                q.stats("host0001", &[], Some("10m"), None).expect("stats");
            }),
            Some(req(Some("host0001"), Vec::new())),
        ),
        (
            "hosts (all)",
            Box::new(|| {
                q.hosts().expect("hosts");
            }),
            Some(HeadRequest {
                version: HEAD_VERSION,
                hosts: true,
                no_series: true,
                ..HeadRequest::default()
            }),
        ),
        (
            "checks (scans every series)",
            Box::new(|| {
                q.checks(Some("10m"), None).expect("checks");
            }),
            Some(req(None, vec!["check.up".into()])),
        ),
    ];
    let live: Vec<((f64, f64), usize)> = cases
        .iter()
        .map(|(_, f, r)| {
            (
                times(repeat, f),
                r.as_ref().map_or(0, |r| reply_bytes(&db, r)),
            )
        })
        .collect();
    stop.cancel();
    let _ = endpoint.join();
    let alone: Vec<(f64, f64)> = cases.iter().map(|(_, f, _)| times(repeat, f)).collect();
    println!("meshmon fresh-query benchmark: {hosts} hosts x 50 series, 240 s unflushed");
    println!("(median and p90 of {repeat} runs, ms; a shared 2-core VM is noisy)");
    println!(
        "{:<38} {:>12} {:>12} {:>14} {:>12}",
        "query", "with head", "p90", "head reply B", "file alone"
    );
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let ((med, p90), bytes) = live[i];
        println!(
            "{name:<38} {med:>12.2} {p90:>12.2} {bytes:>14} {:>12.2}",
            alone[i].0
        );
    }
    w.shutdown();
}
