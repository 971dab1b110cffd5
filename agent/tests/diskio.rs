//! Disk I/O end to end: a real dashboard `meshmon` collects every second while the test writes
//! 200 MiB with `dd oflag=direct` to a file on the root disk (`/var/tmp`, not a tmpfs). The
//! stored `diskio.write_bytes_per_s` of that disk, integrated over the samples around the
//! write, must be within 15 % of the bytes written, and agree with `/proc/diskstats` read by the
//! test itself (every 10 ms) over the same window.
//!
//! The collector runs at its default 1 s: the integral uses the stored timestamps, which the
//! mesh task stamps a little after the collector read the counters, and that jitter over one
//! interval is the integral's error (on this loaded 2-core VM up to ~30 ms: 6 % at 500 ms, 3 %
//! at 1 s). Other processes' writes in the window count too; see [`ATTEMPTS`].

mod common;

use common::*;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MIB: u64 = 1024 * 1024;
const WRITTEN: u64 = 200 * MIB;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The collector's label for the block device holding `dir`: the whole disk of a partition, a
/// dm device's `dm/name`, and the kernel name in `/proc/diskstats` to read it by.
fn device_of(dir: &Path) -> (String, String) {
    let dev = std::fs::metadata(dir).expect("stat").dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let sys = Path::new("/sys/dev/block").join(format!("{major}:{minor}"));
    let real = std::fs::canonicalize(&sys).unwrap_or_else(|e| {
        panic!(
            "{} is not on a block device ({major}:{minor}, {}: {e}); this test needs a real disk",
            dir.display(),
            sys.display()
        )
    });
    let whole = if real.join("partition").exists() {
        real.parent().expect("the partition's disk").to_owned()
    } else {
        real
    };
    let kernel = whole
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let label = std::fs::read_to_string(whole.join("dm/name"))
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|_| kernel.clone());
    (label, kernel)
}

/// Sectors written to `kernel_name`, from `/proc/diskstats`.
fn sectors_written(kernel_name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/diskstats").expect("diskstats");
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.get(2) == Some(&kernel_name))
        .and_then(|w| w.get(9)?.parse().ok())
        .unwrap_or_else(|| panic!("{kernel_name} in /proc/diskstats"))
}

