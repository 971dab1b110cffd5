//! Network traffic per interface from `/proc/net/dev`: the kernel's byte and packet counters
//! as they are (`net.rx_bytes`, `net.rx_packets`, ...: Prometheus counters, so `rate()` works
//! at any scrape interval), and byte rates: the difference since the previous reading divided
//! by the time that actually passed. The loopback interface is skipped. A counter that went
//! backwards (interface re-created, driver reset) gives no rate for that reading rather than a
//! negative or huge one.
//!
//! Errors and drops: the receive and transmit `errs` and `drop` columns summed per interface
//! as the counters `net.errors{iface}` and `net.drops{iface}`, and each column as a rate
//! (`net.rx_errors_per_s`, `net.tx_errors_per_s`, `net.rx_drops_per_s`, `net.tx_drops_per_s`).
//!
//! Not here: per-connection data, the other error columns (fifo, frame, carrier, collisions).

use super::{CollectError, Sample, parse_error, push_labelled, read};
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const NET_DEV: &str = "/proc/net/dev";

/// Received and transmitted byte and packet counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    rx: u64,
    tx: u64,
    rx_packets: u64,
    tx_packets: u64,
    rx_errors: u64,
    tx_errors: u64,
    rx_drops: u64,
    tx_drops: u64,
}

/// The previous reading.
#[derive(Debug, Default)]
pub(super) struct Net {
    prev: HashMap<String, Counters>,
    at: Option<Instant>,
}

impl Net {
    /// The counters (`net.rx_bytes{iface}`, `net.tx_bytes`, `net.rx_packets`,
    /// `net.tx_packets`), and `net.rx_bytes_per_s{iface}` and `net.tx_bytes_per_s{iface}`
    /// since the previous call.
    pub(super) fn collect(&mut self, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let text = read(NET_DEV)?;
        let now = Instant::now();
        let counters = parse(&text)?;
        let elapsed = self.at.map(|at| now.saturating_duration_since(at));
        self.update(counters, now, elapsed, out);
        Ok(())
    }

    fn update(
        &mut self,
        counters: Vec<(String, Counters)>,
        now: Instant,
        elapsed: Option<Duration>,
        out: &mut Vec<Sample>,
    ) {
        let secs = elapsed.map_or(0.0, |e| e.as_secs_f64());
        for (iface, c) in &counters {
            // Exact below 2^53 (8 PiB).
            for (metric, v) in [
                (Metric::NetRxBytes, c.rx),
                (Metric::NetTxBytes, c.tx),
                (Metric::NetRxPackets, c.rx_packets),
                (Metric::NetTxPackets, c.tx_packets),
                (Metric::NetErrors, c.rx_errors.saturating_add(c.tx_errors)),
                (Metric::NetDrops, c.rx_drops.saturating_add(c.tx_drops)),
            ] {
                push_labelled(out, metric, iface, v as f64);
            }
            let Some(p) = self.prev.get(iface).filter(|_| secs > 0.0) else {
                continue;
            };
            if let Some(rx) = c.rx.checked_sub(p.rx) {
                push_labelled(out, Metric::NetRxBytesPerS, iface, rx as f64 / secs);
            }
            if let Some(tx) = c.tx.checked_sub(p.tx) {
                push_labelled(out, Metric::NetTxBytesPerS, iface, tx as f64 / secs);
            }
            for (metric, now, before) in [
                (Metric::NetRxErrorsPerS, c.rx_errors, p.rx_errors),
                (Metric::NetTxErrorsPerS, c.tx_errors, p.tx_errors),
                (Metric::NetRxDropsPerS, c.rx_drops, p.rx_drops),
                (Metric::NetTxDropsPerS, c.tx_drops, p.tx_drops),
            ] {
                if let Some(d) = now.checked_sub(before) {
                    push_labelled(out, metric, iface, d as f64 / secs);
                }
            }
        }
        self.prev = counters.into_iter().collect();
        self.at = Some(now);
    }
}

