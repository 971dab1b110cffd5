//! Watching a namespace mesh as an operator would, for `agent/tests/netns.rs`: rounds of
//! `meshmon status --format json` (one per node, in parallel), the worst staleness per host
//! they show, and a failure report with the agents' first warnings.
//!
//! Not here: the namespaces and agents (`netns`), the scenarios.

use super::netns::{Lab, NodeView};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one `meshmon status` may wait for its node.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Time between rounds of status polls.
pub const POLL: Duration = Duration::from_millis(500);

/// Polls `which` every [`POLL`] until `ok` holds for every one of them at once, or `deadline`
/// passes; `Ok(elapsed)`, or the last reason it did not hold.
pub fn wait_until(
    lab: &Lab,
    which: &[usize],
    deadline: Duration,
    ok: impl Fn(usize, &NodeView) -> Result<(), String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = String::from("never polled");
    while start.elapsed() < deadline {
        let mut all = true;
        for (i, _, r) in lab.statuses(which, STATUS_TIMEOUT) {
            let name = &lab.agents[i].name;
            if let Err(e) = r.and_then(|v| ok(i, &v)) {
                last = format!("{name}: {e}");
                all = false;
                break;
            }
        }
        if all {
            return Ok(start.elapsed());
        }
        std::thread::sleep(POLL);
    }
    Err(last)
}

/// Every name in `names` listed `up` by the node.
pub fn sees_all_up(v: &NodeView, names: &[String]) -> Result<(), String> {
    let missing: Vec<&String> = names.iter().filter(|n| !v.up(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("does not list {missing:?} as up"))
    }
}

/// The worst staleness seen per (observer, host), and every problem seen while polling.
#[derive(Default)]
pub struct Watch {
    pub worst: BTreeMap<(String, String), u64>,
    pub polls: usize,
    pub problems: Vec<String>,
}

impl Watch {
    /// One round of status polls of `which`; `judge` sees each answer with the time since `t0`.
    pub fn round(
        &mut self,
        lab: &Lab,
        which: &[usize],
        t0: Instant,
        mut judge: impl FnMut(&mut Watch, usize, Duration, &NodeView),
    ) {
        for (i, at, r) in lab.statuses(which, STATUS_TIMEOUT) {
            self.polls += 1;
            match r {
                Ok(v) => judge(self, i, at - t0, &v),
                Err(e) => self
                    .problems
                    .push(format!("t+{:.1}s: {e}", (at - t0).as_secs_f64())),
            }
        }
    }

    /// Records the staleness of `hosts` at `observer`; a host not `up` or staler than `max_ms`
    /// is a problem.
    pub fn own_side(
        &mut self,
        observer: &str,
        t: Duration,
        v: &NodeView,
        hosts: &[String],
        max_ms: u64,
    ) {
        for h in hosts {
            match v.hosts.get(h) {
                Some(hv) => {
                    let w = self
                        .worst
                        .entry((observer.to_owned(), h.clone()))
                        .or_default();
                    *w = (*w).max(hv.last_seen_ms_ago);
                    if hv.status != "up" || hv.last_seen_ms_ago > max_ms {
                        self.problems.push(format!(
                            "t+{:.1}s: {observer} lists {h} as {} ({} ms since its last frame)",
                            t.as_secs_f64(),
                            hv.status,
                            hv.last_seen_ms_ago
                        ));
                    }
                }
                None => self.problems.push(format!(
                    "t+{:.1}s: {observer} does not list {h}",
                    t.as_secs_f64()
                )),
            }
        }
    }

    pub fn worst_of(&self) -> u64 {
        self.worst.values().copied().max().unwrap_or(0)
    }

    pub fn print(&self, label: &str) {
        eprintln!(
            "{label}: {} status polls; worst staleness {} ms",
            self.polls,
            self.worst_of()
        );
        let mut by_observer: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((o, h), ms) in &self.worst {
            by_observer.entry(o).or_default().push(format!("{h}:{ms}"));
        }
        for (o, v) in by_observer {
            eprintln!("  at {o} (host:worst ms): {}", v.join(" "));
        }
    }
}

/// The first warnings and errors of each agent's log, for a failure report.
pub fn log_digest(dir: &Path, names: &[String]) -> String {
    let mut out = String::new();
    for n in names {
        let log = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(6)
            .collect();
        if !lines.is_empty() {
            out.push_str(&format!("--- {n}\n{}\n", lines.join("\n")));
        }
    }
    out
}

/// Prints the agents' first warnings and, with `NETNS_KEEP=1`, keeps the test's directory
/// (configs, logs, the store) for a post-mortem.
pub fn post_mortem(dir: &Path, names: &[String]) {
    eprintln!("first warnings of the agents:\n{}", log_digest(dir, names));
    if std::env::var_os("NETNS_KEEP").is_some() {
        let kept = dir.with_extension("kept");
        match std::fs::rename(dir, &kept) {
            Ok(()) => eprintln!(
                "NETNS_KEEP: logs, configs and store kept in {}",
                kept.display()
            ),
            Err(e) => eprintln!("NETNS_KEEP: cannot keep {}: {e}", dir.display()),
        }
    }
}

pub fn fail(why: &str, dir: &Path, names: &[String]) -> ! {
    post_mortem(dir, names);
    panic!("{why}");
}

pub fn finish(failures: Vec<String>, dir: &Path, names: &[String]) {
    if !failures.is_empty() {
        post_mortem(dir, names);
    }
    assert!(failures.is_empty(), "\n- {}", failures.join("\n- "));
}
