//! A second, independent implementation of the wire protocol: `tests/pypeer/meshmon_peer.py`,
//! a Python peer on libzmq (pyzmq), PyNaCl and msgpack written from `proto/PROTOCOL.md` alone.
//! It joins a mesh of real `meshmon agent` processes as a node. Both sides check each other:
//! the Python peer must open and decode what the agents send, and the agents must accept,
//! forward and decode what the Python peer originates. A peer with the wrong key must get
//! nothing and be counted.
//!
//! Needs python3 with the Debian packages python3-zmq, python3-nacl and python3-msgpack
//! (`.ci/run` installs them); without them these tests fail rather than skip.

mod common;

use common::*;
use meshmon_agent::viewer;
use meshmon_proto::{Flags, Keyring, Payload};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const PACKAGES: &str = "python3-zmq python3-nacl python3-msgpack";

/// Agents collect every 250 ms so that a key frame (every 10th sample frame) arrives within
/// the few seconds the Python peer runs.
const FAST: &str = "[collect]\ninterval = \"250ms\"\n";

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pypeer/meshmon_peer.py")
}

/// A python3 that has pyzmq, PyNaCl and msgpack: `$MESHMON_PYTHON`, else `python3` on the
/// PATH, else `/usr/bin/python3` (where Debian's packages live when the PATH has another
/// Python first). Panics, naming the packages, when there is none.
fn python() -> String {
    let mut candidates: Vec<String> = std::env::var("MESHMON_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    let mut tried = Vec::new();
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import zmq, nacl.bindings, msgpack"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py.clone();
        }
        tried.push(py.as_str());
    }
    panic!(
        "the libzmq peer test needs python3 with pyzmq, PyNaCl and msgpack; install the Debian \
         packages: apt-get install {PACKAGES} (tried {tried:?}; set MESHMON_PYTHON to choose \
         an interpreter)"
    );
}

/// Starts the Python peer; its JSON summary goes to `out`.
fn spawn_peer(py: &str, out: &Path, args: &[&str]) -> Child {
    Command::new(py)
        .arg(peer_script())
        .args(args)
        .arg("--json")
        .stdout(std::fs::File::create(out).expect("peer output file"))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}; install {PACKAGES}"))
}

