//! From containers' readings to series: rates over the time between two readings, the
//! per-container samples, and the fold of everything past the bound into `container="other"`.
//!
//! Series per container (label `container`): `container.running` (1/0), `container.info`
//! (always 1, labels `image` and `state`; engine containers only), `container.restarts`,
//! `container.healthy` (only with a healthcheck), and for a running container with a readable
//! cgroup `container.cpu_pct` (100 = one core), `container.mem_bytes`,
//! `container.mem_limit_bytes` (only when limited), `container.{net_rx,net_tx}_bytes_per_s`
//! (own network namespace only) and `container.blkio_{read,write}_bytes_per_s`.
//! `container="other"` carries the sums of CPU, memory, rates and restarts of the folded
//! containers, and in `container.running` how many of them run.

use super::cgroup::{self, Roots};
use super::{OTHER, Tracked};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::time::Instant;

/// One container's values this interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub name: String,
    pub image: String,
    pub state: String,
    pub running: bool,
    pub healthy: Option<bool>,
    pub restarts: Option<u64>,
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    pub net_rx: Option<f64>,
    pub net_tx: Option<f64>,
    pub blk_read: Option<f64>,
    pub blk_write: Option<f64>,
}

impl Row {
    /// Reads `t`'s cgroup and network counters at `now`; rates against its previous reading.
    pub(super) fn read(t: &mut Tracked, roots: &Roots, now: Instant) -> Row {
        let running = t.state == "running";
        let mut row = Row {
            name: t.name.clone(),
            image: t.image.clone(),
            state: t.state.clone(),
            running,
            healthy: t.inspect.as_ref().and_then(|i| i.healthy),
            restarts: t.inspect.as_ref().map(|i| i.restarts),
            ..Row::default()
        };
        let Some(cg) = t.cgroup.as_ref().filter(|_| running) else {
            t.prev = None;
            return row;
        };
        let mut u = cgroup::read(cg);
        if t.pid > 0
            && let Some((rx, tx)) = roots.net(t.pid)
        {
            (u.net_rx, u.net_tx) = (Some(rx), Some(tx));
        }
        row.mem_bytes = u.mem_bytes;
        row.mem_limit_bytes = u.mem_limit_bytes;
        if let Some((p, then)) = t.prev {
            let secs = now.duration_since(then).as_secs_f64();
            let rate = |a: Option<u64>, b: Option<u64>| {
                let d = b?.checked_sub(a?)?;
                (secs > 0.0).then(|| d as f64 / secs)
            };
            // µs per s / 10_000 = percent of one core.
            row.cpu_pct = rate(p.cpu_usec, u.cpu_usec).map(|r| r / 10_000.0);
            row.net_rx = rate(p.net_rx, u.net_rx);
            row.net_tx = rate(p.net_tx, u.net_tx);
            row.blk_read = rate(p.blk_read, u.blk_read);
            row.blk_write = rate(p.blk_write, u.blk_write);
        }
        t.prev = Some((u, now));
        row
    }

    fn push(&self, out: &mut Vec<(SeriesKey, f64)>, with_info: bool) {
        let key = |m| SeriesKey::labelled(m, self.name.clone());
        out.push((
            key(Metric::ContainerRunning),
            f64::from(u8::from(self.running)),
        ));
        if with_info && !self.image.is_empty() {
            let labels = [
                ("container", self.name.as_str()),
                ("image", &self.image),
                ("state", &self.state),
            ];
            let labels = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            out.push((SeriesKey::custom(Metric::ContainerInfo.name(), labels), 1.0));
        }
        let values = [
            (Metric::ContainerRestarts, self.restarts.map(|r| r as f64)),
            (
                Metric::ContainerHealthy,
                self.healthy.map(|h| f64::from(u8::from(h))),
            ),
            (Metric::ContainerCpuPct, self.cpu_pct),
            (Metric::ContainerMemBytes, self.mem_bytes.map(|b| b as f64)),
            (
                Metric::ContainerMemLimitBytes,
                self.mem_limit_bytes.map(|b| b as f64),
            ),
            (Metric::ContainerNetRxBytesPerS, self.net_rx),
            (Metric::ContainerNetTxBytesPerS, self.net_tx),
            (Metric::ContainerBlkioReadBytesPerS, self.blk_read),
            (Metric::ContainerBlkioWriteBytesPerS, self.blk_write),
        ];
        for (m, v) in values {
            if let Some(v) = v {
                out.push((key(m), v));
            }
        }
    }
}

