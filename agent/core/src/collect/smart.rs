//! The SMART/NVMe collector (`collect.smartctl`, every `collect.smart_interval`): finds drives
//! with `smartctl --scan --json`, reads each with `smartctl --json --xall -d TYPE DEVICE` and
//! publishes the `smart.*` series (label `device`) into [`Extras`] under the source `smart`.
//!
//! What is read, per drive (a series is sent only when the drive reports its field):
//! - `smart.passed`: `smart_status.passed` (1/0), every drive type;
//! - `smart.temp_c`: `temperature.current`, every drive type;
//! - `smart.power_on_hours`: `power_on_time.hours`, every drive type;
//! - `smart.percentage_used`: NVMe `nvme_smart_health_information_log.percentage_used`, SCSI
//!   `scsi_percentage_used_endurance_indicator`; ATA drives have no unambiguous field;
//! - `smart.media_errors`: NVMe `media_errors` only (ATA reallocated-sector counts and SCSI
//!   error counters mean different things per vendor);
//! - `smart.critical_warning`: NVMe `critical_warning` (the bit field as a number).
//!
//! Runs on its own thread; each smartctl run has a deadline. Not here: running the program and
//! reading its exit status (`smartctl`), self-tests, ATA attribute tables.

use super::smartctl::{self, Device, RunError, Smartctl};
use super::{Extras, Sample, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use serde_json::Value;
use std::time::Duration;
use tracing::{info, warn};

/// The source name in [`Extras`].
pub const SOURCE: &str = "smart";
/// A smartctl run past this is killed (a drive that hangs on a command).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The health figures of one drive; `None` where the drive does not report the field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub passed: Option<bool>,
    pub temp_c: Option<f64>,
    pub power_on_hours: Option<f64>,
    pub percentage_used: Option<f64>,
    pub media_errors: Option<f64>,
    pub critical_warning: Option<f64>,
}

/// Reads the health figures of a `smartctl --json --xall` report.
pub fn health(v: &Value) -> Health {
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64);
    let nvme = |f: &str| num(&format!("/nvme_smart_health_information_log/{f}"));
    Health {
        passed: v.pointer("/smart_status/passed").and_then(Value::as_bool),
        temp_c: num("/temperature/current"),
        power_on_hours: num("/power_on_time/hours"),
        percentage_used: nvme("percentage_used")
            .or_else(|| num("/scsi_percentage_used_endurance_indicator")),
        media_errors: nvme("media_errors"),
        critical_warning: nvme("critical_warning"),
    }
}

/// The series of one drive.
pub fn samples(device: &str, h: &Health, out: &mut Vec<Sample>) {
    let key = |m: Metric| SeriesKey::labelled(m, device);
    if let Some(p) = h.passed {
        out.push((key(Metric::SmartPassed), if p { 1.0 } else { 0.0 }));
    }
    for (m, v) in [
        (Metric::SmartTempC, h.temp_c),
        (Metric::SmartPowerOnHours, h.power_on_hours),
        (Metric::SmartPercentageUsed, h.percentage_used),
        (Metric::SmartMediaErrors, h.media_errors),
        (Metric::SmartCriticalWarning, h.critical_warning),
    ] {
        if let Some(v) = v {
            out.push((key(m), v));
        }
    }
}

/// What one round read.
#[derive(Debug, Default)]
pub struct Round {
    /// The series of the drives that could be read.
    pub samples: Vec<Sample>,
    /// Every drive the scan found.
    pub devices: Vec<Device>,
    /// The drives that could not be read, and why.
    pub failed: Vec<(String, RunError)>,
}

/// One round: scan, then read every drive.
pub fn round(s: &Smartctl, stop: &Stop) -> Result<Round, RunError> {
    let (scan, status) = s.json(&["--scan", "--json"], stop)?;
    smartctl::check_exit(&scan, status)?;
    let mut r = Round {
        devices: smartctl::scan_devices(&scan),
        ..Round::default()
    };
    for d in &r.devices {
        let args = ["--json", "--xall", "-d", &d.kind, &d.name];
        let read = s
            .json(&args, stop)
            .and_then(|(v, status)| smartctl::check_exit(&v, status).map(|()| v));
        match read {
            Ok(v) => samples(&d.name, &health(&v), &mut r.samples),
            Err(RunError::Stopped) => return Err(RunError::Stopped),
            Err(e) => r.failed.push((d.name.clone(), e)),
        }
    }
    Ok(r)
}

/// Starts the collector thread if `program` is set.
pub fn start(
    program: Option<&str>,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    let s = Smartctl {
        program: program?.to_owned(),
        timeout: RUN_TIMEOUT,
    };
    super::extra::spawn("collect-smart", "smart", extras, stop, move |e, st| {
        run(&s, interval, e, st)
    })
}

/// Reads SMART data every `interval` until `stop`, publishing under [`SOURCE`]. A problem is
/// logged once, when it first appears (and again only after it changed or went away).
pub fn run(s: &Smartctl, interval: Duration, extras: &Extras, stop: &Stop) {
    let mut last = String::new();
    loop {
        let state = match round(s, stop) {
            Err(RunError::Stopped) => return,
            Ok(r) => {
                extras.set(SOURCE, r.samples);
                describe(&s.program, &r.devices, &r.failed)
            }
            Err(e) => {
                extras.clear(SOURCE);
                let hint = match e {
                    RunError::NotFound(_) => {
                        "; install smartmontools or set collect.smartctl = \"\" to turn SMART off"
                    }
                    _ => "",
                };
                Problem::Warn(format!("smart collector: no smart.* metrics: {e}{hint}"))
            }
        };
        let text = state.text();
        if text != last {
            match state {
                Problem::Info(t) => info!("{t}"),
                Problem::Warn(t) => warn!("{t}"),
            }
            last = text;
        }
        if stop.sleep(interval) {
            return;
        }
    }
}

/// What a round has to say, at which level.
enum Problem {
    Info(String),
    Warn(String),
}

impl Problem {
    fn text(&self) -> String {
        match self {
            Problem::Info(t) | Problem::Warn(t) => t.clone(),
        }
    }
}

/// One line about a round: the drives read, or which could not be read and why.
fn describe(program: &str, devices: &[Device], failed: &[(String, RunError)]) -> Problem {
    if devices.is_empty() {
        return Problem::Info(format!(
            "smart collector: '{program} --scan' found no drives; no smart.* metrics"
        ));
    }
    if failed.is_empty() {
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        return Problem::Info(format!(
            "smart collector: reading {} drives ({})",
            names.len(),
            names.join(", ")
        ));
    }
    let names: Vec<&str> = failed.iter().map(|(d, _)| d.as_str()).collect();
    let first = failed[0].1.to_string();
    let hint = if first.contains("Permission denied") || first.contains("Operation not permitted") {
        " (smartctl needs root or CAP_SYS_RAWIO/CAP_SYS_ADMIN)"
    } else {
        ""
    };
    Problem::Warn(format!(
        "smart collector: cannot read {} of {} drives ({}): {first}{hint}",
        failed.len(),
        devices.len(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests;
