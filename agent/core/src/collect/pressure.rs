//! Pressure stall information and OOM kills: `/proc/pressure/{cpu,memory,io}` avg10 as
//! `psi.cpu_some_pct`, `psi.mem_some_pct`, `psi.mem_full_pct`, `psi.io_some_pct`,
//! `psi.io_full_pct`, and `/proc/vmstat oom_kill` as the counter `mem.oom_kills`.
//!
//! Each source is probed once when the collector starts: a kernel without PSI (before 4.20,
//! or booted with `psi=0`, where reading fails with "operation not supported") or without the
//! `oom_kill` line (before 4.13) switches that source off with one log line. The system-wide
//! CPU "full" line is left out: the kernel defines it as zero (it has printed it since 5.13 only
//! for the file format's sake).
//!
//! Not here: per-cgroup pressure, PSI triggers, the alert on OOM kills (the dashboard's
//! built-in `oom-kill`).

use super::{CollectError, Sample, parse_error, push, read};
use meshmon_proto::metrics::Metric;
use std::path::Path;
use tracing::info;

/// One PSI file and the metrics of its `some` and `full` lines.
#[derive(Debug, Clone)]
struct PsiFile {
    path: String,
    some: Metric,
    full: Option<Metric>,
}

/// The probed sources.
#[derive(Debug)]
pub(super) struct Pressure {
    psi: Vec<PsiFile>,
    vmstat: Option<String>,
}

impl Pressure {
    /// Probes `/proc`.
    pub(super) fn new() -> Pressure {
        Pressure::at_root(Path::new("/proc"))
    }

    /// Probes the proc tree at `proc` (tests use fixtures); logs each source that is off.
    pub(super) fn at_root(proc: &Path) -> Pressure {
        let files = [
            ("cpu", Metric::PsiCpuSomePct, None),
            ("memory", Metric::PsiMemSomePct, Some(Metric::PsiMemFullPct)),
            ("io", Metric::PsiIoSomePct, Some(Metric::PsiIoFullPct)),
        ];
        let mut psi = Vec::new();
        let mut off = Vec::new();
        for (name, some, full) in files {
            let path = path_string(&proc.join("pressure").join(name));
            match read(&path).and_then(|t| parse_psi(&path, &t)) {
                Ok(_) => psi.push(PsiFile { path, some, full }),
                Err(error) => off.push(error.to_string()),
            }
        }
        if !off.is_empty() {
            info!(
                reason = off.join("; "),
                "pressure collector off for {} of 3 files (kernel without PSI, or psi=0)",
                off.len()
            );
        }
        let vmstat = path_string(&proc.join("vmstat"));
        let vmstat = match read(&vmstat).and_then(|t| parse_oom_kills(&vmstat, &t)) {
            Ok(_) => Some(vmstat),
            Err(error) => {
                info!(%error, "oom-kill counter off (kernel before 4.13?)");
                None
            }
        };
        Pressure { psi, vmstat }
    }

    /// One reading of every source that is on.
    pub(super) fn collect(&self, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        for f in &self.psi {
            let (some, full) = parse_psi(&f.path, &read(&f.path)?)?;
            push(out, f.some, some);
            if let (Some(metric), Some(v)) = (f.full, full) {
                push(out, metric, v);
            }
        }
        if let Some(path) = &self.vmstat {
            let kills = parse_oom_kills(path, &read(path)?)?;
            push(out, Metric::MemOomKills, kills as f64);
        }
        Ok(())
    }
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

/// `some avg10=1.23 avg60=... total=...` and (optionally) `full avg10=...`: the two avg10
/// values in percent.
pub(super) fn parse_psi(path: &str, text: &str) -> Result<(f64, Option<f64>), CollectError> {
    let avg10 = |kind: &str| -> Result<Option<f64>, CollectError> {
        let Some(line) = text.lines().find(|l| l.starts_with(kind)) else {
            return Ok(None);
        };
        line.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("avg10="))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Some)
            .ok_or_else(|| parse_error(path, format!("line '{line}'")))
    };
    let some = avg10("some ")?.ok_or_else(|| parse_error(path, "no 'some' line"))?;
    Ok((some, avg10("full ")?))
}

/// The `oom_kill N` line of `/proc/vmstat`.
pub(super) fn parse_oom_kills(path: &str, text: &str) -> Result<u64, CollectError> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .ok_or_else(|| parse_error(path, "no 'oom_kill' line"))?
        .trim()
        .parse()
        .map_err(|_| parse_error(path, "'oom_kill' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded proc tree.
    fn fixture_root(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/pressure")
            .join(name)
    }

    fn values(out: &[Sample]) -> Vec<String> {
        out.iter().map(|(k, v)| format!("{k} {v}")).collect()
    }

    #[test]
    fn recorded_kernel_6_files() {
        let p = Pressure::at_root(&fixture_root("linux-6.18"));
        let mut out = Vec::new();
        p.collect(&mut out).expect("collect");
        assert_eq!(
            values(&out),
            [
                "psi.cpu_some_pct 34.22",
                "psi.mem_some_pct 0.18",
                "psi.mem_full_pct 0.13",
                "psi.io_some_pct 6.62",
                "psi.io_full_pct 4.67",
                "mem.oom_kills 3",
            ]
        );
    }

    #[test]
    fn older_kernel_without_cpu_full_and_without_io_pressure() {
        // 5.4: cpu has no "full" line; this fixture has no io file at all (as with psi=0
        // for one file) and vmstat without oom_kill (as before 4.13).
        let p = Pressure::at_root(&fixture_root("linux-5.4"));
        assert_eq!(p.psi.len(), 2);
        assert!(p.vmstat.is_none());
        let mut out = Vec::new();
        p.collect(&mut out).expect("collect");
        assert_eq!(
            values(&out),
            [
                "psi.cpu_some_pct 0.5",
                "psi.mem_some_pct 0",
                "psi.mem_full_pct 0",
            ]
        );
    }

    #[test]
    fn no_proc_tree_switches_everything_off() {
        let p = Pressure::at_root(Path::new("/nonexistent"));
        assert!(p.psi.is_empty() && p.vmstat.is_none());
        let mut out = Vec::new();
        p.collect(&mut out).expect("nothing to do");
        assert!(out.is_empty());
    }

    #[test]
    fn bad_psi_and_vmstat_text_is_an_error() {
        for bad in [
            "",
            "full avg10=1.00 avg60=0 avg300=0 total=0",
            "some avg10=x avg60=0",
            "some avg60=1.0",
            "some avg10=-1.0",
        ] {
            assert!(parse_psi("/p", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_psi("/p", "some avg10=1.50 avg60=0.00 avg300=0.00 total=12\n").expect("ok"),
            (1.5, None)
        );
        assert!(parse_oom_kills("/v", "pgfault 1\n").is_err());
        assert!(parse_oom_kills("/v", "oom_kill x\n").is_err());
        assert_eq!(
            parse_oom_kills("/v", "a 1\noom_kill 7\nb 2\n").expect("ok"),
            7
        );
    }
}
