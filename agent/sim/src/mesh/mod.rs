//! The gossip simulator: N nodes running the real gossip state machine
//! ([`meshmon_agent_core::gossip::Gossip`]) on a random connected graph, with a fake clock,
//! per-link latency, loss, partitions and node kills, and every frame sealed and opened with
//! the real keyring. Deterministic for a seed: one binary heap of events keyed by (time,
//! sequence), one seeded random generator.
//!
//! The simulator knows nothing of how the machine forwards: it delivers every
//! `Action::Send` after the link's latency (in order on each link, as TCP does), feeds `Tick`
//! every 100 ms (the agent's tick) and a node's own payloads as the collector and mesh task
//! do, and watches what comes out. A frame counts as delivered at a node when the node
//! accepts it (its `accepted` counter grows on a live gossip frame); exactly-once is the
//! machine's own guarantee.
//!
//! Each node originates what a real agent does: host info at start and every 30 s, and every
//! interval the samples of its series through the proto crate's `SampleEncoder` (series
//! table at start and every 30 frames, a key frame every 10), with the mesh metrics the mesh
//! task appends. Links are dialled by one end, re-dialled with the link task's backoff when
//! the machine drops them, and a dial into a partition or a dead host waits for the SYN as TCP
//! does (retry at 1 s, give up at 3 s).
//!
//! ```no_run
//! use meshmon_sim::mesh::{Fault, MeshConfig, report, run};
//! let cfg = MeshConfig::new(100);
//! let r = run(&cfg, Fault::Kill).expect("runs");
//! println!("{}", report::table(&[r], &[]));
//! ```
//!
//! # Layout
//! - [`graph`]: random connected graphs, victims, halves, diameters.
//! - `engine`: the event loop: nodes, links, the heap.
//! - [`measure`]: latency histogram, per-frame records, spreads.
//! - [`report`]: the figures of a run and the table the example prints.

mod engine;
pub mod graph;
pub mod measure;
pub mod report;

pub use report::{Figures, PartitionFigures, Report};

use crate::error::SimError;
use std::time::Duration;

/// How a killed node dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    /// The host vanishes (power loss): its neighbours hear nothing and find out by silence.
    Crash,
    /// The process exits: the kernel closes its connections, neighbours see them close.
    Exit,
}

/// What happens after the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill_fraction` of the nodes (never a dashboard) die at once; the survivors stay
    /// connected among themselves (victims are drawn until they do).
    Kill,
    /// The graph is cut into two connected halves for `partition`, then healed.
    Partition,
}

/// How late after the interval's boundary an aligned node's frame leaves, at most (uniform):
/// the time its collectors take.
pub const COLLECT_JITTER: Duration = Duration::from_millis(2);

/// With aligned nodes, the measured window starts and the fault strikes this long after an
/// interval boundary, once that boundary's frames have spread: the next ones are the first to
/// meet the broken trees, the worst phase for healing (a fault right on a boundary heals up to
/// an interval sooner, since that boundary's frames already find the trees broken).
pub const FAULT_PHASE: Duration = Duration::from_millis(100);

/// One simulation. [`MeshConfig::new`] gives the defaults; every field is public.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub nodes: usize,
    /// Mean degree, and the bounds of every node's degree.
    pub mean_degree: f64,
    pub min_degree: usize,
    pub max_degree: usize,
    /// Every link's one-way latency is drawn uniformly from this range once...
    pub latency: (Duration, Duration),
    /// ...and every message adds an exponential jitter of this mean.
    pub jitter: Duration,
    /// Probability that one message is lost on a link.
    pub loss: f64,
    pub seed: u64,
    /// Sample interval of every node.
    pub interval: Duration,
    /// Every node samples at its slot on the wall clock, as agents do
    /// (`meshmon_agent_core::node::collect_offset_ms`: one instant up to 100 hosts, up to
    /// ten slots for larger meshes), each up to [`COLLECT_JITTER`] late (the collection's own
    /// time); false: every node at its own phase, spread over the interval.
    pub aligned: bool,
    /// With `aligned`: every node on the one instant, whatever the mesh's size (a stress:
    /// agents spread meshes above 100 hosts over up to ten slots).
    pub one_instant: bool,
    /// Series per node (the first ones are cpu, memory, disk, load, network; then per-core).
    pub series: usize,
    pub max_hops: u8,
    /// The credit window every node announces (frames in flight per link).
    pub window: u32,
    /// Nodes 0.. are dashboards: they decode everything and ask for missing frames.
    pub dashboards: usize,
    /// Before the measured window: nodes start within the first second, links come up.
    pub warmup: Duration,
    /// The measured window (rates, redundancy, latency, state).
    pub measure: Duration,
    pub kill_fraction: f64,
    pub kill_mode: KillMode,
    pub partition: Duration,
    /// How long the run goes on after the kill or the heal.
    pub after: Duration,
    /// Frames originated in the last `drain` of the run are not judged (still in flight).
    pub drain: Duration,
    /// A delivery after the fault is late when it took longer than this many times the
    /// measured window's largest latency.
    pub late_factor: f64,
}

