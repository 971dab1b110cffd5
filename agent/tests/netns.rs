//! Real network faults: every `meshmon agent` in a network namespace of its own, linked by veth
//! pairs and bridges (`common::netns`), so that a cut is an interface going down and TCP
//! connections stall as on a pulled cable. What is judged is only what an operator sees:
//! `meshmon status --format json` run inside a node's namespace, and `meshmon query export`
//! on the dashboard's store. Nothing here depends on how the mesh forwards frames.
//!
//! - A cut link: a ring of 6 with 3 chords, one cable per mesh link (a bridge each), one end
//!   of one link set down for 10 s, then up again.
//! - A partition: 10 nodes on two bridges joined by a trunk, one a dashboard, a seeded random
//!   graph with links across; the trunk is down for 30 s, then up again. Each half keeps
//!   hearing its own side, lists the other `down` then `up`, and the dashboard's store holds
//!   every series of every host from the split to 10 s after the heal.
//!
//! `NETNS_KEEP=1` keeps a failed run's directory (configs, logs, store); `NETNS_SETTLE_S`
//! changes the time from convergence to the split.
//!
//! Both need root and `ip` (iproute2): without them they fail under `CI=true` and are skipped,
//! loudly, elsewhere. The measured figures are printed whatever happens; failures are collected
//! and reported together at the end.

mod common;

use common::netns::{Lab, PORT};
use common::netns_watch::{POLL, STATUS_TIMEOUT, Watch, fail, finish, sees_all_up, wait_until};
use common::{key_file, serial};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Quiet collectors: these tests are about the mesh.
const COLLECT: &str =
    "[collect]\ninterval = \"1s\"\ndocker_dir = \"\"\nsmartctl = \"\"\ngpu = false\n";
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

/// A seeded xorshift: the partition graph is random-ish but the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// 10 nodes, halves `0..5` and `5..10`: a ring in each half (so each half stays connected on
/// its own), two chords inside the halves and three links across, all drawn from `seed`.
fn partition_graph(seed: u64) -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for h in [0, 5] {
        for i in 0..5 {
            edges.push((h + i, h + (i + 1) % 5));
        }
    }
    let norm = |(a, b): (usize, usize)| (a.min(b), a.max(b));
    let mut edges: Vec<(usize, usize)> = edges.into_iter().map(norm).collect();
    let mut rng = Rng(seed);
    let (mut across, mut chords) = (0, 0);
    while across < 3 || chords < 2 {
        let (a, b) = (rng.below(10), rng.below(10));
        let e = norm((a, b));
        let crosses = (a < 5) != (b < 5);
        if a == b || edges.contains(&e) || (crosses && across == 3) || (!crosses && chords == 2) {
            continue;
        }
        edges.push(e);
        if crosses {
            across += 1;
        } else {
            chords += 1;
        }
    }
    edges
}

