//! The process collector on fixture `/proc` trees, and once on this machine's.

use super::*;

/// A fixture `/proc`: `uptime` and per PID `stat` (and `io`, `cmdline` when given).
struct Fixture(tempfile::TempDir);

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture(tempfile::tempdir().expect("tempdir"));
        f.uptime(1000.0);
        f
    }

    fn uptime(&self, secs: f64) {
        std::fs::write(self.0.path().join("uptime"), format!("{secs} 1.0\n")).expect("uptime");
    }

    /// Process `pid` named `comm`, `ticks` of CPU, `pages` resident, started at `start` ticks.
    fn proc(&self, pid: u32, comm: &str, ticks: u64, pages: u64, start: u64) {
        let dir = self.0.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("mkdir");
        let stat = format!(
            "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194304 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {start} \
             1000 {pages} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        std::fs::write(dir.join("stat"), stat).expect("stat");
    }

    fn io(&self, pid: u32, read: u64, write: u64) {
        let text = format!("rchar: 0\nwchar: 0\nread_bytes: {read}\nwrite_bytes: {write}\n");
        std::fs::write(self.0.path().join(pid.to_string()).join("io"), text).expect("io");
    }

    fn cmdline(&self, pid: u32, args: &[&str]) {
        let mut b = Vec::new();
        for a in args {
            b.extend_from_slice(a.as_bytes());
            b.push(0);
        }
        std::fs::write(self.0.path().join(pid.to_string()).join("cmdline"), b).expect("cmdline");
    }

    fn gone(&self, pid: u32) {
        std::fs::remove_dir_all(self.0.path().join(pid.to_string())).expect("rm");
    }
}

fn get(out: &[Sample], m: Metric, name: &str) -> Option<f64> {
    out.iter()
        .find(|(k, _)| *k == SeriesKey::labelled(m, name))
        .map(|(_, v)| *v)
}

fn names(out: &[Sample]) -> Vec<String> {
    let mut n: Vec<String> = out
        .iter()
        .filter(|(k, _)| k.name == Metric::ProcMemBytes.name())
        .filter_map(|(k, _)| k.label("name").map(str::to_owned))
        .collect();
    n.sort();
    n
}

#[test]
fn groups_by_name_with_cpu_memory_and_io() {
    let f = Fixture::new();
    f.proc(10, "nginx", 100, 100, 50);
    f.proc(11, "nginx", 200, 50, 50);
    f.io(10, 1000, 0);
    f.proc(20, "python3", 0, 10, 60);
    f.cmdline(20, &["/usr/bin/python3", "-u", "/srv/worker.py"]);
    f.proc(30, "idle", 0, 1, 70);
    let mut p = Procs::new(f.0.path(), 10, &["nginx".into(), "redis-server".into()]);
    let t0 = Instant::now();
    let first = p.collect(t0).expect("first");
    assert_eq!(
        get(&first, Metric::ProcCpuPct, "nginx"),
        None,
        "no rate yet"
    );
    assert_eq!(
        get(&first, Metric::ProcMemBytes, "nginx"),
        Some(round_to(150.0 * p.page as f64, MIB))
    );
    assert_eq!(get(&first, Metric::ProcCount, "nginx"), Some(2.0));
    assert_eq!(get(&first, Metric::ProcCount, "redis-server"), Some(0.0));
    assert_eq!(names(&first), ["idle", "nginx", "other", "worker.py"]);
    // Two seconds later: 150 ticks of nginx = 75 % of a core; 4096 bytes read per 2 s.
    f.uptime(1002.0);
    f.proc(10, "nginx", 150, 100, 50);
    f.proc(11, "nginx", 300, 50, 50);
    f.io(10, 5096, 2048);
    f.proc(20, "python3", 40, 10, 60);
    // Started after the first reading: all its 30 ticks count.
    f.proc(40, "make", 30, 5, 100_050);
    let second = p.collect(t0 + Duration::from_secs(2)).expect("second");
    assert_eq!(get(&second, Metric::ProcCpuPct, "nginx"), Some(75.0));
    assert_eq!(
        get(&second, Metric::ProcIoReadBytesPerS, "nginx"),
        Some(2048.0)
    );
    assert_eq!(
        get(&second, Metric::ProcIoWriteBytesPerS, "nginx"),
        Some(1024.0)
    );
    assert_eq!(
        get(&second, Metric::ProcIoReadBytesPerS, "idle"),
        None,
        "no io file"
    );
    assert_eq!(get(&second, Metric::ProcCpuPct, "worker.py"), Some(20.0));
    assert_eq!(get(&second, Metric::ProcCpuPct, "make"), Some(15.0));
    assert_eq!(get(&second, Metric::ProcCpuPct, "other"), Some(0.0));
    // A PID reused by another process is a new process, not a counter going back.
    f.uptime(1003.0);
    f.proc(40, "idle2", 5, 1, 100_250);
    let third = p.collect(t0 + Duration::from_secs(3)).expect("third");
    assert_eq!(get(&third, Metric::ProcCpuPct, "idle2"), Some(5.0));
    assert_eq!(
        get(&third, Metric::ProcCpuPct, "make"),
        Some(0.0),
        "0 until re-ranked"
    );
    f.gone(10);
    f.gone(11);
    let fourth = p.collect(t0 + Duration::from_secs(4)).expect("fourth");
    assert_eq!(get(&fourth, Metric::ProcCount, "nginx"), Some(0.0));
    assert_eq!(get(&fourth, Metric::ProcCpuPct, "nginx"), Some(0.0));
    assert_eq!(
        get(&fourth, Metric::ProcIoReadBytesPerS, "nginx"),
        Some(0.0),
        "kept"
    );
    for i in 5..=RERANK_EVERY {
        p.collect(t0 + Duration::from_secs(i)).expect("more");
    }
    let reranked = p.collect(t0 + Duration::from_secs(40)).expect("reranked");
    assert_eq!(
        get(&reranked, Metric::ProcMemBytes, "nginx"),
        None,
        "gone at the ranking"
    );
}