/// Parses `/proc/net/dev`: two header lines, then `iface: rx_bytes rx_packets rx_errs rx_drop
/// ... (8 receive fields) tx_bytes tx_packets tx_errs tx_drop ...`. Leaves out `lo`.
fn parse(text: &str) -> Result<Vec<(String, Counters)>, CollectError> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let bad = || parse_error(NET_DEV, format!("line '{}'", line.trim()));
        let (iface, rest) = line.split_once(':').ok_or_else(bad)?;
        let iface = iface.trim();
        if iface == "lo" {
            continue;
        }
        let fields: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|w| w.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [
            rx,
            rx_packets,
            rx_errors,
            rx_drops,
            _,
            _,
            _,
            _,
            tx,
            tx_packets,
            tx_errors,
            tx_drops,
            ..,
        ] = fields[..]
        else {
            return Err(bad());
        };
        out.push((
            iface.to_owned(),
            Counters {
                rx,
                tx,
                rx_packets,
                tx_packets,
                rx_errors,
                tx_errors,
                rx_drops,
                tx_drops,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    fn dev(eth0_rx: u64, eth0_tx: u64) -> String {
        format!(
            "{HEADER}    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
             eth0: {eth0_rx}    2003    0    0    0     0          0         0   {eth0_tx}    1350    0    0    0     0       0          0\n"
        )
    }

    fn rates(out: &[Sample]) -> Vec<(String, String, f64)> {
        out.iter()
            .filter(|(k, _)| k.name.ends_with("_bytes_per_s"))
            .map(|(k, v)| {
                (
                    k.name.clone(),
                    k.label("iface").unwrap_or("").to_owned(),
                    *v,
                )
            })
            .collect()
    }

    #[test]
    fn parses_counters_without_loopback() {
        let c = parse(&dev(57_676_233, 134_338)).expect("parse");
        assert_eq!(
            c,
            [(
                "eth0".to_owned(),
                Counters {
                    rx: 57_676_233,
                    tx: 134_338,
                    rx_packets: 2003,
                    tx_packets: 1350,
                    rx_errors: 0,
                    tx_errors: 0,
                    rx_drops: 0,
                    tx_drops: 0,
                }
            )]
        );
        assert!(parse(&format!("{HEADER}eth0 1 2 3\n")).is_err());
        assert!(parse(&format!("{HEADER}eth0: 1 2 3\n")).is_err());
    }

    #[test]
    fn rate_is_delta_over_elapsed_and_never_negative() {
        let mut net = Net::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        net.update(parse(&dev(1000, 500)).expect("a"), t0, None, &mut out);
        assert!(rates(&out).is_empty(), "first reading has no rate");
        let counters: Vec<String> = out.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert_eq!(
            counters,
            [
                "net.rx_bytes{iface=\"eth0\"} 1000",
                "net.tx_bytes{iface=\"eth0\"} 500",
                "net.rx_packets{iface=\"eth0\"} 2003",
                "net.tx_packets{iface=\"eth0\"} 1350",
                "net.errors{iface=\"eth0\"} 0",
                "net.drops{iface=\"eth0\"} 0",
            ],
            "counters from the first reading on"
        );
        out.clear();
        let two_s = Duration::from_secs(2);
        net.update(
            parse(&dev(5000, 700)).expect("b"),
            t0 + two_s,
            Some(two_s),
            &mut out,
        );
        assert_eq!(
            rates(&out),
            [
                ("net.rx_bytes_per_s".into(), "eth0".into(), 2000.0),
                ("net.tx_bytes_per_s".into(), "eth0".into(), 100.0)
            ]
        );
        out.clear();
        // Counters reset (interface re-created): no rx value; tx still moved forward.
        net.update(
            parse(&dev(10, 900)).expect("c"),
            t0 + two_s * 2,
            Some(two_s),
            &mut out,
        );
        assert_eq!(
            rates(&out),
            [("net.tx_bytes_per_s".into(), "eth0".into(), 100.0)]
        );
        out.clear();
        // No time passed: no rate at all.
        net.update(
            parse(&dev(20, 950)).expect("d"),
            t0 + two_s * 2,
            Some(Duration::ZERO),
            &mut out,
        );
        assert!(rates(&out).is_empty());
    }

    /// A recorded laptop's `/proc/net/dev` (wlan0 with receive drops, a flaky USB NIC with
    /// errors), then the same 2 s later.
    const ERRS_A: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  912766    8412    0    0    0     0          0         0   912766    8412    0    0    0     0       0          0
 wlan0: 1830418815 1468012    0 1327    0     0          0         0 88912742  583131    0    0    0     0       0          0
enx00e04c680001: 3318231    4120   17    2    0    17          0         0   401121    2200    5    1    0     0       5          0
";
    const ERRS_B: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  912766    8412    0    0    0     0          0         0   912766    8412    0    0    0     0       0          0
 wlan0: 1830518815 1468112    0 1337    0     0          0         0 88913742  583141    0    0    0     0       0          0
enx00e04c680001: 3318231    4120   21    2    0    21          0         0   401121    2200    9    7    0     0       9          0
";

    #[test]
    fn errors_and_drops_as_counters_and_rates() {
        let mut net = Net::default();
        let (t0, two_s) = (Instant::now(), Duration::from_secs(2));
        let mut out = Vec::new();
        net.update(parse(ERRS_A).expect("a"), t0, None, &mut out);
        let pick = |out: &[Sample], prefix: &str| -> Vec<String> {
            out.iter()
                .filter(|(k, _)| k.name.starts_with(prefix))
                .map(|(k, v)| format!("{k} {v}"))
                .collect()
        };
        assert_eq!(
            pick(&out, "net.errors"),
            [
                "net.errors{iface=\"wlan0\"} 0",
                "net.errors{iface=\"enx00e04c680001\"} 22",
            ]
        );
        assert_eq!(
            pick(&out, "net.drops")[0],
            "net.drops{iface=\"wlan0\"} 1327"
        );
        assert!(
            pick(&out, "net.rx_errors").is_empty(),
            "no rate on the first reading"
        );
        out.clear();
        net.update(parse(ERRS_B).expect("b"), t0 + two_s, Some(two_s), &mut out);
        let errs: Vec<String> = [
            "net.rx_errors",
            "net.tx_errors",
            "net.rx_drops",
            "net.tx_drops",
        ]
        .iter()
        .flat_map(|p| pick(&out, p))
        .collect();
        assert_eq!(
            errs,
            [
                "net.rx_errors_per_s{iface=\"wlan0\"} 0",
                "net.rx_errors_per_s{iface=\"enx00e04c680001\"} 2",
                "net.tx_errors_per_s{iface=\"wlan0\"} 0",
                "net.tx_errors_per_s{iface=\"enx00e04c680001\"} 2",
                "net.rx_drops_per_s{iface=\"wlan0\"} 5",
                "net.rx_drops_per_s{iface=\"enx00e04c680001\"} 0",
                "net.tx_drops_per_s{iface=\"wlan0\"} 0",
                "net.tx_drops_per_s{iface=\"enx00e04c680001\"} 3",
            ]
        );
        assert_eq!(
            pick(&out, "net.drops")[1],
            "net.drops{iface=\"enx00e04c680001\"} 9"
        );
    }
}