/// `meshmon query export` of `host` on the store `db` over `[from_ms, to_ms]`: the sample times
/// of each of its series.
fn stored_series(
    db: &Path,
    host: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<BTreeMap<String, Vec<i64>>, String> {
    use meshmon_dashboard::time::{format_rfc3339, parse_rfc3339};
    let out = std::process::Command::new(common::netns::exe())
        .args(["query", "export", "--host", host])
        .args(["--since", &format_rfc3339(from_ms)])
        .args(["--until", &format_rfc3339(to_ms)])
        .args(["--format", "json", "--db"])
        .arg(db)
        .output()
        .map_err(|e| format!("cannot run meshmon query: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{host}: meshmon query export: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{host}: query output is not JSON: {e}"))?;
    let rows = v
        .as_array()
        .ok_or_else(|| format!("{host}: query output is not an array"))?;
    let mut series: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in rows {
        let metric = r.get("metric").and_then(|m| m.as_str());
        let ts = r.get("ts").and_then(|t| t.as_str()).and_then(parse_rfc3339);
        match (metric, ts) {
            (Some(m), Some(ts)) => series.entry(m.to_owned()).or_default().push(ts),
            _ => return Err(format!("{host}: a row without metric or RFC 3339 ts: {r}")),
        }
    }
    Ok(series)
}

/// Checks every series `host` had in the store in the 10 s before `from_ms` for holes over
/// `[from_ms, to_ms]`. `Ok((worst hole, its series, series checked))` or the problems.
fn host_whole(
    db: &Path,
    host: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(i64, String, usize), Vec<String>> {
    let series = stored_series(db, host, from_ms - 10_000, to_ms).map_err(|e| vec![e])?;
    let before: Vec<(&String, &Vec<i64>)> = series
        .iter()
        .filter(|(name, ts)| !common::comes_and_goes(name) && ts.iter().any(|t| *t < from_ms))
        .collect();
    if before.is_empty() {
        return Err(vec![format!(
            "{host}: no series in the store in the 10 s before the split"
        )]);
    }
    let mut problems = Vec::new();
    let mut worst = (0, String::new());
    for (name, ts) in &before {
        let (gap, at) = common::worst_hole(ts, from_ms, to_ms);
        if gap > worst.0 {
            worst = (gap, (*name).clone());
        }
        if gap > MAX_STORED_GAP_MS {
            problems.push(format!(
                "{host} {name}: a {gap} ms hole from split+{:.1}s",
                at as f64 / 1e3
            ));
        }
    }
    if problems.is_empty() {
        Ok((worst.0, worst.1, before.len()))
    } else {
        Err(problems)
    }
}

#[test]
fn a_mesh_split_in_two_for_30s_heals_and_the_store_is_whole() {
    const N: usize = 10;
    const SPLIT: Duration = Duration::from_secs(30);
    const SEED: u64 = 0x006d_6573_686d_6f6e;
    /// From convergence to the split.
    const SETTLE: Duration = Duration::from_secs(3);
    /// The store is checked from the split to this long after the heal: the far half's first
    /// live frames after the heal must be whole too.
    const AFTER_HEAL_MS: i64 = 10_000;
    let _serial = serial();
    let Some(mut lab) = Lab::new("split") else {
        return;
    };
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = key_file(dir.path(), "mesh.key");
    let db = dir.path().join("store.db");
    let names: Vec<String> = (0..N).map(|i| format!("p{i}")).collect();
    let half = |i: usize| usize::from(i >= N / 2);
    // Two switches joined by a trunk; one subnet, 10.77.0.0/24, across both.
    lab.bridge("brA");
    lab.bridge("brB");
    let trunk = lab.trunk("brA", "brB");
    let ns: Vec<String> = names.iter().map(|n| lab.add_ns(n)).collect();
    let addr = |i: usize| format!("10.77.0.{}", i + 1);
    for (i, n) in ns.iter().enumerate() {
        let br = if half(i) == 0 { "brA" } else { "brB" };
        lab.plug(n, "eth0", br, &format!("{}/24", addr(i)));
    }
    let edges = partition_graph(SEED);
    let mut neighbours = vec![Vec::new(); N];
    for &(a, b) in &edges {
        neighbours[a].push(format!("{}:{PORT}", addr(b)));
    }
    let shown: Vec<String> = edges
        .iter()
        .map(|&(a, b)| {
            let x = if half(a) != half(b) { "*" } else { "" };
            format!("{}-{}{x}", names[a], names[b])
        })
        .collect();
    eprintln!(
        "graph (seed {SEED:#x}; * crosses the halves p0..p4 | p5..p9): {}",
        shown.join(" ")
    );
    for i in 0..N {
        let extra = if i == 0 {
            format!(
                "dashboard = true\n\n[store]\npath = \"{}\"\nflush_interval = \"1s\"\n",
                db.display()
            )
        } else {
            String::new()
        };
        let toml = node_toml(
            &names[i],
            &format!("{}:{PORT}", addr(i)),
            &neighbours[i],
            &key,
            &extra,
        );
        lab.start(dir.path(), &ns[i], &names[i], &toml);
    }
    let all: Vec<usize> = (0..N).collect();
    let took = wait_until(&lab, &all, Duration::from_secs(40), |_, v| {
        sees_all_up(v, &names)
    })
    .unwrap_or_else(|e| {
        fail(
            &format!("the mesh never converged: {e}"),
            dir.path(),
            &names,
        )
    });
    eprintln!("{N} nodes converged in {took:?}");
    // A few seconds of every host in the store before the split. The dashboard joined the
    // running mesh moments ago, so until each origin's next key frame its live deltas decode
    // only in part and must be filled by backfill too. NETNS_SETTLE_S moves the split (and
    // so the heal) against the origins' key frames: at 1 s, 10 frames apart.
    let settle = std::env::var("NETNS_SETTLE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(SETTLE, Duration::from_secs);
    std::thread::sleep(settle);

    // The split: the trunk between the two switches goes down for 30 s. Observers: the
    // dashboard p0 in one half, p5 in the other.
    let observers = [0, N / 2];
    let sides: [Vec<String>; 2] = [names[..N / 2].to_vec(), names[N / 2..].to_vec()];
    let mut failures = Vec::new();
    let mut watch = Watch::default();
    let cut_ms = wall_ms();
    let cut = Instant::now();
    lab.cut_trunk(&trunk, false);
    eprintln!("split: trunk down");
    let mut all_down_at: [Option<Duration>; 2] = [None, None];
    let mut down_at_end = [false; 2];
    while cut.elapsed() < SPLIT {
        watch.round(&lab, &observers, cut, |w, i, t, v| {
            let own = half(i);
            w.own_side(&names[i], t, v, &sides[own], MAX_STALE_MS);
            let other_down = sides[1 - own].iter().all(|h| v.down(h));
            if other_down && all_down_at[own].is_none() {
                all_down_at[own] = Some(t);
            }
            down_at_end[own] = other_down;
        });
        std::thread::sleep(POLL);
    }
    let heal_ms = wall_ms();
    let heal = Instant::now();
    lab.cut_trunk(&trunk, true);
    eprintln!("heal: trunk up after {:?}", heal - cut);
    watch.print("own half while split (30 s)");
    failures.extend(watch.problems.iter().take(10).cloned());
    for (o, &i) in observers.iter().enumerate() {
        match all_down_at[o] {
            Some(t) => eprintln!(
                "{} listed the other half as down {t:?} after the split",
                names[i]
            ),
            None => failures.push(format!(
                "{} never listed all of the other half as down during the split",
                names[i]
            )),
        }
        if all_down_at[o].is_some() && !down_at_end[o] {
            failures.push(format!(
                "{} listed part of the other half as up again before the heal",
                names[i]
            ));
        }
    }

    // Healing: both observers see all ten up again.
    let mut healed: [Option<Duration>; 2] = [None, None];
    while heal.elapsed() < Duration::from_secs(20) && healed.iter().any(Option::is_none) {
        for (i, at, r) in lab.statuses(&observers, STATUS_TIMEOUT) {
            let o = half(i);
            if healed[o].is_none() && r.is_ok_and(|v| sees_all_up(&v, &names).is_ok()) {
                healed[o] = Some(at - heal);
            }
        }
        std::thread::sleep(POLL);
    }
    for (o, &i) in observers.iter().enumerate() {
        match healed[o] {
            Some(t) => eprintln!("{} sees all {N} up again {t:?} after the heal", names[i]),
            None => failures.push(format!(
                "{} does not see all {N} up 20 s after the heal",
                names[i]
            )),
        }
    }

    // The store: every series of every host whole from the split to 10 s after the heal (the
    // far half by backfill), within 30 s of the heal.
    let to_ms = heal_ms + AFTER_HEAL_MS;
    let mut report = BTreeMap::new();
    let result = loop {
        let mut problems = Vec::new();
        for h in &names {
            match host_whole(&db, h, cut_ms, to_ms) {
                Ok(r) => {
                    report.insert(h.clone(), r);
                }
                Err(p) => problems.extend(p),
            }
        }
        if problems.is_empty() || heal.elapsed() > Duration::from_secs(30) {
            break problems;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let shown: Vec<String> = report
        .iter()
        .map(|(h, (gap, _, n))| format!("{h}:{gap}({n})"))
        .collect();
    eprintln!(
        "store from the split to heal+10s, worst hole per host in ms (series checked): {} ({:?} after the heal)",
        shown.join(" "),
        heal.elapsed()
    );
    if !result.is_empty() {
        let total = result.len();
        failures.push(format!(
            "the store is not whole over the split 30 s after the heal ({total} holes): {}",
            result
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    eprintln!("whole test: {:?}", began.elapsed());
    finish(failures, dir.path(), &names);
}
