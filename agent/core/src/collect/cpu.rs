//! CPU metrics: usage in total and per core from `/proc/stat` tick counters (the same counters
//! `top` and `mpstat` use), load averages from `/proc/loadavg`, the mean clock frequency and CPU
//! temperature sensors.
//!
//! Usage is the share of ticks that were not idle or iowait since the previous reading
//! (steal counts as busy, as in sysinfo and htop). Not here: per-process CPU, or deciding when
//! to read (the [`super::Collector`] does).

use super::{CollectError, Sample, parse_error, pct, push, push_labelled, read};
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;
use std::io;
use sysinfo::Components;

const STAT: &str = "/proc/stat";
const LOADAVG: &str = "/proc/loadavg";
const CPUINFO: &str = "/proc/cpuinfo";

/// Busy and total ticks of one CPU (or all together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Ticks {
    busy: u64,
    total: u64,
}

impl Ticks {
    /// From the counters of a `cpu` line: user nice system idle iowait irq softirq steal
    /// guest guest_nice. Guest time is already included in user and nice.
    fn from_fields(f: &[u64]) -> Ticks {
        let total = f.iter().take(8).fold(0u64, |a, &b| a.saturating_add(b));
        let field = |i: usize| f.get(i).copied().unwrap_or(0);
        let idle = field(3).saturating_add(field(4));
        Ticks {
            busy: total.saturating_sub(idle),
            total,
        }
    }

    /// Usage in percent between `prev` and `self`; `None` if no tick passed or the counters
    /// went backwards (a CPU taken offline and back).
    fn usage_since(self, prev: Ticks) -> Option<f64> {
        let total = self.total.checked_sub(prev.total)?;
        let busy = self.busy.checked_sub(prev.busy)?;
        if total == 0 {
            return None;
        }
        Some(pct(busy.min(total), total))
    }
}

/// What one read of `/proc/stat` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stat {
    total: Ticks,
    /// Online CPUs by kernel number.
    cores: Vec<(u32, Ticks)>,
    /// Boot time, seconds since the epoch.
    pub(super) btime: u64,
}

impl Stat {
    /// Number of online logical CPUs.
    pub(super) fn cores(&self) -> usize {
        self.cores.len()
    }
}

/// Parses `/proc/stat`.
pub(super) fn parse_stat(text: &str) -> Result<Stat, CollectError> {
    let mut total = None;
    let mut cores = Vec::new();
    let mut btime = None;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some(n) = first.strip_prefix("cpu") {
            let fields: Vec<u64> = words.map_while(|w| w.parse().ok()).collect();
            if fields.len() < 4 {
                return Err(parse_error(STAT, format!("short line '{first}'")));
            }
            let ticks = Ticks::from_fields(&fields);
            if n.is_empty() {
                total = Some(ticks);
            } else if let Ok(n) = n.parse() {
                cores.push((n, ticks));
            }
        } else if first == "btime" {
            btime = words.next().and_then(|w| w.parse().ok());
        }
    }
    Ok(Stat {
        total: total.ok_or_else(|| parse_error(STAT, "no 'cpu' line"))?,
        cores,
        btime: btime.ok_or_else(|| parse_error(STAT, "no 'btime' line"))?,
    })
}

/// How the clock frequency is read on this machine, found on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreqSource {
    Unknown,
    /// `/sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq` (kHz), one small file per CPU.
    Sysfs,
    /// `cpu MHz` lines of `/proc/cpuinfo` (VMs and machines without a cpufreq driver).
    Cpuinfo,
    /// Neither exists: no frequency metric.
    None,
}

/// CPU state kept between readings.
pub(super) struct Cpu {
    prev_total: Option<Ticks>,
    prev_cores: HashMap<u32, Ticks>,
    core_ids: Vec<u32>,
    freq: FreqSource,
    sensors: Vec<(String, usize)>,
    components: Option<Components>,
}

impl Cpu {
    pub(super) fn new() -> Cpu {
        // The sensor list is read once: hwmon devices do not come and go on a running server.
        let components = Components::new_with_refreshed_list()
            .map_err(|error| tracing::debug!(%error, "no temperature sensors"))
            .ok();
        let sensors = components
            .as_ref()
            .map(|c| cpu_sensors(c.iter().map(|c| c.label().to_owned())))
            .unwrap_or_default();
        Cpu {
            prev_total: None,
            prev_cores: HashMap::new(),
            core_ids: Vec::new(),
            freq: FreqSource::Unknown,
            sensors,
            components,
        }
    }

