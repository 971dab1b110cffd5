//! Processes (`collect.top_processes`, `collect.processes`): per interval, the processes of the
//! host grouped by name, like Netdata's apps.plugin, read straight from `/proc/PID/stat` and
//! `/proc/PID/io` (two small reads per process; `cmdline` once per interpreter process).
//!
//! - Name: `comm` (the kernel's name, at most 15 bytes); for interpreters (`python*`, `perl*`,
//!   `ruby*`, `node*`, `php*`, `bash*`) the base name of the script they run (`app.py`), read
//!   from `cmdline` once per process; kernel threads are grouped as `kthreads`.
//! - Sent: the top N names by CPU and the top N by memory (N = `collect.top_processes`), each
//!   with `proc.cpu_pct`, `proc.mem_bytes` and, where `/proc/PID/io` is readable (the agent's
//!   own user, or root), `proc.io_read_bytes_per_s` / `proc.io_write_bytes_per_s` (`io` is
//!   read only for the processes of these names: it costs as much as `stat`; the rates start
//!   at 0 on the reading a name comes in); everything else summed under `name="other"`
//!   (CPU and memory; no I/O). At most 2N+1 names per interval. To keep the series set
//!   steady (every change of it re-sends the host's whole series table), the top names are
//!   ranked afresh every 30 readings; in between a newcomer gets in only by clearly beating
//!   the weakest name sent (by 10 % of a core plus half its value; 64 MiB plus half its
//!   memory), and a name whose processes exited reads 0 until the next ranking. A name
//!   leaving the set simply stops being sent. Values are rounded (CPU to 1 %, memory to MiB,
//!   I/O to KiB/s) so that small moves are not re-sent every interval.
//! - `proc.count{name}` for every name of `collect.processes`, 0 when none runs (zombies are
//!   not counted).
//! - CPU is percent of one core over the time between two readings (200 = two cores), like
//!   `top`. A process started since the previous reading counts all its CPU time; the CPU time
//!   of a process that exited between two readings is not counted.
//!
//! Not here: scheduling (the thread in [`start`]) and sending (the core loop via [`Extras`]).

mod read;