/// `(ts ms, value)` rows of `selector` on host `host` from the store; none while the store
/// is not there yet.
fn series(config: &Path, host: &str, selector: &str) -> Vec<(i64, f64)> {
    let out = Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(["query", "series", "--host", host, "--metric", selector])
        .args(["--since", "5m", "--format", "json", "--config"])
        .arg(config)
        .output()
        .expect("run meshmon query");
    let rows: serde_json::Value = if out.status.success() {
        serde_json::from_slice(&out.stdout).expect("json")
    } else {
        return Vec::new();
    };
    rows.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let ts = meshmon_dashboard::time::parse_rfc3339(r["ts"].as_str()?)?;
                    Some((ts, r["value"].as_f64()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `f` every 250 ms for up to 30 s.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::poll(what, Duration::from_secs(30), Duration::from_millis(250), f)
}

/// The test's own `/proc/diskstats` readings of one device, every 10 ms, until dropped.
struct Sampler {
    readings: Arc<Mutex<Vec<(i64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(kernel_name: &str) -> Sampler {
        let readings: Arc<Mutex<Vec<(i64, u64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, name) = (readings.clone(), stop.clone(), kernel_name.to_owned());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let v = sectors_written(&name);
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((now_ms(), v));
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler {
            readings,
            stop,
            thread: Some(thread),
        }
    }

    /// Bytes written between the readings at (just before) `from` and `to`.
    fn bytes_between(&self, from: i64, to: i64) -> f64 {
        let r = self
            .readings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = |ts: i64| {
            r.iter()
                .rev()
                .find(|(t, _)| *t <= ts)
                .map(|(_, v)| *v)
                .expect("a reading before the window")
        };
        (at(to) - at(from)) as f64 * 512.0
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One write of 200 MiB: the stored bytes over the window around it and the test's own
/// `/proc/diskstats` bytes over the same window.
fn one_write(cfg: &Path, selector: &str, file: &Path, sampler: &Sampler) -> (f64, f64, String) {
    let _ = std::fs::remove_file(file);
    std::thread::sleep(Duration::from_millis(1500));
    let dd_start = now_ms();
    let out = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .args(["bs=1M", "count=200", "oflag=direct"])
        .output()
        .expect("run dd");
    let dd_end = now_ms();
    assert!(
        out.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::metadata(file).expect("file").len(), WRITTEN);
    // Two samples past the end of dd are stored; the sampler has seen that time too.
    let rows = wait_for("samples after the write", || {
        let rows = series(cfg, "dio", selector);
        (rows.iter().filter(|(ts, _)| *ts > dd_end).count() >= 2).then_some(rows)
    });
    std::thread::sleep(Duration::from_millis(100));
    // The window: from the last sample before dd started to the second one after it ended
    // (a sample stamped just after dd ended may have been read just before).
    let a = rows
        .iter()
        .rposition(|(ts, _)| *ts <= dd_start)
        .expect("a sample before dd");
    let b = rows
        .iter()
        .position(|(ts, _)| *ts > dd_end)
        .expect("a sample after dd")
        + 1;
    let window = &rows[a..=b];
    let stored: f64 = window
        .windows(2)
        .map(|w| w[1].1 * (w[1].0 - w[0].0) as f64 / 1000.0)
        .sum();
    let (from, to) = (window[0].0, window[window.len() - 1].0);
    let kernel = sampler.bytes_between(from, to);
    let what = format!(
        "dd {} ms; window {} ms over {} samples: stored {:.1} MiB, /proc/diskstats {:.1} MiB, \
         written {} MiB",
        dd_end - dd_start,
        to - from,
        window.len() - 1,
        stored / MIB as f64,
        kernel / MIB as f64,
        WRITTEN / MIB
    );
    (stored, kernel, what)
}

/// At most this many writes: one whose window the kernel saw other processes write more than
/// 5 % of 200 MiB in (a shared build machine) is not a fair test of "within 15 % of what dd
/// wrote" and is done again; the agreement with /proc/diskstats is checked on every one.
const ATTEMPTS: usize = 5;

#[test]
fn diskio_write_rate_integrates_to_the_bytes_dd_wrote_and_matches_diskstats() {
    let _serial = serial();
    let work = tempfile::tempdir().expect("tempdir");
    // The file goes on the root filesystem's disk: /var/tmp is on it on Debian (never a tmpfs).
    let target = tempfile::tempdir_in("/var/tmp").expect("tempdir in /var/tmp");
    let (label, kernel_name) = device_of(target.path());
    let mut spec = Spec::new("dio");
    spec.extra = format!(
        "dashboard = true\n[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n",
        work.path().join("store.db").display()
    );
    let _agent = Agent::start(work.path(), &spec);
    let cfg = work.path().join("dio.toml");
    let selector = format!("diskio.write_bytes_per_s{{device=\"{label}\"}}");
    wait_for("the first stored disk i/o samples", || {
        (series(&cfg, "dio", &selector).len() >= 2).then_some(())
    });
    let sampler = Sampler::start(&kernel_name);
    let file = target.path().join("dd.out");
    let mut noisy = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let (stored, kernel, what) = one_write(&cfg, &selector, &file, &sampler);
        eprintln!("device {label} ({kernel_name}), attempt {attempt}: {what}");
        let agree = (stored - kernel).abs() / kernel;
        assert!(
            agree <= 0.05,
            "stored and /proc/diskstats over the same window are {:.1} % apart: {what}",
            agree * 100.0
        );
        if (kernel - WRITTEN as f64).abs() / WRITTEN as f64 > 0.05 {
            noisy.push(what);
            continue;
        }
        let off = (stored - WRITTEN as f64).abs() / WRITTEN as f64;
        assert!(
            off <= 0.15,
            "stored is {:.1} % off the bytes written: {what}",
            off * 100.0
        );
        return;
    }
    panic!("other processes wrote to {label} during every write: {noisy:#?}");
}
