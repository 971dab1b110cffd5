//! Memory and swap from `/proc/meminfo`, with the meaning `free -b` gives them on current procps:
//! used = total - available, swap used = swap total - swap free.
//!
//! Not here: per-process or per-cgroup memory.

use super::{CollectError, Sample, parse_error, pct, push, read};
use meshmon_proto::metrics::Metric;

const MEMINFO: &str = "/proc/meminfo";

/// The `/proc/meminfo` fields that are sent, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MemInfo {
    total: u64,
    available: u64,
    swap_total: u64,
    swap_free: u64,
}

/// `mem.*` and `swap.*`.
pub(super) fn collect(out: &mut Vec<Sample>) -> Result<(), CollectError> {
    let m = parse(&read(MEMINFO)?)?;
    let used = m.total.saturating_sub(m.available);
    push(out, Metric::MemTotalBytes, m.total as f64);
    push(out, Metric::MemAvailableBytes, m.available as f64);
    push(out, Metric::MemUsedBytes, used as f64);
    push(out, Metric::MemUsedPct, pct(used, m.total));
    push(out, Metric::SwapTotalBytes, m.swap_total as f64);
    push(
        out,
        Metric::SwapUsedBytes,
        m.swap_total.saturating_sub(m.swap_free) as f64,
    );
    Ok(())
}

fn parse(text: &str) -> Result<MemInfo, CollectError> {
    let (mut total, mut available, mut swap_total, mut swap_free) = (None, None, None, None);
    let (mut free, mut buffers, mut cached) = (0, 0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let Some(n) = words.next().and_then(|w| w.parse::<u64>().ok()) else {
            continue;
        };
        // Values are in KiB ("kB") except the few unitless counters, which are not used.
        let bytes = n.saturating_mul(1024);
        match key {
            "MemTotal" => total = Some(bytes),
            "MemAvailable" => available = Some(bytes),
            "MemFree" => free = bytes,
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            "SwapTotal" => swap_total = Some(bytes),
            "SwapFree" => swap_free = Some(bytes),
            _ => {}
        }
    }
    let total = total.ok_or_else(|| parse_error(MEMINFO, "no 'MemTotal'"))?;
    Ok(MemInfo {
        total,
        // Kernels before 3.14 lack MemAvailable; this is the estimate procps used then.
        available: available.unwrap_or_else(|| free.saturating_add(buffers).saturating_add(cached)),
        swap_total: swap_total.unwrap_or(0),
        swap_free: swap_free.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_into_bytes() {
        let text = "MemTotal:       24684084 kB\nMemFree:        23283312 kB\n\
                    MemAvailable:   23963956 kB\nBuffers:            3744 kB\n\
                    HugePages_Total:       0\nSwapTotal:        1000 kB\nSwapFree:          400 kB\n";
        let m = parse(text).expect("parse");
        assert_eq!(m.total, 24_684_084 * 1024);
        assert_eq!(m.available, 23_963_956 * 1024);
        assert_eq!((m.swap_total, m.swap_free), (1_024_000, 409_600));
    }

    #[test]
    fn old_kernel_without_mem_available() {
        let m = parse("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n")
            .expect("parse");
        assert_eq!(m.available, 35 * 1024);
        assert!(parse("MemFree: 1 kB\n").is_err());
    }

    #[test]
    fn used_is_total_minus_available() {
        let mut out = Vec::new();
        collect(&mut out).expect("meminfo on linux");
        let get = |m: Metric| {
            out.iter()
                .find(|(k, _)| k.name == m.name())
                .map(|&(_, v)| v)
        };
        let (total, avail, used) = (
            get(Metric::MemTotalBytes).expect("total"),
            get(Metric::MemAvailableBytes).expect("available"),
            get(Metric::MemUsedBytes).expect("used"),
        );
        assert_eq!(used, total - avail);
        assert!(used > 0.0 && used < total);
    }
}