#[test]
fn at_most_two_n_names_plus_other_and_nothing_is_lost() {
    let f = Fixture::new();
    // 10 CPU-heavy small processes, 10 memory-heavy idle ones, 30 small idle ones.
    for i in 0..50u32 {
        let (ticks, pages) = match i {
            0..10 => (0, 1),
            10..20 => (0, 1000 + u64::from(i)),
            _ => (0, 2),
        };
        f.proc(100 + i, &format!("p{i:02}"), ticks, pages, 10);
    }
    let mut p = Procs::new(f.0.path(), 3, &[]);
    let t0 = Instant::now();
    p.collect(t0).expect("first");
    for i in 0..10u32 {
        f.proc(100 + i, &format!("p{i:02}"), 10 * u64::from(i + 1), 1, 10);
    }
    let out = p.collect(t0 + Duration::from_secs(1)).expect("second");
    let n = names(&out);
    assert_eq!(n.len(), 7, "{n:?}");
    for want in ["p09", "p08", "p07", "p19", "p18", "p17", "other"] {
        assert!(n.iter().any(|x| x == want), "{want} in {n:?}");
    }
    // Totals are kept: CPU of all = 550 ticks in 1 s = 550 %.
    let total: f64 = out
        .iter()
        .filter(|(k, _)| k.name == Metric::ProcCpuPct.name())
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 550.0);
    let mem: f64 = out
        .iter()
        .filter(|(k, _)| k.name == Metric::ProcMemBytes.name())
        .map(|(_, v)| v)
        .sum();
    let pages: u64 = 10 + (1010..1020).sum::<u64>() + 30 * 2;
    let want = (pages * p.page) as f64;
    assert!(
        (mem - want).abs() <= 7.0 * MIB / 2.0,
        "{mem} vs {want}: rounded to MiB per name"
    );
}