/// Waits (without blocking the runtime) for the peer to exit, then parses its summary.
async fn finish_peer(mut child: Child, out: &Path, deadline: Duration) -> Value {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the python peer") {
            break s;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the python peer did not exit within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(out).expect("peer output");
    assert!(status.success(), "python peer failed ({status}): {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("peer output is not JSON ({e}): {text}"))
}

fn names(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::Object(m) => m.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// What a Rust viewer decodes from one origin's gossip, by payload type.
struct KindRecorder {
    kinds: Arc<Mutex<HashMap<&'static str, usize>>>,
    host_version: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
}

impl KindRecorder {
    async fn attach(target: &str, keyring: &Keyring, origin: &'static str) -> KindRecorder {
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut rx = viewer::attach(target, keyring.clone(), &tracker, stop.clone())
            .await
            .expect("attach viewer");
        let kinds: Arc<Mutex<HashMap<&'static str, usize>>> = Arc::default();
        let host_version: Arc<Mutex<Option<String>>> = Arc::default();
        let (k, hv) = (kinds.clone(), host_version.clone());
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                if d.header.flags.contains(Flags::LINK) || d.header.origin != origin {
                    continue;
                }
                let kind = match &d.payload {
                    Payload::HostInfo(h) => {
                        *hv.lock().expect("lock") = Some(h.version.clone());
                        "HostInfo"
                    }
                    Payload::SeriesTable(_) => "SeriesTable",
                    Payload::Samples(_) => "Samples",
                    _ => "other",
                };
                *k.lock().expect("lock").entry(kind).or_default() += 1;
            }
        });
        KindRecorder {
            kinds,
            host_version,
            stop,
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.kinds
            .lock()
            .expect("lock")
            .get(kind)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for KindRecorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn python_peer_joins_a_mesh_of_two_agents_as_a_node() {
    let _serial = serial();
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, ring_key) = key_file(dir.path(), "mesh.key");
    let mut specs = line(&["r1", "r2"]);
    for s in &mut specs {
        s.key = Some(key.clone());
        s.extra = FAST.into();
    }
    let agents: Vec<Agent> = specs.iter().map(|s| Agent::start(dir.path(), s)).collect();
    let (t1, t2) = (agents[0].target(), agents[1].target());
    wait_all_see(
        &[t1.clone(), t2.clone()],
        &["r1", "r2"],
        &ring_key,
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("agents not converged within 5 s: {e}"));

    // A Rust viewer on r2, the agent the Python peer is NOT linked to.
    let rec = KindRecorder::attach(&t2, &ring_key, "py1").await;
    let out = dir.path().join("py1.json");
    let child = spawn_peer(
        &py,
        &out,
        &[
            "--connect",
            &t1,
            "--key",
            key.to_str().expect("utf-8 path"),
            "--name",
            "py1",
            "--role",
            "node",
            "--interval",
            "0.25",
            "--duration",
            "5",
        ],
    );

    // While it runs: r2 lists py1 as a host two links away, with its HostInfo decoded, and r1
    // lists the link from py1 as a node link without authentication failures.
    let start = Instant::now();
    let mut last = String::from("no status");
    let seen = loop {
        if start.elapsed() > Duration::from_secs(4) {
            break None;
        }
        if let Some(s) = status(&t2, &ring_key).await {
            if let Some(h) = s
                .hosts
                .iter()
                .find(|h| h.name == "py1" && !h.version.is_empty())
            {
                break Some(h.clone());
            }
            last = format!("r2 lists {:?}", fresh_hosts(&s, Duration::from_secs(60)));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    let py1 = seen.unwrap_or_else(|| panic!("r2 never listed py1 with its HostInfo: {last}"));
    assert_eq!(py1.hops, 2, "py1 -> r1 -> r2");
    assert_eq!(py1.version, "pypeer-0.1");
    assert_eq!(py1.tags, vec!["python".to_owned()]);
    assert_eq!(py1.interval_ms, 250);
    let s1 = status(&t1, &ring_key).await.expect("r1 status");
    let link = s1
        .links
        .iter()
        .find(|l| l.peer == "py1")
        .unwrap_or_else(|| panic!("r1 has no link from py1"));
    assert_eq!(
        (link.role.as_str(), link.direction.as_str()),
        ("node", "in")
    );
    assert_eq!(link.auth_failures, 0);

    let v = finish_peer(child, &out, Duration::from_secs(10)).await;
    let main = &v["links"][0];
    eprintln!(
        "python peer: {} frames opened, hosts {:?}, kinds {}, rtt {} us",
        v["frames_opened"], main["hosts_seen"], main["kinds"], main["rtt_us"]
    );

    // ZMTP handshake with meshmon's guarded listener, then Hello both ways.
    assert_eq!(v["handshake"], true, "ZMTP handshake: {v}");
    assert_eq!(v["hello_received"], true, "no Hello from r1: {v}");
    assert_eq!(v["peer"]["name"], "r1");
    assert_eq!(v["peer"]["role"], "node");
    // Frames of BOTH agents arrived on the node link and were authenticated.
    let hosts = names(&main["hosts_seen"]);
    assert!(
        hosts.contains(&"r1") && hosts.contains(&"r2"),
        "gossip from both agents: {hosts:?}"
    );
    assert_eq!(v["auth_failed"], 0, "{v}");
    assert_eq!(v["malformed"], 0, "{v}");
    assert!(main["frames_opened"].as_u64().unwrap_or(0) >= 10, "{main}");
    for kind in ["Hello", "Heartbeat", "HostInfo", "SeriesTable", "Samples"] {
        assert!(
            main["kinds"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} on the node link: {}",
            main["kinds"]
        );
    }
    assert!(main["rtt_us"].as_u64().is_some(), "no round trip measured");
    // r1 acknowledged the peer's gossip with credits, and dropped none for lack of them.
    assert!(main["acked_by_peer"].as_u64().unwrap_or(0) > 0, "{main}");
    assert_eq!(main["dropped_no_credit"], 0, "{main}");
    // Samples decoded through the series table, key frames and deltas.
    let r1 = &v["samples"]["r1"]["values"];
    assert!(
        r1["mem.total_bytes"].as_u64().unwrap_or(0) > 0,
        "mem.total_bytes of r1 not decoded: {r1}"
    );
    assert!(r1["host.uptime_s"].as_u64().is_some(), "{r1}");
    assert_eq!(v["hostinfo"]["r1"]["version"], env!("CARGO_PKG_VERSION"));
    // The Status (viewer link) was decoded and lists both agents and the peer itself.
    assert_eq!(v["status"]["node"], "r1");
    let listed = names(&v["status_hosts"]);
    for h in ["r1", "r2", "py1"] {
        assert!(listed.contains(&h), "status lists {listed:?}");
    }

    // Rust decoded what Python originated, after it was forwarded by r1.
    assert!(rec.count("HostInfo") > 0, "r2's viewer got no HostInfo");
    assert!(
        rec.count("SeriesTable") > 0,
        "r2's viewer got no SeriesTable"
    );
    assert!(
        rec.count("Samples") >= 10,
        "r2's viewer got too few Samples"
    );
    assert_eq!(rec.count("other"), 0);
    assert_eq!(
        rec.host_version.lock().expect("lock").as_deref(),
        Some("pypeer-0.1")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn python_peer_with_the_wrong_key_gets_nothing_and_is_counted() {
    let _serial = serial();
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, good_ring) = key_file(dir.path(), "good.key");
    let (bad, _) = key_file(dir.path(), "bad.key");
    let mut spec = Spec::new("w1");
    spec.key = Some(good);
    let agent = Agent::start(dir.path(), &spec);
    let t = agent.target();
    wait_all_see(
        std::slice::from_ref(&t),
        &["w1"],
        &good_ring,
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("agent not up within 5 s: {e}"));

    let out = dir.path().join("evil.json");
    let child = spawn_peer(
        &py,
        &out,
        &[
            "--connect",
            &t,
            "--key",
            bad.to_str().expect("utf-8 path"),
            "--name",
            "evil",
            "--role",
            "node",
            "--duration",
            "3",
        ],
    );
    let v = finish_peer(child, &out, Duration::from_secs(10)).await;
    // ZMTP itself works (NULL mechanism); the meshmon layer gives the peer nothing.
    assert_eq!(v["handshake"], true, "{v}");
    assert_eq!(v["hello_received"], false, "{v}");
    assert_eq!(v["frames_opened"], 0, "{v}");
    assert_eq!(v["status"], Value::Null, "{v}");

    let s = status(&t, &good_ring).await.expect("w1 status");
    assert!(s.auth_failures > 0, "no authentication failure counted");
    assert!(
        s.hosts.iter().all(|h| h.name != "evil"),
        "w1 accepted the peer"
    );
}