use super::{Extras, Sample, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The source name under which the values are published.
pub const SOURCE: &str = "procs";

/// The name the processes outside the top sets are summed under.
pub const OTHER: &str = "other";

/// The top names are ranked afresh every this many readings (as often as the series table
/// is re-sent anyway); in between only a clear newcomer gets in (see `Procs::pick`).
pub const RERANK_EVERY: u64 = 30;

/// Readings an idle process is skipped for (read every 5th interval).
pub const IDLE_SKIP: u8 = 4;

/// Clock ticks per second of `/proc/PID/stat` times: `USER_HZ`, 100 on every architecture
/// Linux runs on today (the kernel ABI fixes it; `sysconf(_SC_CLK_TCK)` returns it).
const TICKS_PER_S: f64 = 100.0;

/// What is remembered of one process between readings.
#[derive(Debug)]
struct Known {
    /// Start time: a different one under the same PID is a new process.
    start: u64,
    name: Arc<str>,
    ticks: u64,
    /// The last I/O counters, read only while the process's name is sent with I/O series.
    io: Option<(u64, u64)>,
    /// Resident memory at the last read, bytes.
    mem: u64,
    /// Uptime in ticks at the last read.
    read_at: u64,
    /// Readings left before it is read again (an idle process; see `Procs::scan`).
    skip: u8,
}

/// One name's totals over an interval.
#[derive(Debug, Default, Clone, Copy)]
struct Group {
    ticks: u64,
    mem: u64,
    io_read: u64,
    io_write: u64,
    /// The I/O series are sent (set per sent name; `other` has none).
    io: bool,
    count: u32,
}

impl Group {
    fn add(&mut self, o: &Group) {
        self.ticks += o.ticks;
        self.mem += o.mem;
        self.io_read += o.io_read;
        self.io_write += o.io_write;
        self.count += o.count;
    }
}

/// The process collector.
pub struct Procs {
    root: PathBuf,
    top: usize,
    watch: Vec<String>,
    page: u64,
    known: HashMap<u32, Known>,
    /// Names sent last interval, per ranking (CPU, memory).
    held: [Vec<Arc<str>>; 2],
    /// Names sent last interval, and whether their I/O series are.
    io_of: HashMap<Arc<str>, bool>,
    /// Readings so far (for [`RERANK_EVERY`]).
    readings: u64,
    /// The previous reading: when, and the system uptime in ticks then.
    prev: Option<(Instant, u64)>,
    text: String,
    bytes: Vec<u8>,
}

impl Procs {
    /// A collector reading the proc file system at `root` (`/proc`), sending the top `top`
    /// names and the counts of `watch`.
    pub fn new(root: &Path, top: usize, watch: &[String]) -> Procs {
        Procs {
            root: root.to_path_buf(),
            top,
            watch: watch.to_vec(),
            page: read::page_size(),
            known: HashMap::new(),
            held: [Vec::new(), Vec::new()],
            io_of: HashMap::new(),
            readings: 0,
            prev: None,
            text: String::with_capacity(512),
            bytes: Vec::with_capacity(256),
        }
    }

    /// One reading at `now`. The first one has no CPU or I/O rates (they need two readings).
    /// `Err` when the process directory cannot be listed.
    pub fn collect(&mut self, now: Instant) -> std::io::Result<Vec<Sample>> {
        let uptime = self.uptime_ticks();
        let elapsed = self.prev.map(|(t, _)| now.saturating_duration_since(t));
        let since = self.prev.map(|(_, u)| u);
        let groups = self.scan(since, uptime)?;
        self.prev = Some((now, uptime));
        Ok(self.samples(&groups, elapsed))
    }

    /// System uptime in ticks (`/proc/uptime`), 0 when unreadable.
    fn uptime_ticks(&mut self) -> u64 {
        let ok = super::read_into(self.root.join("uptime"), &mut self.text).is_ok();
        let secs = ok
            .then(|| {
                self.text
                    .split_ascii_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .flatten();
        secs.map_or(0, |s| (s * TICKS_PER_S) as u64)
    }

    /// Reads every process; per name, the CPU ticks and I/O bytes since the previous reading
    /// (`since` = the uptime in ticks then; `now` = the uptime now), memory and count now.
    ///
    /// A process that used no CPU since it was last read is read again only after
    /// [`IDLE_SKIP`] readings (its last memory and count stand in meanwhile): most processes
    /// of a host sleep, and `stat` is the main cost (about 15 us of kernel time each on a
    /// small VM). The CPU and I/O it used while skipped are counted when it is read, spread
    /// over the time since its last read.
    fn scan(&mut self, since: Option<u64>, now: u64) -> std::io::Result<HashMap<Arc<str>, Group>> {
        let mut groups: HashMap<Arc<str>, Group> = HashMap::new();
        let mut alive = HashSet::with_capacity(self.known.len() + 16);
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(k) = self.known.get_mut(&pid)
                && k.skip > 0
            {
                k.skip -= 1;
                alive.insert(pid);
                let g = groups.entry(k.name.clone()).or_default();
                g.count += 1;
                g.mem += k.mem;
                continue;
            }
            let dir = entry.path();
            if super::read_into(dir.join("stat"), &mut self.text).is_err() {
                continue; // exited since the listing
            }
            let Some(stat) = read::parse_stat(&self.text) else {
                continue;
            };
            if matches!(stat.state, 'Z' | 'X') {
                continue;
            }
            alive.insert(pid);
            let (name, prev_ticks, prev_io, read_at) = match self.known.get(&pid) {
                Some(k) if k.start == stat.start => {
                    (k.name.clone(), Some(k.ticks), k.io, Some(k.read_at))
                }
                _ => {
                    let name: Arc<str> = read::group_name(&dir, &stat, &mut self.bytes).into();
                    // New since the previous reading: all its CPU time falls in the interval.
                    let new = since.is_some_and(|s| stat.start >= s);
                    (name, new.then_some(0), None, None)
                }
            };
            let sent = self.io_of.get(&name).copied();
            // I/O counters are read only for the names sent with I/O series: they cost as much
            // as `stat` again.
            let io = if sent == Some(true) {
                read_io(&dir, &mut self.text)
            } else {
                None
            };
            let used = prev_ticks.map(|p| stat.ticks.saturating_sub(p));
            let mem = stat.rss_pages.saturating_mul(self.page);
            let g = groups.entry(name.clone()).or_default();
            g.count += 1;
            g.mem += mem;
            // Read after a skip: what it used since its last read, its share of this interval.
            let share = |v: u64| match (read_at, since) {
                (Some(at), Some(s)) if at < s => {
                    let span = now.saturating_sub(at).max(1);
                    v.saturating_mul(now.saturating_sub(s)) / span
                }
                _ => v,
            };
            g.ticks += used.map_or(0, share);
            if let (Some((r, w)), Some((pr, pw))) = (io, prev_io) {
                g.io_read += share(r.saturating_sub(pr));
                g.io_write += share(w.saturating_sub(pw));
            }
            let idle = used == Some(0);
            self.known.insert(
                pid,
                Known {
                    start: stat.start,
                    name,
                    ticks: stat.ticks,
                    io,
                    mem,
                    read_at: now,
                    skip: if idle { IDLE_SKIP } else { 0 },
                },
            );
        }
        self.known.retain(|pid, _| alive.contains(pid));
        Ok(groups)
    }

    /// The series of this interval: the top names, `other`, and the watched counts.
    fn samples(
        &mut self,
        groups: &HashMap<Arc<str>, Group>,
        elapsed: Option<Duration>,
    ) -> Vec<Sample> {
        let mut out = Vec::new();
        let secs = elapsed.map(|d| d.as_secs_f64()).filter(|s| *s > 0.0);
        if self.top > 0 {
            let rerank = self.readings.is_multiple_of(RERANK_EVERY);
            self.readings += 1;
            // Flicker margins: 2 ticks, an eighth of the memory. Margins to get in between
            // rankings: 10 ticks (10 % of a core over 1 s) plus half the weakest's value;
            // 64 MiB plus half the weakest's memory.
            let by_cpu = self.pick(groups, 0, |g| g.ticks, rerank, |_| 2, |v| 10 + v / 2);
            let by_mem = self.pick(
                groups,
                1,
                |g| g.mem,
                rerank,
                |m| m / 8,
                |m| (64 << 20) + m / 2,
            );
            // A name's I/O series are sent or not from the reading it came in on until it
            // leaves, so the series set does not change under it.
            let mut sent: HashMap<Arc<str>, bool> = HashMap::new();
            for n in by_cpu.iter().chain(&by_mem) {
                let io = match self.io_of.get(n) {
                    Some(io) => *io,
                    None => self.probe_io(n),
                };
                sent.insert(n.clone(), io);
            }
            let mut other = Group::default();
            for (name, g) in groups {
                if !sent.contains_key(name) {
                    other.add(g);
                }
            }
            for (name, io) in &sent {
                // A name whose processes exited since it came in reads 0 until it leaves.
                let g = groups.get(name).copied().unwrap_or_default();
                push_group(&mut out, name, &Group { io: *io, ..g }, secs);
            }
            push_group(&mut out, OTHER, &other, secs);
            self.held = [by_cpu, by_mem];
            self.io_of = sent;
        }
        for name in &self.watch {
            let n = groups.get(name.as_str()).map_or(0, |g| g.count);
            out.push((SeriesKey::labelled(Metric::ProcCount, name), f64::from(n)));
        }
        out
    }

    /// A name coming into the sent set: reads its processes' I/O counters (the baseline of
    /// their rates, which start at 0); whether any was readable.
    fn probe_io(&mut self, name: &Arc<str>) -> bool {
        let mut readable = false;
        for (pid, k) in self.known.iter_mut().filter(|(_, k)| k.name == *name) {
            k.io = read_io(&self.root.join(pid.to_string()), &mut self.text);
            readable |= k.io.is_some();
        }
        readable
    }

    /// The top N names ranked `which` (0 CPU, 1 memory).
    ///
    /// Every [`RERANK_EVERY`] readings (`rerank`), the top N, where a name sent last time
    /// competes with `value + flicker(value)` and wins ties. In between, the names sent last
    /// time stay (one whose processes exited too) and a newcomer gets in only by beating the
    /// weakest of them by `urgent(weakest)`: a process that starts burning CPU shows at once,
    /// while names that come and go do not change the series set each interval (each change
    /// re-sends the whole series table of the host).
    fn pick(
        &self,
        groups: &HashMap<Arc<str>, Group>,
        which: usize,
        value: impl Fn(&Group) -> u64,
        rerank: bool,
        flicker: impl Fn(u64) -> u64,
        urgent: impl Fn(u64) -> u64,
    ) -> Vec<Arc<str>> {
        let held = &self.held[which];
        let raw = |n: &Arc<str>| groups.get(n).map_or(0, &value);
        let mut ranked: Vec<(&Arc<str>, u64, bool)> = groups
            .iter()
            .map(|(n, g)| {
                let v = value(g);
                let h = held.contains(n);
                (
                    n,
                    if h && rerank {
                        v.saturating_add(flicker(v))
                    } else {
                        v
                    },
                    h,
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
        if rerank || held.is_empty() {
            return ranked
                .into_iter()
                .take(self.top)
                .map(|(n, _, _)| n.clone())
                .collect();
        }
        let mut keep: Vec<Arc<str>> = held.clone();
        for (name, v, is_held) in ranked {
            if is_held {
                continue;
            }
            if keep.len() < self.top {
                keep.push(name.clone());
                continue;
            }
            let Some((wi, weakest)) = keep
                .iter()
                .enumerate()
                .map(|(i, n)| (i, raw(n)))
                .min_by_key(|(_, v)| *v)
            else {
                break;
            };
            if v <= weakest.saturating_add(urgent(weakest)) {
                break; // the rest are smaller still
            }
            keep[wi] = name.clone();
        }
        keep
    }
}

/// `/proc/PID/io`'s storage bytes, `None` when unreadable.
fn read_io(dir: &Path, buf: &mut String) -> Option<(u64, u64)> {
    super::read_into(dir.join("io"), buf)
        .ok()
        .and_then(|()| read::parse_io(buf))
}

/// One name's series, rounded so that small moves are not re-sent every interval: CPU to
/// whole percent (the ticks are 1 % of a core per second anyway), memory to MiB, I/O to KiB/s.
fn push_group(out: &mut Vec<Sample>, name: &str, g: &Group, secs: Option<f64>) {
    let key = |m| SeriesKey::labelled(m, name);
    out.push((key(Metric::ProcMemBytes), round_to(g.mem as f64, MIB)));
    let Some(secs) = secs else { return };
    let pct = (g.ticks as f64 / TICKS_PER_S / secs * 100.0).round();
    out.push((key(Metric::ProcCpuPct), pct));
    if g.io {
        let rate = |b: u64| round_to(b as f64 / secs, 1024.0);
        out.push((key(Metric::ProcIoReadBytesPerS), rate(g.io_read)));
        out.push((key(Metric::ProcIoWriteBytesPerS), rate(g.io_write)));
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// `v` to the nearest multiple of `step`.
fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Starts the collector thread when `top > 0` or names are watched. Where the process
/// directory cannot be listed, logs one line and starts nothing.
pub fn start(
    root: &Path,
    top: usize,
    watch: &[String],
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    if top == 0 && watch.is_empty() {
        return None;
    }
    let mut p = Procs::new(root, top, watch);
    if let Err(error) = p.collect(Instant::now()) {
        tracing::info!(root = %root.display(), %error, "process collector off: cannot list processes");
        return None;
    }
    super::extra::spawn("procs", "process", extras, stop, move |extras, stop| {
        let mut wake = Instant::now();
        let mut failing = false;
        loop {
            wake = next_wake(wake, interval, extras.next_frame());
            if stop.sleep(wake.saturating_duration_since(Instant::now())) {
                break;
            }
            match p.collect(Instant::now()) {
                Ok(samples) => {
                    extras.set(SOURCE, samples);
                    failing = false;
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "process collector: cannot list processes");
                    }
                    failing = true;
                    extras.clear(SOURCE);
                }
            }
        }
    })
}

/// How long before the core loop's frame the processes are read: their values then ride in
/// that frame, at most this old.
const LEAD: Duration = Duration::from_millis(150);

/// When to read next, after reading at `last`: `LEAD` before the core loop's next frame when
/// that is later than `last`, else one interval after `last`.
fn next_wake(last: Instant, interval: Duration, frame: Option<Instant>) -> Instant {
    let lead = LEAD.min(interval / 4);
    let min_gap = interval / 4;
    match frame.and_then(|f| f.checked_sub(lead)) {
        Some(t) if t >= last + min_gap => t,
        Some(t) if t + interval >= last + min_gap => t + interval,
        _ => last + interval,
    }
}

#[cfg(test)]
mod tests;