impl MeshConfig {
    /// `nodes` nodes, mean degree 5 (3 to 8), 0.5-5 ms links with 0.2 ms jitter, no loss,
    /// 1 s interval, 30 series, 8 hops, one dashboard; 5 s warm-up, 5 s measured, 10 % killed
    /// by crash, 30 s partition, 5 s after the fault, 2 s drain.
    pub fn new(nodes: usize) -> MeshConfig {
        MeshConfig {
            nodes,
            mean_degree: 5.0,
            min_degree: 3,
            max_degree: 8,
            latency: (Duration::from_micros(500), Duration::from_millis(5)),
            jitter: Duration::from_micros(200),
            loss: 0.0,
            seed: 1,
            interval: Duration::from_secs(1),
            aligned: true,
            one_instant: false,
            series: 30,
            max_hops: 32,
            window: 1024,
            dashboards: 1,
            warmup: Duration::from_secs(5),
            measure: Duration::from_secs(5),
            kill_fraction: 0.1,
            kill_mode: KillMode::Crash,
            partition: Duration::from_secs(30),
            after: Duration::from_secs(5),
            drain: Duration::from_secs(2),
            late_factor: 2.0,
        }
    }

    /// What is out of range, as a message naming the field.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        if self.nodes < 10 {
            return bad(format!("nodes: {} (expected at least 10)", self.nodes));
        }
        if self.min_degree == 0 || self.min_degree > self.max_degree {
            return bad(format!(
                "degree bounds: {}..{} (expected 1 <= min <= max)",
                self.min_degree, self.max_degree
            ));
        }
        if self.max_degree >= self.nodes {
            return bad(format!(
                "max degree {} (expected below the node count {})",
                self.max_degree, self.nodes
            ));
        }
        let (lo, hi) = (self.min_degree as f64, self.max_degree as f64);
        if !(lo..=hi).contains(&self.mean_degree) {
            return bad(format!(
                "mean degree {} (expected {lo} to {hi})",
                self.mean_degree
            ));
        }
        if self.latency.0 > self.latency.1 || self.latency.1 > Duration::from_secs(10) {
            return bad(format!(
                "latency {:?}..{:?} (expected min <= max <= 10 s)",
                self.latency.0, self.latency.1
            ));
        }
        if !(0.0..0.5).contains(&self.loss) {
            return bad(format!("loss {} (expected 0 to 0.5)", self.loss));
        }
        if self.interval < Duration::from_millis(100) {
            return bad(format!(
                "interval {:?} (expected at least 100ms)",
                self.interval
            ));
        }
        if !(crate::config::MIN_SERIES..=crate::config::MAX_SERIES).contains(&self.series) {
            return bad(format!(
                "series {} (expected {} to {})",
                self.series,
                crate::config::MIN_SERIES,
                crate::config::MAX_SERIES
            ));
        }
        if self.window == 0 {
            return bad("window: 0 (expected at least 1)".into());
        }
        if self.max_hops == 0 {
            return bad("max_hops: 0 (expected at least 1)".into());
        }
        if self.dashboards >= self.nodes / 2 {
            return bad(format!(
                "dashboards {} (expected fewer than half the nodes)",
                self.dashboards
            ));
        }
        if self.measure.is_zero() || self.warmup < Duration::from_secs(2) {
            return bad("warmup at least 2 s and measure above 0 expected".into());
        }
        if !(0.0..0.5).contains(&self.kill_fraction) {
            return bad(format!(
                "kill fraction {} (expected 0 to 0.5)",
                self.kill_fraction
            ));
        }
        if self.after <= self.drain {
            return bad(format!(
                "after {:?} (expected longer than drain {:?})",
                self.after, self.drain
            ));
        }
        if self.late_factor < 1.0 {
            return bad(format!(
                "late factor {} (expected at least 1)",
                self.late_factor
            ));
        }
        Ok(())
    }
}

/// Runs one simulation of `cfg` with `fault` after the measured window. The gossip
/// machines' maps get one fixed hash seed, so a seed of the graph gives one run.
pub fn run(cfg: &MeshConfig, fault: Fault) -> Result<Report, SimError> {
    cfg.validate()?;
    meshmon_agent_core::gossip::hashing::use_fixed_hashing();
    engine::Sim::new(cfg, fault)?.run()
}