#[test]
fn the_set_changes_only_for_a_clear_newcomer_or_at_a_ranking() {
    let f = Fixture::new();
    for i in 0..6u32 {
        f.proc(
            100 + i,
            &format!("p{i}"),
            0,
            if i >= 4 { 100 } else { 1 },
            10,
        );
    }
    let mut p = Procs::new(f.0.path(), 2, &[]);
    let t0 = Instant::now();
    p.collect(t0)
        .expect("prime: ranked, all idle: p0, p1 by name");
    let mut total = [0u64; 6];
    let mut step = |p: &mut Procs, s: u64, ticks: [u64; 6]| {
        f.uptime(1000.0 + s as f64);
        for (i, t) in ticks.iter().enumerate() {
            total[i] += t;
            let pages = if i >= 4 { 100 } else { 1 };
            f.proc(100 + i as u32, &format!("p{i}"), total[i], pages, 10);
        }
        let out = p.collect(t0 + Duration::from_secs(s)).expect("collect");
        assert!(names(&out).len() <= 5, "2N + other");
        let mut cpu: Vec<String> = p.held[0].iter().map(|n| n.to_string()).collect();
        cpu.sort();
        cpu.join(",")
    };
    assert_eq!(step(&mut p, 1, [50, 40, 1, 0, 0, 0]), "p0,p1");
    // p2 leads p1 but not by 10 % of a core plus half of p1's: no change; then it does.
    assert_eq!(step(&mut p, 2, [50, 40, 60, 0, 0, 0]), "p0,p1");
    assert_eq!(step(&mut p, 3, [50, 40, 90, 0, 0, 0]), "p0,p2");
    // p5 at 8 % never clearly beats an idle name, until the next ranking.
    for s in 4..u64::from(u8::try_from(RERANK_EVERY).unwrap_or(30)) {
        assert_eq!(step(&mut p, s, [0, 0, 0, 0, 0, 8]), "p0,p2");
    }
    assert_eq!(step(&mut p, 30, [0, 0, 0, 0, 0, 8]), "p0,p5");
    assert_eq!(p.held[1].len(), 2);
}

#[test]
fn an_idle_process_is_read_every_fifth_reading_and_its_cpu_spread() {
    let f = Fixture::new();
    f.proc(10, "busy", 0, 1, 10);
    f.proc(20, "idle", 0, 1, 10);
    let mut p = Procs::new(f.0.path(), 1, &["idle".into()]);
    let t0 = Instant::now();
    p.collect(t0).expect("prime");
    let mut cpu = Vec::new();
    for s in 1..=7u64 {
        f.uptime(1000.0 + s as f64);
        f.proc(10, "busy", 50 * s, 1, 10);
        // idle wakes at 3 s and uses 10 ticks a second from then on.
        f.proc(20, "idle", 10 * s.saturating_sub(2), 1, 10);
        let out = p.collect(t0 + Duration::from_secs(s)).expect("collect");
        assert_eq!(
            get(&out, Metric::ProcCount, "idle"),
            Some(1.0),
            "counted while skipped"
        );
        cpu.push(get(&out, Metric::ProcCpuPct, "other").expect("other"));
    }
    // Read at 1 s (idle: skipped for 4 readings), then at 6 s: 40 ticks over 5 s, 8 % a
    // second; then every second (no longer idle).
    assert_eq!(cpu, [0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 10.0]);
}

#[test]
fn off_sends_only_counts_and_a_missing_root_is_an_error() {
    let f = Fixture::new();
    f.proc(10, "sshd", 1, 1, 1);
    let mut p = Procs::new(f.0.path(), 0, &["sshd".into()]);
    let out = p.collect(Instant::now()).expect("collect");
    assert_eq!(
        out,
        vec![(SeriesKey::labelled(Metric::ProcCount, "sshd"), 1.0)]
    );
    let mut gone = Procs::new(&f.0.path().join("nope"), 10, &[]);
    assert!(gone.collect(Instant::now()).is_err());
}

#[test]
fn this_machine_shows_this_test_process() {
    let mut p = Procs::new(Path::new("/proc"), 10, &[]);
    let t0 = Instant::now();
    p.collect(t0).expect("first");
    let spin = Instant::now();
    while spin.elapsed() < Duration::from_millis(300) {
        std::hint::black_box(0u64);
    }
    let out = p.collect(Instant::now()).expect("second");
    let me = std::fs::read_to_string("/proc/self/stat").expect("self stat");
    let comm = read::parse_stat(&me).expect("parse").comm;
    let cpu = get(&out, Metric::ProcCpuPct, &comm).expect("this process is in the top by CPU");
    assert!(cpu > 20.0, "{cpu}");
    assert!(
        get(&out, Metric::ProcIoReadBytesPerS, &comm).is_some(),
        "own io is readable"
    );
}

#[test]
fn reads_just_before_the_core_frame() {
    let t = Instant::now();
    let i = Duration::from_secs(1);
    let f = t + Duration::from_millis(600);
    // Next frame 600 ms after the last read: read 150 ms before it.
    assert_eq!(next_wake(t, i, Some(f)), f - LEAD);
    // The core loop has not moved on yet (its frame is 50 ms ahead): the one after.
    let soon = t + Duration::from_millis(50);
    assert_eq!(next_wake(t, i, Some(soon)), soon - LEAD + i);
    // No core loop: every interval.
    assert_eq!(next_wake(t, i, None), t + i);
}
