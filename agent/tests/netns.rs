//! Real network faults: every `meshmon agent` in a network namespace of its own, linked by veth
//! pairs and bridges (`common::netns`), so that a cut is an interface going down and TCP
//! connections stall as on a pulled cable. What is judged is only what an operator sees:
//! `meshmon status --format json` run inside a node's namespace, and `meshmon query series`
//! on the dashboard's store. Nothing here depends on how the mesh forwards frames.
//!
//! - A cut link: a ring of 6 with 3 chords, one cable per mesh link (a bridge each), one end
//!   of one link set down for 10 s, then up again.
//! - A partition: 10 nodes on two bridges joined by a trunk, one a dashboard, a seeded random
//!   graph with links across; the trunk is down for 30 s, then up again.
//!
//! Both need root and `ip` (iproute2): without them they fail under `CI=true` and are skipped,
//! loudly, elsewhere. The measured figures are printed whatever happens; failures are collected
//! and reported together at the end.

mod common;

use common::netns::{Lab, NodeView, PORT};
use common::{key_file, serial};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Quiet collectors: these tests are about the mesh.
const COLLECT: &str =
    "[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\ngpu = false\n";
/// How long one `meshmon status` may wait for its node.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Time between rounds of status polls.
const POLL: Duration = Duration::from_millis(500);
/// A host heard less recently than this (at a 1 s interval) has a gap: a frame missed.
const MAX_STALE_MS: u64 = 2_500;
/// After a link is cut, the most a host may go unheard while the mesh routes around it (the
/// same bound as a killed node's in `mesh.rs`).
const MAX_REROUTE_MS: u64 = 3_000;
/// Largest hole allowed in a stored series (1 s interval, plus jitter).
const MAX_STORED_GAP_MS: i64 = 2_500;

fn node_toml(name: &str, listen: &str, neighbours: &[String], key: &Path, extra: &str) -> String {
    let n: Vec<String> = neighbours.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[node]\nname = \"{name}\"\nlisten = \"{listen}\"\nneighbours = [{}]\nkey_file = \"{}\"\nmax_hops = 8\n{extra}\n{COLLECT}",
        n.join(", "),
        key.display()
    )
}

fn wall_ms() -> i64 {
    meshmon_agent::net::mesh::wall_ms() as i64
}

