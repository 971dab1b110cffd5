//! Block device activity from `/proc/diskstats` (`collect.disk_io`): per device read and write
//! bytes/s, IOPS (reads, writes, both), utilisation % and average await ms over the time that
//! actually passed since the previous reading.
//!
//! Which devices: whole disks (`/sys/block/<dev>` exists), including md and dm devices (dm ones
//! labelled by their `dm/name`, e.g. `vg0-root`); partitions (`/sys/class/block/<dev>/partition`
//! exists) only with `collect.disk_io_partitions`. A device that has never completed a read or
//! a write since boot is left out, which is how unused loop, ram and zram devices stay out
//! (they appear once they are used). At most [`MAX_DEVICES`] series sets: real disks first,
//! then md/dm, then partitions, then loop/ram/zram, each by name; the rest are summed into
//! `device="other"` (its utilisation is the mean of the folded devices).
//!
//! The classification needs sysfs, read only when the set of names in `/proc/diskstats`
//! changes; each interval reads `/proc/diskstats` alone.
//!
//! Not here: filesystem space (`disk`), per-process I/O.

use super::{CollectError, Sample, parse_error, push_labelled, read};
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many devices get series of their own; the rest are folded into `other`.
pub const MAX_DEVICES: usize = 32;

/// The label of the folded devices.
pub const OTHER: &str = "other";

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's sector size.
const SECTOR: f64 = 512.0;

/// The counters of one device (or the sum over the folded ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counters {
    reads: u64,
    read_sectors: u64,
    read_ms: u64,
    writes: u64,
    write_sectors: u64,
    write_ms: u64,
    io_ticks_ms: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.reads += o.reads;
        self.read_sectors += o.read_sectors;
        self.read_ms += o.read_ms;
        self.writes += o.writes;
        self.write_sectors += o.write_sectors;
        self.write_ms += o.write_ms;
        self.io_ticks_ms += o.io_ticks_ms;
    }

    /// `self - prev` field by field; `None` when any went backwards (a re-created device).
    fn since(&self, p: &Counters) -> Option<Counters> {
        Some(Counters {
            reads: self.reads.checked_sub(p.reads)?,
            read_sectors: self.read_sectors.checked_sub(p.read_sectors)?,
            read_ms: self.read_ms.checked_sub(p.read_ms)?,
            writes: self.writes.checked_sub(p.writes)?,
            write_sectors: self.write_sectors.checked_sub(p.write_sectors)?,
            write_ms: self.write_ms.checked_sub(p.write_ms)?,
            io_ticks_ms: self.io_ticks_ms.checked_sub(p.io_ticks_ms)?,
        })
    }
}

/// Parses `/proc/diskstats`: `major minor name` and at least 11 counters (kernels since 2.6;
/// 4.18 added discards, 5.5 flushes). Returns `(name, counters)` in the file's order.
pub(super) fn parse(path: &str, text: &str) -> Result<Vec<(String, Counters)>, CollectError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || parse_error(path, format!("line '{}'", line.trim()));
        let mut words = line.split_ascii_whitespace().skip(2);
        let name = words.next().ok_or_else(bad)?;
        let f: Vec<u64> = words
            .take(11)
            .map(|w| w.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if f.len() < 11 {
            return Err(bad());
        }
        out.push((
            name.to_owned(),
            Counters {
                reads: f[0],
                read_sectors: f[2],
                read_ms: f[3],
                writes: f[4],
                write_sectors: f[6],
                write_ms: f[7],
                io_ticks_ms: f[9],
            },
        ));
    }
    Ok(out)
}

/// What a kernel device name is, from sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    /// The series label: the kernel name, or a dm device's `dm/name`.
    label: String,
    /// Sort rank for the bound: 0 disks, 1 md/dm, 2 partitions, 3 loop/ram/zram.
    rank: u8,
}

/// Classifies `name` under the sysfs root `sys`; `None` for a partition (when partitions are
/// off) or a name sysfs does not know.
fn classify(sys: &Path, name: &str, partitions: bool) -> Option<Class> {
    // sysfs spells '/' in device names (cciss/c0d0) as '!'.
    let sysname = name.replace('/', "!");
    let class = sys.join("class/block").join(&sysname);
    let virtual_ = ["loop", "ram", "zram"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
    });
    if sys.join("block").join(&sysname).exists() {
        if let Some(dm) = std::fs::read_to_string(sys.join("block").join(&sysname).join("dm/name"))
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
        {
            return Some(Class { label: dm, rank: 1 });
        }
        let rank = if name.starts_with("md") {
            1
        } else if virtual_ {
            3
        } else {
            0
        };
        return Some(Class {
            label: name.to_owned(),
            rank,
        });
    }
    (partitions && class.join("partition").exists()).then(|| Class {
        label: name.to_owned(),
        rank: 2,
    })
}

