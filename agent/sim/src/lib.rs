//! A fleet simulator for meshmon: N simulated hosts (`sim-0000`, `sim-0001`, ...) that speak
//! the real mesh protocol (PROTOCOL.md) into one node, as if they sat behind a neighbour of
//! it. Each host has its own origin name, boot id and sequence numbers; it sends host info
//! and series tables as a real agent does (at start, every 30 s, every 30 sample frames, and
//! again on every new link), then a samples frame every interval, the hosts' frames spread
//! evenly over the interval. Frames are sealed with the mesh key, sent within the node's
//! credit window (dropped and counted beyond it: an agent would queue a window more), and
//! kept for a while so the hosts answer a dashboard's backfill requests. The fleet re-dials
//! when the node restarts.
//!
//! It is a library for in-process tests ([`Fleet::start`]) and the `fleet_sim` example for
//! benchmarks. The fleet depends on the protocol crate only; the gossip simulator ([`mesh`],
//! the `gossip_sim` example) runs the agent core's gossip machine (without its optional
//! features), never the dashboard.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshmon_sim::SimError> {
//! use meshmon_sim::{Fleet, FleetConfig, Pattern};
//! use std::time::Duration;
//! let mut cfg = FleetConfig::new("127.0.0.1:7000".parse().expect("addr"), 500);
//! cfg.pattern = Pattern::flap(Duration::from_secs(20));
//! let stop = tokio_util::sync::CancellationToken::new();
//! let fleet = Fleet::start(cfg, stop.clone())?;
//! fleet.wait_connected(Duration::from_secs(5)).await;
//! println!("{}", fleet.stats());
//! stop.cancel();
//! fleet.join().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: [`FleetConfig`], [`Pattern`] and their limits.
//! - `values`: the series of a host and how their values move.
//! - `host`: one simulated host's frames (sans-io), with its recent frames for backfill in
//!   `meshmon_proto::ring::OwnRing`, as a real agent keeps them.
//! - `link`: the link protocol as a node (hello, credits, heartbeats), sans-io.
//! - `run`: the fleet's task: turns, the connection, reconnects.
//! - [`mesh`]: the gossip simulator: N real gossip machines on a random graph in simulated
//!   time, with latency, loss, kills and partitions.
//! - [`stats`]: counters. [`error`]: [`SimError`].

pub mod config;
pub mod error;
mod host;
mod link;
pub mod mesh;
mod run;
pub mod stats;
mod values;

pub use config::{FleetConfig, Pattern};
pub use error::SimError;
pub use stats::FleetStats;

use meshmon_proto::{Key, Keyring};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Milliseconds since the Unix epoch.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts fleets.
pub struct Fleet;

impl Fleet {
    /// Validates `cfg` and starts the fleet on the current tokio runtime. It runs until
    /// `shutdown` (or [`FleetHandle::stop`]) is cancelled. Connection trouble is retried and
    /// counted, never returned.
    pub fn start(cfg: FleetConfig, shutdown: CancellationToken) -> Result<FleetHandle, SimError> {
        cfg.validate()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        let keyring = match &cfg.key {
            Some(k) => k.clone(),
            None => Keyring::new(vec![Key::NULL])
                .map_err(|e| SimError::Config(format!("null key: {e}")))?,
        };
        // Boot ids grow from one run to the next: microseconds since the epoch at start;
        // host i uses `link_boot + 1 + i`.
        let link_boot = wall_ms().saturating_mul(1000) + u64::from(rand::random::<u16>() % 1000);
        let shared = Arc::new(stats::Shared::default());
        let stop = shutdown.child_token();
        let names = cfg.host_names();
        let driver = run::Driver::new(&cfg, keyring, link_boot, shared.clone(), stop.clone());
        let task = rt.spawn(driver.run());
        Ok(FleetHandle {
            shared,
            names,
            stop,
            task,
        })
    }
}

/// A running fleet: its counters, its hosts' names, and a way to stop it.
#[derive(Debug)]
pub struct FleetHandle {
    shared: Arc<stats::Shared>,
    names: Vec<String>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl FleetHandle {
    /// The counters now.
    pub fn stats(&self) -> FleetStats {
        self.shared.snapshot()
    }

    /// The simulated hosts' names, in order.
    pub fn host_names(&self) -> &[String] {
        &self.names
    }

    /// Waits until a link is up (the hello completed), at most `timeout`; whether it is.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.stats().connected {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops this fleet (not the token it was started with).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops the fleet and waits for its task to end.
    pub async fn join(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