/// Polls `which` every [`POLL`] until `ok` holds for every one of them at once, or `deadline`
/// passes; `Ok(elapsed)`, or the last reason it did not hold.
fn wait_until(
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
fn sees_all_up(v: &NodeView, names: &[String]) -> Result<(), String> {
    let missing: Vec<&String> = names.iter().filter(|n| !v.up(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("does not list {missing:?} as up"))
    }
}

/// The worst staleness seen per (observer, host), and every problem seen while polling.
#[derive(Default)]
struct Watch {
    worst: BTreeMap<(String, String), u64>,
    polls: usize,
    problems: Vec<String>,
}

impl Watch {
    /// One round of status polls of `which`; `judge` sees each answer with the time since `t0`.
    fn round(
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
    fn own_side(
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

    fn worst_of(&self) -> u64 {
        self.worst.values().copied().max().unwrap_or(0)
    }

    fn print(&self, label: &str) {
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
fn log_digest(dir: &Path, names: &[String]) -> String {
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

fn fail(why: &str, dir: &Path, names: &[String]) -> ! {
    eprintln!("first warnings of the agents:\n{}", log_digest(dir, names));
    panic!("{why}");
}

fn finish(failures: Vec<String>, dir: &Path, names: &[String]) {
    if !failures.is_empty() {
        eprintln!("first warnings of the agents:\n{}", log_digest(dir, names));
    }
    assert!(failures.is_empty(), "\n- {}", failures.join("\n- "));
}

#[test]
fn a_cut_link_is_routed_around_and_comes_back() {
    let _serial = serial();
    let Some(mut lab) = Lab::new("cut") else {
        return;
    };
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = key_file(dir.path(), "mesh.key");
    const N: usize = 6;
    let names: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
    let ns: Vec<String> = names.iter().map(|n| lab.add_ns(n)).collect();
    // A ring and its three diameters: every node has degree 3, and any one link may go.
    let mut edges: Vec<(usize, usize)> = (0..N).map(|i| (i, (i + 1) % N)).collect();
    edges.extend((0..N / 2).map(|i| (i, i + N / 2)));
    // One cable per mesh link: its own bridge and subnet 10.77.E.0/24 (interface `eE` at both
    // ends), so that setting one interface down cuts exactly that link. The lower node dials.
    let mut neighbours = vec![Vec::new(); N];
    for (e, &(a, b)) in edges.iter().enumerate() {
        let (br, ifname, net) = (format!("b{e}"), format!("e{e}"), e + 1);
        lab.bridge(&br);
        lab.plug(&ns[a], &ifname, &br, &format!("10.77.{net}.1/24"));
        lab.plug(&ns[b], &ifname, &br, &format!("10.77.{net}.2/24"));
        neighbours[a].push(format!("10.77.{net}.2:{PORT}"));
    }
    for i in 0..N {
        let toml = node_toml(
            &names[i],
            &format!("0.0.0.0:{PORT}"),
            &neighbours[i],
            &key,
            "",
        );
        lab.start(dir.path(), &ns[i], &names[i], &toml);
    }
    let all: Vec<usize> = (0..N).collect();
    let peers_of = |i: usize| -> Vec<String> {
        edges
            .iter()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(names[b].clone()),
                (_, true) => Some(names[a].clone()),
                _ => None,
            })
            .collect()
    };
    let converged = wait_until(&lab, &all, Duration::from_secs(40), |i, v| {
        sees_all_up(v, &names)?;
        match peers_of(i).iter().find(|p| !v.linked_to(p)) {
            Some(p) => Err(format!("no link up to {p}")),
            None => Ok(()),
        }
    });
    let took = converged.unwrap_or_else(|e| {
        fail(
            &format!("the mesh never converged: {e}"),
            dir.path(),
            &names,
        )
    });
    eprintln!(
        "ring of {N} with chords converged in {took:?} (every node sees every host, every link up)"
    );

    // The cut: c0's end of the c0-c1 cable (link e0) goes down for 10 s.
    let (a, b) = edges[0];
    let mut failures = Vec::new();
    let mut watch = Watch::default();
    let cut = Instant::now();
    lab.set_link(&ns[a], "e0", false);
    eprintln!(
        "cut: {} link e0 down ({} <-> {})",
        names[a], names[a], names[b]
    );
    let mut unlinked_at: Option<Duration> = None;
    while cut.elapsed() < Duration::from_secs(10) {
        let mut both_unlinked = [false; 2];
        watch.round(&lab, &all, cut, |w, i, t, v| {
            w.own_side(&names[i], t, v, &names, MAX_REROUTE_MS);
            if i == a {
                both_unlinked[0] = !v.linked_to(&names[b]);
            } else if i == b {
                both_unlinked[1] = !v.linked_to(&names[a]);
            }
        });
        if unlinked_at.is_none() && both_unlinked == [true, true] {
            unlinked_at = Some(cut.elapsed());
        }
        std::thread::sleep(POLL);
    }
    watch.print("while e0 was down (10 s)");
    match unlinked_at {
        Some(t) => eprintln!("both ends dropped the c0-c1 link {t:?} after the cut"),
        None => failures.push(format!(
            "{} and {} still list their link as up 10 s after the cut: the fault did not happen",
            names[a], names[b]
        )),
    }
    failures.extend(watch.problems.iter().take(10).cloned());

    // The link comes back.
    let restored = Instant::now();
    lab.set_link(&ns[a], "e0", true);
    match wait_until(&lab, &all, Duration::from_secs(20), |i, v| {
        sees_all_up(v, &names)?;
        if i == a && !v.linked_to(&names[b]) {
            return Err(format!("no link up to {}", names[b]));
        }
        Ok(())
    }) {
        Ok(t) => eprintln!("e0 up again: the c0-c1 link is back and all see all {t:?} after"),
        Err(e) => failures.push(format!(
            "20 s after e0 came back: {e} ({:?})",
            restored.elapsed()
        )),
    }
    eprintln!("whole test: {:?}", began.elapsed());
    finish(failures, dir.path(), &names);
}