    /// `cpu.usage_pct` and `cpu.core_usage_pct{core}` since the previous call.
    pub(super) fn usage(&mut self, stat: &Stat, out: &mut Vec<Sample>) {
        if let Some(u) = self.prev_total.and_then(|p| stat.total.usage_since(p)) {
            push(out, Metric::CpuUsagePct, u);
        }
        self.prev_total = Some(stat.total);
        for &(n, ticks) in &stat.cores {
            if let Some(u) = self.prev_cores.get(&n).and_then(|&p| ticks.usage_since(p)) {
                push_labelled(out, Metric::CpuCoreUsagePct, &n.to_string(), u);
            }
        }
        self.prev_cores = stat.cores.iter().copied().collect();
        self.core_ids = stat.cores.iter().map(|&(n, _)| n).collect();
    }

    /// `cpu.freq_mhz`: the mean over online CPUs.
    pub(super) fn frequency(&mut self, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        if matches!(self.freq, FreqSource::Unknown | FreqSource::Sysfs) {
            match self.sysfs_mhz() {
                Ok(Some(mhz)) => {
                    self.freq = FreqSource::Sysfs;
                    push(out, Metric::CpuFreqMhz, mhz);
                    return Ok(());
                }
                Ok(None) if self.freq == FreqSource::Unknown && !self.core_ids.is_empty() => {
                    self.freq = FreqSource::Cpuinfo;
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if self.freq == FreqSource::Cpuinfo {
            match cpuinfo_mhz(&read(CPUINFO)?) {
                Some(mhz) => push(out, Metric::CpuFreqMhz, mhz),
                None => self.freq = FreqSource::None,
            }
        }
        Ok(())
    }

    /// Mean of `scaling_cur_freq` in MHz; `None` if there is no cpufreq driver.
    fn sysfs_mhz(&self) -> Result<Option<f64>, CollectError> {
        let mut sum = 0.0;
        let mut n = 0u32;
        let mut text = String::new();
        for id in &self.core_ids {
            let path = format!("/sys/devices/system/cpu/cpu{id}/cpufreq/scaling_cur_freq");
            match super::read_into(&path, &mut text) {
                Ok(()) => {
                    let khz: f64 = text
                        .trim()
                        .parse()
                        .map_err(|_| parse_error(&path, format!("'{}'", text.trim())))?;
                    sum += khz / 1000.0;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(CollectError::Read { path, source }),
            }
        }
        Ok((n > 0).then(|| sum / f64::from(n)))
    }

    /// `cpu.temp_c{sensor}` for the CPU sensors found at start.
    pub(super) fn temperatures(&mut self, out: &mut Vec<Sample>) {
        let Some(components) = self.components.as_mut() else {
            return;
        };
        for (label, index) in &self.sensors {
            let Some(c) = components.get_mut(*index) else {
                continue;
            };
            c.refresh();
            if let Some(t) = c.temperature().filter(|t| t.is_finite()) {
                push_labelled(out, Metric::CpuTempC, label, f64::from(t));
            }
        }
    }
}

/// The CPU sensors among hwmon/thermal labels, with their index, labels made unique.
fn cpu_sensors(labels: impl Iterator<Item = String>) -> Vec<(String, usize)> {
    const CPU_DRIVERS: [&str; 6] = [
        "coretemp",
        "k10temp",
        "zenpower",
        "cpu_thermal",
        "cpu-thermal",
        "x86_pkg_temp",
    ];
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut sensors = Vec::new();
    for (i, label) in labels.enumerate() {
        let lower = label.to_ascii_lowercase();
        if !CPU_DRIVERS.iter().any(|d| lower.starts_with(d)) {
            continue;
        }
        let count = seen.entry(label.clone()).or_insert(0);
        *count += 1;
        let unique = if *count == 1 {
            label
        } else {
            format!("{label} #{count}")
        };
        sensors.push((unique, i));
    }
    sensors
}

/// Mean of the `cpu MHz` lines of `/proc/cpuinfo`.
fn cpuinfo_mhz(text: &str) -> Option<f64> {
    let mhz: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    (!mhz.is_empty()).then(|| mhz.iter().sum::<f64>() / mhz.len() as f64)
}

/// `cpu.load1`, `cpu.load5`, `cpu.load15`.
pub(super) fn load(out: &mut Vec<Sample>) -> Result<(), CollectError> {
    let text = read(LOADAVG)?;
    let loads = parse_loadavg(&text).ok_or_else(|| parse_error(LOADAVG, text.trim()))?;
    push(out, Metric::CpuLoad1, loads[0]);
    push(out, Metric::CpuLoad5, loads[1]);
    push(out, Metric::CpuLoad15, loads[2]);
    Ok(())
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut w = text.split_ascii_whitespace().map(|w| w.parse::<f64>().ok());
    Some([w.next()??, w.next()??, w.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  100 0 50 800 50 0 0 0 0 0\n\
                          cpu0 60 0 20 400 20 0 0 0 0 0\n\
                          cpu1 40 0 30 400 30 0 0 0 0 0\n\
                          intr 1 2 3\nctxt 5\nbtime 1700000000\nprocesses 9\n";
    const STAT_B: &str = "cpu  250 0 50 850 50 0 0 0 0 0\n\
                          cpu0 200 0 20 410 20 0 0 0 0 0\n\
                          cpu1 50 0 30 440 30 0 0 0 0 0\n\
                          btime 1700000000\n";

    #[test]
    fn stat_parses_totals_cores_and_btime() {
        let s = parse_stat(STAT_A).expect("parse");
        assert_eq!(s.btime, 1_700_000_000);
        assert_eq!(s.cores(), 2);
        assert_eq!(
            s.total,
            Ticks {
                busy: 150,
                total: 1000
            }
        );
        assert!(parse_stat("cpu 1 2 3 4\n").is_err(), "no btime");
        assert!(parse_stat("btime 5\n").is_err(), "no cpu line");
        assert!(parse_stat("cpu 1\nbtime 5\n").is_err(), "short cpu line");
    }

    #[test]
    fn usage_is_busy_share_of_the_delta() {
        let mut cpu = Cpu::new();
        let mut out = Vec::new();
        cpu.usage(&parse_stat(STAT_A).expect("a"), &mut out);
        assert!(out.is_empty(), "first reading has no rate");
        cpu.usage(&parse_stat(STAT_B).expect("b"), &mut out);
        let get = |name: &str, core: Option<&str>| {
            out.iter()
                .find(|(k, _)| k.name == name && k.label("core") == core)
                .map(|&(_, v)| v)
        };
        // total: 150 busy of 200 ticks; cpu0: 140 of 150; cpu1: 10 of 50.
        assert_eq!(get("cpu.usage_pct", None), Some(75.0));
        assert_eq!(
            get("cpu.core_usage_pct", Some("0")),
            Some(140.0 * 100.0 / 150.0)
        );
        assert_eq!(get("cpu.core_usage_pct", Some("1")), Some(20.0));
    }

    #[test]
    fn counters_going_back_give_no_rate() {
        let a = Ticks {
            busy: 10,
            total: 100,
        };
        let b = Ticks {
            busy: 5,
            total: 200,
        };
        assert_eq!(b.usage_since(a), None);
        assert_eq!(a.usage_since(a), None, "no ticks passed");
    }

    #[test]
    fn loadavg_and_cpuinfo() {
        assert_eq!(
            parse_loadavg("0.54 0.33 0.12 1/81 5713\n"),
            Some([0.54, 0.33, 0.12])
        );
        assert_eq!(parse_loadavg("0.54 x"), None);
        let info = "processor\t: 0\ncpu MHz\t\t: 2000.000\nprocessor\t: 1\ncpu MHz\t\t: 3000.000\n";
        assert_eq!(cpuinfo_mhz(info), Some(2500.0));
        assert_eq!(cpuinfo_mhz("processor : 0\n"), None);
    }

    #[test]
    fn only_cpu_sensors_with_unique_labels() {
        let labels = [
            "coretemp Core 0",
            "nvme Composite",
            "coretemp Core 0",
            "k10temp Tctl",
        ];
        let s = cpu_sensors(labels.iter().map(|s| s.to_string()));
        let names: Vec<_> = s.iter().map(|(l, i)| (l.as_str(), *i)).collect();
        assert_eq!(
            names,
            [
                ("coretemp Core 0", 0),
                ("coretemp Core 0 #2", 2),
                ("k10temp Tctl", 3)
            ]
        );
    }
}
