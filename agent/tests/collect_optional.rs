//! The optional collectors in a real `meshmon agent`, every one of them on: the Docker size of
//! a generated tree of 50k files and the SMART figures of a slow fake `smartctl` (1 s per
//! drive), beside a textfile, a systemd unit and a failing HTTP check, reach a viewer with the
//! right values, while the agent's own frames keep their 1 s cadence (no gap above 1.5 s)
//! during the walks and smartctl runs. Without an NVIDIA driver the GPU collector logs
//! that it is off and the agent runs on.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type Latest = Arc<Mutex<HashMap<String, f64>>>;

/// 100 directories of 500 files (0-2999 bytes), plus hard links and symlinks.
fn tree(root: &Path) {
    for d in 0..100 {
        let dir = root.join(format!("layer{}/d{d}", d / 10));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..500 {
            let n = (d * 500 + f) * 37 % 3000;
            std::fs::write(dir.join(format!("f{f}")), vec![b'x'; n]).expect("write");
        }
        std::fs::hard_link(dir.join("f1"), dir.join("hard")).expect("link");
        std::os::unix::fs::symlink(dir.join("f2"), dir.join("sym")).expect("symlink");
    }
}

fn du_sbx(dir: &Path) -> f64 {
    let out = std::process::Command::new("du")
        .arg("-sbx")
        .arg(dir)
        .output()
        .expect("run du");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("du printed '{text}'"))
}

