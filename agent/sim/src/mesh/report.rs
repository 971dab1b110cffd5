//! The figures of one simulated run, and the table the `gossip_sim` example prints: one
//! column per mesh size, one row per figure.
//!
//! Not here: measuring them (`engine`).

use super::Fault;
use super::measure::Spread;
use std::fmt::Write as _;
use std::time::Duration;

/// The measured (steady) window.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub window_s: f64,
    /// Per node per second: live gossip, control (link frames), backfill, total.
    pub rx_frames: [Spread; 4],
    pub rx_bytes: [Spread; 4],
    /// Relative message redundancy: live gossip frames received / deliveries - 1.
    pub rmr: f64,
    /// Origination to first delivery, frames originated in the window.
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub deliveries: u64,
    /// `Gossip::memory()` per node at the end of the window: all of it, and what grows with
    /// the origins divided by the origins known.
    pub memory_total: Spread,
    pub memory_per_origin: Spread,
    /// Median bytes per origin of each part: de-duplication windows, host table,
    /// descriptors (the latest sealed host info and series table), broadcast trees (lazy links, newest frame, graft cache).
    pub memory_parts: [f64; 4],
    /// Frames the machines dropped in the window (credits, rate limits, stale).
    pub dropped: u64,
}

/// After the fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heal {
    /// From the kill (or the partition's end) to the last late or missing delivery of a live
    /// origin's frame at a live node (a missing one counts at its origination + threshold).
    pub time_us: u64,
    /// False when frames originated in the run's last judged interval were still missing.
    pub healed: bool,
    /// Late deliveries (over the threshold) after the fault.
    pub late: u64,
    pub late_threshold_us: u64,
}

/// The partition scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartitionFigures {
    pub duration_s: f64,
    pub cut_links: usize,
    /// The longest shortest path inside each half: beyond the hop limit, frames cannot
    /// cross a half while it is cut off.
    pub half_diameters: [Option<usize>; 2],
    /// (frame, node) pairs on the origin's own side never delivered, from the last interval
    /// before the partition to the run's end (0 wanted).
    pub same_side_missed: u64,
    /// (frame, node) pairs across the cut never delivered, from the last interval before the
    /// partition to the run's end: plain nodes do not backfill.
    pub cross_lost: u64,
}

