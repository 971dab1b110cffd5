//! Host metric collectors: one [`Collector`] that, called once per `collect.interval`, reads the
//! core host metrics (CPU, memory, disks, network, uptime) and returns them as series keyed by
//! the canonical names of [`Metric`], plus the static [`HostInfo`] of the machine.
//!
//! Sources are the kernel's own files (`/proc/stat`, `/proc/meminfo`, `/proc/loadavg`,
//! `/proc/net/dev`, `/proc/self/mountinfo`, `/proc/uptime`, `/proc/diskstats`,
//! `/proc/pressure/*`, `/proc/vmstat`) and `statvfs`, so values agree with
//! `free`, `df` and `df -i`; sysinfo is used only for host info strings and temperature sensors.
//! Each read is one small file: nothing walks processes.
//!
//! Not here: scheduling (the caller calls [`Collector::collect`] on a blocking thread every
//! interval), sending or storing samples, and the later collectors (GPU, Docker, SMART, systemd,
//! textfile, HTTP checks). `mesh.*` metrics come from the mesh layer.
//!
//! # Layout
//! - `cpu`: usage (total and per core) from `/proc/stat`, load, frequency, temperatures.
//! - `mem`: memory and swap from `/proc/meminfo`.
//! - `disk`: real filesystems from `/proc/self/mountinfo`, sizes and inodes from `statvfs`.
//! - `net`: per-interface byte rates, errors and drops from `/proc/net/dev`.
//! - `diskio`: block device activity from `/proc/diskstats` (`collect.disk_io`).
//! - `pressure`: PSI from `/proc/pressure/*` and OOM kills from `/proc/vmstat`.
//! - `amdgpu`: AMD GPUs from sysfs, a thread of its own (no NVML, no `gpu` feature needed).
//! - `host`: uptime, boot time and [`HostInfo`].
//! - `textfile`, `systemd`: optional collectors on their own threads (see [`start_optional`]).
//! - `containers`: per-container metrics (cgroups + engine API), optional, own thread.
//! - `gpu`, `docker`, `smart` (+ `smartctl`): optional collectors, each on its own thread,
//!   publishing into [`Extras`] (started by [`start_optional`]).
//! - `procs`: processes grouped by name (top N by CPU and memory, watched counts), on its own
//!   thread, publishing into [`Extras`].

pub mod amdgpu;
pub mod containers;
mod cpu;
mod disk;
mod diskio;
pub mod docker;
pub mod extra;
#[cfg(feature = "gpu")]
pub mod gpu;
mod host;
mod mem;
mod net;
mod pressure;
pub mod procs;
pub mod smart;
mod smartctl;
pub mod systemd;
pub mod textfile;

pub use extra::{Extras, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use meshmon_proto::payload::HostInfo;
use std::collections::HashSet;
use std::io::{self, Read};
use std::time::Duration;
use tracing::{info, warn};

/// The shortest interval accepted: rates over shorter spans are mostly clock-tick noise
/// (`/proc/stat` counts in 10 ms ticks).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// How the agent runs the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectOptions {
    /// How often [`Collector::collect`] is called. Rates are computed over the time actually
    /// elapsed between two calls; this is the expected spacing, checked against [`MIN_INTERVAL`].
    pub interval: Duration,
    /// Block device activity from `/proc/diskstats` (`collect.disk_io`).
    pub disk_io: bool,
    /// Partitions too (`collect.disk_io_partitions`).
    pub disk_io_partitions: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            interval: Duration::from_secs(1),
            disk_io: true,
            disk_io_partitions: false,
        }
    }
}

/// What can go wrong while collecting. Only [`CollectError::IntervalTooShort`] is returned to
/// the caller (by [`Collector::new`]); the others are logged by [`Collector::collect`], which
/// then goes on without the failing source.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The configured interval is below [`MIN_INTERVAL`]: the caller should refuse the config.
    #[error("interval {0:?} is too short (the minimum is {MIN_INTERVAL:?})")]
    IntervalTooShort(Duration),
    /// A kernel file could not be read; the metrics that come from it are missing this time.
    #[error("cannot read '{path}': {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A kernel file did not have the expected layout; its metrics are missing this time.
    #[error("unexpected content in '{path}': {what}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        what: String,
    },
    /// `statvfs` failed on a mount point; that mount is left out this time.
    #[error("statvfs '{mount}' failed: {source}")]
    Statvfs {
        /// The mount point.
        mount: String,
        /// The error number.
        source: rustix::io::Errno,
    },
}

