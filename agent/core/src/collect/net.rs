//! Network traffic per interface from `/proc/net/dev`: the kernel's byte and packet counters
//! as they are (`net.rx_bytes`, `net.rx_packets`, ...: Prometheus counters, so `rate()` works
//! at any scrape interval), and byte rates: the difference since the previous reading divided
//! by the time that actually passed. The loopback interface is skipped. A counter that went
//! backwards (interface re-created, driver reset) gives no rate for that reading rather than a
//! negative or huge one.
//!
//! Not here: error or drop counts; per-connection data.

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
        }
        self.prev = counters.into_iter().collect();
        self.at = Some(now);
    }
}

/// Parses `/proc/net/dev`: two header lines, then `iface: rx_bytes rx_packets ... (8 receive
/// fields) tx_bytes ...`. Leaves out `lo`.
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
        let (Some(&rx), Some(&rx_packets), Some(&tx), Some(&tx_packets)) =
            (fields.first(), fields.get(1), fields.get(8), fields.get(9))
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
            .filter(|(k, _)| k.name.ends_with("_per_s"))
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
}
