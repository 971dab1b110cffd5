//! Cadence: with every collector on (processes with 300 extra processes running, systemd units,
//! textfile, Docker directory, SMART, GPU where present, an HTTP check), a real `meshmon agent`
//! still sends its 1 s core frames on time: no gap between two of its frames over 1.5 s across
//! 30 s, as seen by a viewer attached to it, and they are collected on the wall clock's
//! seconds. Collectors that find no source here (no GPU, no
//! smartctl) switch themselves off as they would on such a host.

mod common;

use common::{Agent, Recorder, Spec, null_ring, serial};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 300 `sleep` processes, killed when dropped.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_frames_keep_their_1s_cadence_with_every_collector_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let textfile = dir.path().join("textfile");
    std::fs::create_dir_all(&textfile).expect("mkdir");
    std::fs::write(textfile.join("a.prom"), "job_ok 1\n").expect("prom");
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(docker.join("x")).expect("mkdir");
    std::fs::write(docker.join("x/f"), vec![0u8; 4096]).expect("file");
    let web = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let web_addr = web.local_addr().expect("addr");
    let sleepers = Sleepers(
        (0..300)
            .map(|_| {
                Command::new("sleep")
                    .arg("600")
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("spawn sleep")
            })
            .collect(),
    );
    let mut spec = Spec::new("busy");
    spec.extra = format!(
        "\n[collect]\ninterval = \"1s\"\ntop_processes = 10\nprocesses = [\"sleep\", \"sshd\", \"nginx\"]\n\
         systemd_units = [\"cron.service\", \"ssh.service\", \"dbus.service\"]\n\
         textfile_dir = \"{}\"\ndocker_dir = \"{}\"\ndocker_interval = \"1s\"\n\
         smartctl = \"smartctl\"\nsmart_interval = \"1s\"\ngpu = true\n\n\
         [[check]]\nname = \"local\"\nurl = \"http://{web_addr}/\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        textfile.display(),
        docker.display(),
    );
    let agent = Agent::start(dir.path(), &spec);
    let watch = Recorder::attach(&agent.target(), &null_ring()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let to = Instant::now();
    let gap = watch.max_gap("busy", from, to);
    let frames = watch.count("busy");
    eprintln!(
        "{} processes running; {frames} frames; largest gap {gap:?}",
        sleepers.0.len()
    );
    assert!(frames >= 28, "frames over 30 s: {frames}");
    assert!(gap <= Duration::from_millis(1500), "gap {gap:?}");
    // Collected on the wall clock's seconds: a frame is stamped when the mesh task seals it,
    // just after the collection that started on the second.
    let mut past = watch
        .stamps
        .lock()
        .expect("lock")
        .get("busy")
        .map(|v| v.iter().map(|ts| ts % 1000).collect::<Vec<_>>())
        .unwrap_or_default();
    past.sort_unstable();
    let median = past.get(past.len() / 2).copied().unwrap_or(u64::MAX);
    eprintln!("ms past the second: median {median}, all {past:?}");
    assert!(
        median < 150,
        "samples stamped {median} ms past the second (median)"
    );
    drop(web);
}
