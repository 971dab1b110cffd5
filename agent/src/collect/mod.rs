//! Host metric collectors (placeholder until the core collectors land).

use meshmon_proto::SeriesKey;
use meshmon_proto::payload::HostInfo;
use std::time::Duration;

/// Collector options.
pub struct CollectOptions {
    pub interval: Duration,
}

/// Collector errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CollectError(String);

/// Collects core metrics.
pub struct Collector;

impl Collector {
    pub fn new(_opts: CollectOptions) -> Result<Collector, CollectError> {
        Ok(Collector)
    }
    pub fn collect(&mut self) -> Vec<(SeriesKey, f64)> {
        Vec::new()
    }
    pub fn host_info(&self) -> HostInfo {
        HostInfo::default()
    }
}
