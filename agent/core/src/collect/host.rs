//! The machine itself: `host.uptime_s` from `/proc/uptime`, and [`HostInfo`] (OS name from
//! os-release, kernel and architecture from `uname`, boot time and CPU count from `/proc/stat`).
//!
//! `host.boot_time_s` is emitted with the CPU readings, which parse `/proc/stat` already.
//! Not here: the agent's own version, tags, interval and role, which the caller fills in.

use super::{CollectError, Sample, cpu, parse_error, push, read};
use meshmon_proto::metrics::Metric;
use meshmon_proto::payload::HostInfo;

const UPTIME: &str = "/proc/uptime";

/// `host.uptime_s`, whole seconds.
pub(super) fn uptime(out: &mut Vec<Sample>) -> Result<(), CollectError> {
    let text = read(UPTIME)?;
    let secs = text
        .split_ascii_whitespace()
        .next()
        .and_then(|w| w.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| parse_error(UPTIME, text.trim()))?;
    push(out, Metric::HostUptimeS, secs.floor());
    Ok(())
}

/// What this machine is. Fields that cannot be read stay empty or 0.
pub(super) fn info() -> HostInfo {
    let stat = read("/proc/stat").and_then(|t| cpu::parse_stat(&t)).ok();
    HostInfo {
        os: os_name(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: sysinfo::System::cpu_arch(),
        boot_time_s: stat.as_ref().map_or(0, |s| s.btime),
        cores: stat
            .as_ref()
            .map_or(0, |s| u32::try_from(s.cores()).unwrap_or(u32::MAX)),
        ..HostInfo::default()
    }
}

/// `PRETTY_NAME` of os-release (e.g. `Debian GNU/Linux 13 (trixie)`), else sysinfo's guess.
fn os_name() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| pretty_name(&std::fs::read_to_string(p).ok()?))
        .or_else(|| sysinfo::System::long_os_version().ok())
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// The `PRETTY_NAME` value of an os-release file, unquoted.
fn pretty_name(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?
        .trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(value);
    let mut out = String::with_capacity(unquoted.len());
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(pretty_name("PRETTY_NAME=NixOS").as_deref(), Some("NixOS"));
        assert_eq!(
            pretty_name("PRETTY_NAME='A \\\"b\\\"'").as_deref(),
            Some("A \"b\"")
        );
        assert_eq!(pretty_name("NAME=x\nPRETTY_NAME=\"\"\n"), None);
    }

    #[test]
    fn info_describes_this_machine() {
        let i = info();
        assert!(!i.os.is_empty() && !i.kernel.is_empty() && !i.arch.is_empty());
        assert!(i.cores >= 1);
        assert!(i.boot_time_s > 1_000_000_000);
    }
}