/// A surviving node that no longer hears a surviving origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    pub node: usize,
    pub origin: usize,
    /// Since its last frame of the origin, at the end of the run.
    pub silent_ms: u64,
    /// Hop count the last accepted frame had travelled.
    pub last_hops: u8,
    /// Shortest path between them among the nodes alive at the end.
    pub distance: usize,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Report {
    pub nodes: usize,
    pub edges: usize,
    /// Mean, smallest, largest.
    pub degree: (f64, usize, usize),
    pub diameter: Option<usize>,
    /// Among the nodes alive at the end.
    pub diameter_after: Option<usize>,
    pub fault: Fault,
    pub killed: usize,
    pub sim_s: f64,
    pub wall: Duration,
    pub events: u64,
    pub steady: Figures,
    /// (frame, node) pairs: frames of surviving origins never delivered to a surviving node,
    /// outside a partition (0 wanted).
    pub missed: u64,
    /// (node, host) pairs: a surviving node without a surviving host in its host table.
    pub hosts_missing: u64,
    /// (node, origin) pairs of survivors where the node heard nothing from the origin in the
    /// run's last two intervals, and the first 20 of them.
    pub stale_pairs: u64,
    pub stale: Vec<Stale>,
    pub heal: Heal,
    pub partition: Option<PartitionFigures>,
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn si(v: f64) -> String {
    if v >= 10e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 10e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn pair(s: Spread) -> String {
    format!("{} / {}", si(s.median), si(s.max))
}

fn heal(h: &Heal) -> String {
    if h.healed {
        format!("{:.2}", h.time_us as f64 / 1e6)
    } else {
        format!("not healed ({:.2})", h.time_us as f64 / 1e6)
    }
}

/// The table: one column per run of `kills` (N = ...), rows of figures; then the partition
/// runs, matched by node count.
pub fn table(kills: &[Report], partitions: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((name.to_owned(), kills.iter().map(f).collect()));
    };
    row("nodes", &|r| r.nodes.to_string());
    row("links (degree mean, min-max)", &|r| {
        format!(
            "{} ({:.1}, {}-{})",
            r.edges, r.degree.0, r.degree.1, r.degree.2
        )
    });
    row("diameter (hops)", &|r| {
        r.diameter.map_or("disconnected".into(), |d| d.to_string())
    });
    row("measured window, s", &|r| {
        format!("{:.0}", r.steady.window_s)
    });
    row("rx frames/node/s live, med / max", &|r| {
        pair(r.steady.rx_frames[0])
    });
    row("rx frames/node/s control", &|r| pair(r.steady.rx_frames[1]));
    row("rx frames/node/s backfill", &|r| {
        pair(r.steady.rx_frames[2])
    });
    row("rx frames/node/s total", &|r| pair(r.steady.rx_frames[3]));
    row("rx frames/node/s total / hosts", &|r| {
        format!(
            "{:.2} / {:.2}",
            r.steady.rx_frames[3].median / r.nodes as f64,
            r.steady.rx_frames[3].max / r.nodes as f64
        )
    });
    row("rx bytes/node/s live, med / max", &|r| {
        pair(r.steady.rx_bytes[0])
    });
    row("rx bytes/node/s control", &|r| pair(r.steady.rx_bytes[1]));
    row("rx bytes/node/s total", &|r| pair(r.steady.rx_bytes[3]));
    row("RMR (live rx / deliveries - 1)", &|r| {
        format!("{:.2}", r.steady.rmr)
    });
    row("latency p50 / p99 / max, ms", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.steady.latency_p50_us),
            ms(r.steady.latency_p99_us),
            ms(r.steady.latency_max_us)
        )
    });
    row("frames dropped by machines", &|r| {
        r.steady.dropped.to_string()
    });
    row("state/node, KiB med / max", &|r| {
        format!(
            "{:.0} / {:.0}",
            r.steady.memory_total.median / 1024.0,
            r.steady.memory_total.max / 1024.0
        )
    });
    row("state bytes per origin, med", &|r| {
        format!("{:.0}", r.steady.memory_per_origin.median)
    });
    row("  of which dedup/hosts/descr./trees", &|r| {
        let p = r.steady.memory_parts;
        format!("{:.0}/{:.0}/{:.0}/{:.0}", p[0], p[1], p[2], p[3])
    });
    row("killed at once (diameter after)", &|r| {
        format!(
            "{} ({})",
            r.killed,
            r.diameter_after.map_or("-".into(), |d| d.to_string())
        )
    });
    row("heal after kills, s (late threshold ms)", &|r| {
        format!("{} ({})", heal(&r.heal), ms(r.heal.late_threshold_us))
    });
    row("late deliveries after kills", &|r| r.heal.late.to_string());
    row("frames missed for good (live)", &|r| r.missed.to_string());
    row("hosts missing from host tables", &|r| {
        r.hosts_missing.to_string()
    });
    row("node-origin pairs silent at the end", &|r| {
        r.stale_pairs.to_string()
    });
    let find = |n: usize| partitions.iter().find(|p| p.nodes == n);
    let mut prow = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((
            name.to_owned(),
            kills
                .iter()
                .map(|k| find(k.nodes).map_or("-".into(), f))
                .collect(),
        ));
    };
    prow("partition: links cut, duration s", &|r| {
        r.partition.map_or("-".into(), |p| {
            format!("{}, {:.0}", p.cut_links, p.duration_s)
        })
    });
    prow("partition: diameter of each half", &|r| {
        r.partition.map_or("-".into(), |p| {
            let d = |x: Option<usize>| x.map_or("-".into(), |d| d.to_string());
            format!("{}, {}", d(p.half_diameters[0]), d(p.half_diameters[1]))
        })
    });
    prow("partition: heal, s", &|r| heal(&r.heal));
    prow("partition: same-side frames missed", &|r| {
        r.partition
            .map_or("-".into(), |p| p.same_side_missed.to_string())
    });
    prow("partition: cross-side pairs lost", &|r| {
        r.partition.map_or("-".into(), |p| p.cross_lost.to_string())
    });
    prow("partition: missed before it, hosts missing", &|r| {
        format!("{}, {}", r.missed, r.hosts_missing)
    });
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((name.to_owned(), kills.iter().map(f).collect()));
    };
    row("simulated s, events", &|r| {
        format!("{:.0}, {}", r.sim_s, si(r.events as f64))
    });
    row("wall s (kill run)", &|r| {
        format!("{:.1}", r.wall.as_secs_f64())
    });
    let mut prow2 = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((
            name.to_owned(),
            kills
                .iter()
                .map(|k| find(k.nodes).map_or("-".into(), f))
                .collect(),
        ));
    };
    prow2("wall s (partition run)", &|r| {
        format!("{:.1}", r.wall.as_secs_f64())
    });

    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..kills.len())
        .map(|i| rows.iter().map(|r| r.1[i].len()).max().unwrap_or(0).max(8))
        .collect();
    let mut s = String::new();
    for (i, (name, cells)) in rows.iter().enumerate() {
        let _ = write!(s, "| {name:<w0$} |");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(s, " {c:>w$} |");
        }
        s.push('\n');
        if i == 0 {
            let _ = write!(s, "|{}|", "-".repeat(w0 + 2));
            for w in &widths {
                let _ = write!(s, "{}:|", "-".repeat(w + 1));
            }
            s.push('\n');
        }
    }
    s
}
