//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use meshmon_dashboard::{Clock, Ingest, Sample, StoreConfig, WriterHandle, start_writer};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::path::Path;
use std::time::Duration;

/// 2023-11-14T22:10:00Z, a window start.
pub const T0: i64 = 1_700_000_400_000;

pub fn cpu() -> SeriesKey {
    SeriesKey::new(Metric::CpuUsagePct)
}

pub fn disk(mount: &str) -> SeriesKey {
    SeriesKey::labelled(Metric::DiskUsedPct, mount)
}

pub fn sample(host: &str, key: &SeriesKey, ts: i64, v: f64) -> Sample {
    Sample {
        host: host.into(),
        series: key.clone(),
        ts_ms: ts,
        value: v,
    }
}

/// A writer on `path` with a manual clock at `now`.
pub fn writer(path: &Path, now: i64) -> (WriterHandle, Clock) {
    let clock = Clock::manual(now);
    let mut cfg = StoreConfig::new(path);
    cfg.clock = clock.clone();
    cfg.flush_every = Duration::from_secs(30);
    (start_writer(cfg).expect("writer starts"), clock)
}

/// Sends samples, failing the test if the queue refuses them.
pub fn send(w: &WriterHandle, samples: Vec<Sample>) {
    for part in samples.chunks(500) {
        let mut tries = 0;
        while !w.try_send(Ingest::Samples(part.to_vec())) {
            tries += 1;
            assert!(tries < 1000, "queue stays full");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("MESHMON_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