/// The fixtures' fake smartctl (`tests/fixtures/smartctl/fake-smartctl`), taking 1 s per
/// drive: `--scan` lists four drives (one failing) and one it cannot open; `--xall` prints the
/// matching fixture.
fn fake_smartctl(dir: &Path) -> PathBuf {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smartctl/fake-smartctl");
    let script = format!(
        "#!/bin/sh\nFAKE_SMARTCTL_DELAY=1 exec '{}' \"$@\"\n",
        fake.display()
    );
    let path = dir.join("smartctl");
    std::fs::write(&path, script).expect("write fake smartctl");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

/// Keeps the latest decoded value of every series of `origin`.
async fn watch(target: &str, origin: &str) -> (Latest, CancellationToken) {
    let latest: Latest = Arc::default();
    let l = latest.clone();
    let stop = decode_values(target, origin, move |k, v, _| {
        l.lock().expect("lock").insert(k.to_string(), v);
    })
    .await;
    (latest, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_collector_on_values_arrive_and_core_frames_keep_their_cadence() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let docker = dir.path().join("docker");
    tree(&docker);
    let want_bytes = du_sbx(&docker);
    let smartctl = fake_smartctl(dir.path());
    // Every other collector on too: a textfile, a unit in a cgroup fixture, a failing check.
    let write = |p: &Path, text: &str| {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(&dir.path().join("textfile/backup.prom"), "backup_ok 1\n");
    let cg = dir.path().join("cgroup");
    write(&cg.join("cgroup.controllers"), "cpu memory\n");
    let unit = cg.join("system.slice/nginx.service");
    write(&unit.join("cgroup.events"), "populated 1\n");
    write(&unit.join("memory.current"), "1048576\n");
    write(&unit.join("cpu.stat"), "usage_usec 1000\n");
    let mut spec = Spec::new("optional1");
    spec.extra = format!(
        "[collect]\ninterval = \"1s\"\ndocker_dir = \"{}\"\ndocker_interval = \"2s\"\n\
         smartctl = \"{}\"\nsmart_interval = \"2s\"\ntextfile_dir = \"{}\"\n\
         systemd_units = [\"nginx.service\"]\ncgroup_root = \"{}\"\n\
         [[check]]\nname = \"closed\"\nurl = \"http://127.0.0.1:{}/\"\ninterval = \"500ms\"\n\
         timeout = \"500ms\"\n",
        docker.display(),
        smartctl.display(),
        dir.path().join("textfile").display(),
        cg.display(),
        free_port()
    );
    let agent = Agent::start(dir.path(), &spec);
    wait_all_see(
        &[agent.target()],
        &["optional1"],
        &null_ring(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("agent not up: {e}"));
    let recorder = Recorder::attach(&agent.target(), &null_ring()).await;
    let (latest, _stop) = watch(&agent.target(), "optional1").await;
    let from = Instant::now();

    // (a) the values: a late viewer gets unchanged values within a key-frame period (10 s).
    let want: Vec<(&str, f64)> = vec![
        ("docker.dir_bytes", want_bytes),
        ("smart.passed{device=\"/dev/nvme0\"}", 1.0),
        ("smart.temp_c{device=\"/dev/nvme0\"}", 36.0),
        ("smart.power_on_hours{device=\"/dev/nvme0\"}", 2401.0),
        ("smart.percentage_used{device=\"/dev/nvme0\"}", 0.0),
        ("smart.media_errors{device=\"/dev/nvme0\"}", 0.0),
        ("smart.critical_warning{device=\"/dev/nvme0\"}", 0.0),
        ("smart.passed{device=\"/dev/sda\"}", 1.0),
        ("smart.temp_c{device=\"/dev/sda\"}", 32.0),
        ("smart.power_on_hours{device=\"/dev/sdg\"}", 43549.0),
        ("smart.passed{device=\"/dev/sdc\"}", 0.0),
        ("backup_ok", 1.0),
        ("systemd.active{unit=\"nginx.service\"}", 1.0),
        ("systemd.mem_bytes{unit=\"nginx.service\"}", 1048576.0),
        ("check.up{check=\"closed\"}", 0.0),
    ];
    let deadline = from + Duration::from_secs(25);
    loop {
        let missing: Vec<String> = {
            let m = latest.lock().expect("lock");
            want.iter()
                .filter(|(k, v)| m.get(*k) != Some(v))
                .map(|(k, v)| format!("{k} = {v} (got {:?})", m.get(*k)))
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "values not at the viewer after 25 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !latest
            .lock()
            .expect("lock")
            .keys()
            .any(|k| k.contains("/dev/sdz")),
        "the drive smartctl cannot open has no series"
    );

    eprintln!("values at the viewer after {:?}", from.elapsed());

    // (b) the cadence over 10 s from the viewer's attach, while walks (every 2 s) and slow
    // smartctl rounds (5 s each) go on.
    let window_end = from + Duration::from_secs(10);
    tokio::time::sleep_until(window_end.max(Instant::now()).into()).await;
    let gap = recorder.max_gap("optional1", from, window_end);
    let frames = recorder.count("optional1");
    eprintln!("largest gap between frames: {gap:?} ({frames} frames in all)");
    assert!(
        gap <= Duration::from_millis(1500),
        "a core frame was late: gap {gap:?}"
    );

    // SIGINT while a smartctl run (1 s per drive) or a walk is in progress: the collector
    // threads check the stop signal between steps, so the agent exits well within the 3 s
    // it would otherwise wait for them.
    let mut agent = agent;
    let pid = rustix::process::Pid::from_raw(agent.pid() as i32).expect("pid");
    let asked = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let status = loop {
        if let Some(s) = agent.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "agent did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("exited {:?} after SIGINT", asked.elapsed());
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_millis(2000),
        "shutdown waited for a collector: {:?}",
        asked.elapsed()
    );

    let log = std::fs::read_to_string(dir.path().join("optional1.log")).expect("agent log");
    assert!(
        log.contains("gpu collector off: NVML not available") || log.contains("gpu collector: "),
        "the GPU collector says what it does:\n{log}"
    );
    assert!(
        log.contains("cannot read 1 of 5 drives (/dev/sdz)"),
        "the unreadable drive is logged:\n{log}"
    );
    assert_eq!(
        log.matches("cannot read 1 of 5 drives").count(),
        1,
        "logged once, not every round:\n{log}"
    );
}