/// The per-device state between readings.
#[derive(Debug)]
pub(super) struct DiskIo {
    diskstats: String,
    sys: PathBuf,
    partitions: bool,
    /// [`MAX_DEVICES`] (tests use fewer).
    max: usize,
    /// Kernel names of the last classification, in file order, and what each is.
    names: Vec<String>,
    classes: HashMap<String, Option<Class>>,
    /// Previous counters per label, the folded devices' count and names.
    prev: HashMap<String, Counters>,
    folded: Vec<String>,
    at: Option<Instant>,
}

impl DiskIo {
    /// Reads `/proc/diskstats` with sysfs at `/sys`.
    pub(super) fn new(partitions: bool) -> DiskIo {
        DiskIo::at_root("/proc/diskstats", Path::new("/sys"), partitions)
    }

    /// Reads `diskstats` with the sysfs tree at `sys` (tests point both at fixtures).
    pub(super) fn at_root(diskstats: &str, sys: &Path, partitions: bool) -> DiskIo {
        DiskIo {
            diskstats: diskstats.to_owned(),
            sys: sys.to_owned(),
            partitions,
            max: MAX_DEVICES,
            names: Vec::new(),
            classes: HashMap::new(),
            prev: HashMap::new(),
            folded: Vec::new(),
            at: None,
        }
    }

    /// One reading: the rates since the previous call (none on the first).
    pub(super) fn collect(&mut self, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let text = read(&self.diskstats)?;
        let now = Instant::now();
        let stats = parse(&self.diskstats, &text)?;
        let elapsed = self.at.map(|at| now.saturating_duration_since(at));
        self.update(stats, now, elapsed, out);
        Ok(())
    }

    fn update(
        &mut self,
        stats: Vec<(String, Counters)>,
        now: Instant,
        elapsed: Option<Duration>,
        out: &mut Vec<Sample>,
    ) {
        if stats.len() != self.names.len() || stats.iter().zip(&self.names).any(|(s, n)| s.0 != *n)
        {
            self.names = stats.iter().map(|(n, _)| n.clone()).collect();
            let (sys, partitions) = (&self.sys, self.partitions);
            self.classes = self
                .names
                .iter()
                .map(|n| (n.clone(), classify(sys, n, partitions)))
                .collect();
        }
        let mut shown: Vec<(&Class, Counters)> = stats
            .iter()
            .filter(|(_, c)| c.reads > 0 || c.writes > 0)
            .filter_map(|(n, c)| Some((self.classes.get(n)?.as_ref()?, *c)))
            .collect();
        shown.sort_by(|a, b| (a.0.rank, &a.0.label).cmp(&(b.0.rank, &b.0.label)));
        let mut current: Vec<(String, Counters)> = Vec::new();
        let mut folded = Vec::new();
        let mut other = Counters::default();
        for (i, (class, c)) in shown.into_iter().enumerate() {
            if i < self.max {
                current.push((class.label.clone(), c));
            } else {
                other.add(&c);
                folded.push(class.label.clone());
            }
        }
        let secs = elapsed.map_or(0.0, |e| e.as_secs_f64());
        for (label, c) in &current {
            if let Some(d) = self.prev.get(label).and_then(|p| c.since(p)) {
                rates(out, label, &d, secs, 1);
            }
        }
        if !folded.is_empty() {
            // A change in who is folded would show as a jump: no rates for `other` this time.
            let prev = self.prev.get(OTHER).filter(|_| folded == self.folded);
            if let Some(d) = prev.and_then(|p| other.since(p)) {
                rates(out, OTHER, &d, secs, folded.len());
            }
            current.push((OTHER.to_owned(), other));
        }
        self.prev = current.into_iter().collect();
        self.folded = folded;
        self.at = Some(now);
    }
}

/// The series of one device (or of `n` folded ones) from counter deltas over `secs`.
fn rates(out: &mut Vec<Sample>, label: &str, d: &Counters, secs: f64, n: usize) {
    if secs <= 0.0 {
        return;
    }
    let ios = d.reads + d.writes;
    let util = d.io_ticks_ms as f64 / n.max(1) as f64 / (secs * 1000.0) * 100.0;
    let await_ms = if ios == 0 {
        0.0
    } else {
        (d.read_ms + d.write_ms) as f64 / ios as f64
    };
    for (metric, v) in [
        (
            Metric::DiskioReadBytesPerS,
            d.read_sectors as f64 * SECTOR / secs,
        ),
        (
            Metric::DiskioWriteBytesPerS,
            d.write_sectors as f64 * SECTOR / secs,
        ),
        (Metric::DiskioIops, ios as f64 / secs),
        (Metric::DiskioReadIops, d.reads as f64 / secs),
        (Metric::DiskioWriteIops, d.writes as f64 / secs),
        (Metric::DiskioUtilPct, util.min(100.0)),
        (Metric::DiskioAwaitMs, await_ms),
    ] {
        push_labelled(out, metric, label, v);
    }
}

#[cfg(test)]
#[path = "diskio_tests.rs"]
mod tests;