/// One collected value.
pub type Sample = (SeriesKey, f64);

/// Reads the core host metrics. Keeps the previous counters needed for rates.
pub struct Collector {
    cpu: cpu::Cpu,
    disks: disk::Disks,
    net: net::Net,
    diskio: Option<diskio::DiskIo>,
    pressure: pressure::Pressure,
    failing: Failing,
}

impl Collector {
    /// A collector whose CPU and network counters are already sampled once, so the first
    /// [`Collector::collect`] one interval later gives meaningful rates.
    pub fn new(opts: CollectOptions) -> Result<Collector, CollectError> {
        if opts.interval < MIN_INTERVAL {
            return Err(CollectError::IntervalTooShort(opts.interval));
        }
        let mut c = Collector {
            cpu: cpu::Cpu::new(),
            disks: disk::Disks::default(),
            net: net::Net::default(),
            diskio: opts
                .disk_io
                .then(|| diskio::DiskIo::new(opts.disk_io_partitions)),
            pressure: pressure::Pressure::new(),
            failing: Failing::default(),
        };
        if !opts.disk_io {
            info!("disk i/o collector off: collect.disk_io = false");
        }
        // Prime the counters; the values of this round are thrown away.
        let mut scratch = Vec::new();
        let stat = read("/proc/stat").and_then(|text| cpu::parse_stat(&text));
        if let Some(stat) = c.failing.record("cpu", stat) {
            c.cpu.usage(&stat, &mut scratch);
        }
        let r = c.net.collect(&mut scratch);
        c.failing.record("net", r);
        if let Some(d) = c.diskio.as_mut() {
            match d.collect(&mut scratch) {
                // No /proc/diskstats at all (a kernel or sandbox without it): off, one line.
                Err(CollectError::Read { path, source })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    info!("disk i/o collector off: '{path}' does not exist");
                    c.diskio = None;
                }
                r => {
                    c.failing.record("diskio", r);
                }
            }
        }
        Ok(c)
    }

    /// One reading of every core metric. A failing source logs once (warn, with the error)
    /// and again only after it has recovered; the other sources go on.
    pub fn collect(&mut self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(64);
        let stat = read("/proc/stat").and_then(|text| cpu::parse_stat(&text));
        if let Some(stat) = self.failing.record("cpu", stat) {
            self.cpu.usage(&stat, &mut out);
            push(&mut out, Metric::HostBootTimeS, stat.btime as f64);
        }
        let r = cpu::load(&mut out);
        self.failing.record("load", r);
        let r = self.cpu.frequency(&mut out);
        self.failing.record("freq", r);
        self.cpu.temperatures(&mut out);
        let r = mem::collect(&mut out);
        self.failing.record("mem", r);
        let r = self.disks.collect(&mut out);
        self.failing.record("disk", r);
        let r = self.net.collect(&mut out);
        self.failing.record("net", r);
        if let Some(d) = self.diskio.as_mut() {
            let r = d.collect(&mut out);
            self.failing.record("diskio", r);
        }
        let r = self.pressure.collect(&mut out);
        self.failing.record("pressure", r);
        let r = host::uptime(&mut out);
        self.failing.record("uptime", r);
        out
    }

    /// OS, kernel, architecture, boot time and logical CPU count. The caller fills in the
    /// agent version, tags, interval and dashboard role.
    pub fn host_info(&self) -> HostInfo {
        host::info()
    }
}

/// Starts the optional collectors that `cfg` switches on, each on its own thread, publishing
/// into `extras` until `stop`. Returns their threads, joined at shutdown. (The HTTP checks are
/// async and are started by the node on its runtime.)
pub fn start_optional(
    cfg: &crate::config::CollectConfig,
    extras: &Extras,
    stop: &Stop,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let c = cfg;
    threads.extend(textfile::start(
        c.textfile_dir.as_deref(),
        c.interval,
        extras,
        stop,
    ));
    threads.extend(systemd::start(
        &c.cgroup_root,
        &c.systemd_units,
        c.interval,
        extras,
        stop,
    ));
    #[cfg(feature = "gpu")]
    threads.extend(gpu::start(c.gpu, c.interval, extras, stop));
    threads.extend(amdgpu::start(
        c.gpu,
        std::path::Path::new(amdgpu::DRM),
        c.interval,
        extras,
        stop,
    ));
    #[cfg(not(feature = "gpu"))]
    if c.gpu {
        tracing::debug!("this meshmon was built without the GPU collector (feature gpu)");
    }
    threads.extend(docker::start(
        c.docker_dir.as_deref(),
        c.docker_interval,
        extras,
        stop,
    ));
    threads.extend(smart::start(
        c.smartctl.as_deref(),
        c.smart_interval,
        extras,
        stop,
    ));
    let roots = containers::cgroup::Roots {
        cgroup: c.cgroup_root.clone(),
        proc: "/proc".into(),
    };
    let opts = containers::Options {
        sockets: c.container_sockets.clone(),
        roots,
        max: containers::MAX_CONTAINERS,
    };
    threads.extend(containers::start(
        c.containers,
        opts,
        c.interval,
        extras,
        stop,
    ));
    threads.extend(procs::start(
        std::path::Path::new("/proc"),
        c.top_processes,
        &c.processes,
        c.interval,
        extras,
        stop,
    ));
    threads
}