/// Adds `b` into `a` (`None` + `None` stays `None`).
fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// The samples of every row: the first `max` (running first, then by name) on their own,
/// the rest, and `untracked_running` more running containers, folded into `other`.
pub fn samples(mut rows: Vec<Row>, untracked_running: usize, max: usize) -> Vec<(SeriesKey, f64)> {
    rows.sort_by(|a, b| (!a.running, &a.name).cmp(&(!b.running, &b.name)));
    let mut out = Vec::with_capacity(rows.len().min(max + 1) * 8);
    let folded = rows.split_off(rows.len().min(max));
    for r in &rows {
        r.push(&mut out, true);
    }
    if folded.is_empty() && untracked_running == 0 {
        return out;
    }
    let mut other = Row {
        name: OTHER.into(),
        ..Row::default()
    };
    let mut running = untracked_running;
    for r in folded {
        running += usize::from(r.running);
        other.restarts = sum(other.restarts, r.restarts);
        other.cpu_pct = sum(other.cpu_pct, r.cpu_pct);
        other.mem_bytes = sum(other.mem_bytes, r.mem_bytes);
        other.net_rx = sum(other.net_rx, r.net_rx);
        other.net_tx = sum(other.net_tx, r.net_tx);
        other.blk_read = sum(other.blk_read, r.blk_read);
        other.blk_write = sum(other.blk_write, r.blk_write);
    }
    other.push(&mut out, false);
    // `running` of `other` is a count, not a flag.
    if let Some(s) = out
        .iter_mut()
        .rev()
        .find(|(k, _)| k.name == Metric::ContainerRunning.name())
    {
        s.1 = running as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, running: bool, cpu: f64) -> Row {
        Row {
            name: name.into(),
            image: "img:1".into(),
            state: if running { "running" } else { "exited" }.into(),
            running,
            restarts: Some(1),
            cpu_pct: running.then_some(cpu),
            mem_bytes: running.then_some(100),
            ..Row::default()
        }
    }

    fn value(out: &[(SeriesKey, f64)], m: Metric, c: &str) -> Option<f64> {
        let key = SeriesKey::labelled(m, c);
        out.iter().find(|(k, _)| *k == key).map(|s| s.1)
    }

    #[test]
    fn past_the_bound_is_folded_into_other_running_first() {
        let mut rows: Vec<Row> = (0..5).map(|i| row(&format!("c{i}"), true, 10.0)).collect();
        rows.insert(0, row("a-stopped", false, 0.0));
        let out = samples(rows, 2, 3);
        for c in ["c0", "c1", "c2"] {
            assert_eq!(value(&out, Metric::ContainerCpuPct, c), Some(10.0), "{c}");
        }
        assert_eq!(value(&out, Metric::ContainerRunning, "a-stopped"), None);
        // c3, c4 (running) and a-stopped folded, plus 2 untracked running ones.
        assert_eq!(value(&out, Metric::ContainerRunning, OTHER), Some(4.0));
        assert_eq!(value(&out, Metric::ContainerCpuPct, OTHER), Some(20.0));
        assert_eq!(value(&out, Metric::ContainerMemBytes, OTHER), Some(200.0));
        assert_eq!(value(&out, Metric::ContainerRestarts, OTHER), Some(3.0));
        let info = out
            .iter()
            .filter(|(k, _)| k.name == "container.info")
            .count();
        assert_eq!(
            info, 3,
            "info for the containers with series of their own only"
        );
    }

    #[test]
    fn under_the_bound_there_is_no_other() {
        let out = samples(vec![row("a", true, 1.0)], 0, 50);
        assert!(out.iter().all(|(k, _)| k.label("container") != Some(OTHER)));
        let info = out
            .iter()
            .find(|(k, _)| k.name == "container.info")
            .expect("info");
        assert_eq!(info.0.label("image"), Some("img:1"));
        assert_eq!(info.0.label("state"), Some("running"));
        assert_eq!(
            value(&out, Metric::ContainerHealthy, "a"),
            None,
            "no healthcheck"
        );
    }
}