/// Sources that are failing now, so each failure is logged once and not every interval.
#[derive(Debug, Default)]
struct Failing(HashSet<String>);

impl Failing {
    /// Logs `result`'s error if `source` was not already failing; logs a recovery if it was
    /// and `result` is fine.
    fn record<T>(&mut self, source: &str, result: Result<T, CollectError>) -> Option<T> {
        match result {
            Ok(v) => {
                if self.0.remove(source) {
                    info!(source, "collector source recovered");
                }
                Some(v)
            }
            Err(error) => {
                if !self.0.contains(source) {
                    warn!(source, %error, "collector source failed; logged again only after it recovers");
                    self.0.insert(source.to_owned());
                }
                None
            }
        }
    }
}

/// Reads a whole kernel file. `/proc` files report size 0, so `fs::read_to_string` would
/// start with 32-byte reads and regenerate the file's text several times; a buffer of a few
/// KiB reads most of them in one call.
fn read(path: &str) -> Result<String, CollectError> {
    let mut text = String::with_capacity(8192);
    read_into(path, &mut text).map_err(|source| CollectError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(text)
}

/// A whole kernel file as text ([`read_into`], starting with a page of room: `/proc` and
/// cgroup files give no size).
pub(crate) fn read_text(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    let mut text = String::with_capacity(4096);
    read_into(path, &mut text)?;
    Ok(text)
}

/// The most read of one kernel file (a mount table of thousands of mounts is a few MiB).
const READ_LIMIT: u64 = 64 << 20;

/// Reads a whole kernel file into `buf` (cleared first): open, `read` until it returns 0,
/// close. `File::read_to_string` also asks `statx` and `lseek` for a size hint, which `/proc`
/// and `/sys` files give as 0: two more system calls per file, and the process collector
/// reads two files per busy process every interval.
pub(crate) fn read_into(path: impl AsRef<std::path::Path>, buf: &mut String) -> io::Result<()> {
    buf.clear();
    // `Take` gives no size hint, so its `read_to_string` goes straight to `read`.
    std::fs::File::open(path)?
        .take(READ_LIMIT)
        .read_to_string(buf)
        .map(drop)
}

fn parse_error(path: &str, what: impl Into<String>) -> CollectError {
    CollectError::Parse {
        path: path.to_owned(),
        what: what.into(),
    }
}

fn push(out: &mut Vec<Sample>, metric: Metric, value: f64) {
    out.push((SeriesKey::new(metric), value));
}

fn push_labelled(out: &mut Vec<Sample>, metric: Metric, label: &str, value: f64) {
    out.push((SeriesKey::labelled(metric, label), value));
}

/// `part / whole` in percent, 0 when `whole` is 0.
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_interval_is_refused() {
        let r = Collector::new(CollectOptions {
            interval: Duration::from_millis(50),
            ..CollectOptions::default()
        });
        assert!(matches!(r, Err(CollectError::IntervalTooShort(_))));
    }

    #[test]
    fn failing_logs_once_until_recovered() {
        let mut f = Failing::default();
        let err = || Err::<(), _>(parse_error("/x", "bad"));
        assert_eq!(f.record("a", err()), None);
        assert!(f.0.contains("a"));
        assert_eq!(f.record("a", err()), None);
        assert_eq!(f.0.len(), 1);
        assert_eq!(f.record("a", Ok(3)), Some(3));
        assert!(f.0.is_empty());
    }

    #[test]
    fn pct_of_zero_is_zero() {
        assert_eq!(pct(5, 0), 0.0);
        assert_eq!(pct(1, 4), 25.0);
    }
}
