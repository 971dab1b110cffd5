//! Fresh queries on real SQLite files and a real Unix socket: a store writer that has not
//! flushed serves its head on `<store>.sock`, and `meshmon query`'s code merges it with the
//! file (series, stats, export, checks, hosts; series and hosts only the head knows); a
//! stopped node's file answers alone, at once; a stale socket, a bad request and an oversized
//! one are handled without harm.

mod common;

use common::*;
use meshmon_dashboard::cli::{Format, Query};
use meshmon_dashboard::head::client::{Fetched, fetch};
use meshmon_dashboard::head::{HEAD_VERSION, HeadRequest, socket_path};
use meshmon_dashboard::layout::RAW_WINDOW_MS;
use meshmon_dashboard::{Ingest, WriterHandle};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use meshmon_proto::payload::HostInfo;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The endpoint of `w`, served by a runtime on a thread of its own until dropped.
struct Endpoint {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    fn start(db: &Path, w: &WriterHandle) -> Endpoint {
        let stop = CancellationToken::new();
        let (heads, path, token) = (w.heads(), socket_path(db), stop.clone());
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let tracker = TaskTracker::new();
                let served = meshmon_dashboard::head::serve::start(path, heads, &tracker, &token);
                let _ = ready_tx.send(served.is_some());
                token.cancelled().await;
                tracker.close();
                tracker.wait().await;
            });
        });
        assert!(ready.recv().expect("endpoint thread"), "endpoint serves");
        Endpoint {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Before everything the tests write.
const SINCE: &str = "2023-11-14T00:00:00Z";

fn q(db: &Path, now: i64, format: Format) -> Query<'_> {
    Query {
        db,
        format,
        now_ms: now,
    }
}

fn points(json: &str) -> Vec<(String, f64)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().expect("ts").to_owned(),
                r["value"].as_f64().expect("value"),
            )
        })
        .collect()
}

#[test]
fn queries_merge_the_running_writers_head_with_the_file() {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let now = T0 + 2 * RAW_WINDOW_MS;
    // A manual clock: the writer never flushes by itself here.
    let (w, _clock) = writer(&db, now);
    let endpoint = Endpoint::start(&db, &w);
    let cpu = cpu();
    let mem = SeriesKey::new(Metric::MemUsedPct);
    let web = SeriesKey::labelled(Metric::CheckUp, "web");
    // Written: the first window and half of the second.
    let first: Vec<_> = (0..900)
        .map(|i| sample("a", &cpu, T0 + i * 1000, i as f64))
        .collect();
    send(&w, first);
    w.flush().expect("flush");
    // Unwritten: the rest of the second window, a late sample into the written first
    // window, a series and a host only the head knows.
    let mut rest: Vec<_> = (900..1190)
        .map(|i| sample("a", &cpu, T0 + i * 1000 + 500, i as f64))
        .collect();
    rest.push(sample("a", &cpu, T0 + 10_500, -1.0));
    rest.push(sample("a", &mem, T0 + 1_100_000, 42.0));
    rest.push(sample("a", &web, T0 + 1_100_000, 1.0));
    send(&w, rest);
    assert!(w.try_send(Ingest::Host {
        name: "b".into(),
        info: HostInfo {
            version: "9.9.9".into(),
            interval_ms: 1000,
            ..HostInfo::default()
        },
        hops: 2,
        ts_ms: now - 500,
    }));

    let json = q(&db, now, Format::Json);
    let got = points(
        &json
            .series("a", "cpu.usage_pct", Some(SINCE), None, None)
            .map(|o| o.text)
            .unwrap_or_else(|e| panic!("series: {e}")),
    );
    assert_eq!(
        got.len(),
        1190 + 1,
        "written, unwritten and the late sample"
    );
    assert_eq!(got.last().map(|p| p.1), Some(1189.0));
    let late = meshmon_dashboard::time::format_rfc3339(T0 + 10_500);
    assert!(got.contains(&(late, -1.0)), "the late sample");

    let stats = json
        .stats("a", &["mem.used_pct".into()], Some(SINCE), None)
        .expect("a series only the head has");
    assert!(stats.text.contains("\"count\":1"), "{}", stats.text);
    assert_eq!(stats.warning, None);

    let err = json
        .series("a", "mem.usd_pct", Some(SINCE), None, None)
        .expect_err("no such series");
    let text = err.to_string();
    assert!(text.contains("closest: mem.used_pct"), "{text}");

    let checks = json.checks(Some(SINCE), None).expect("checks");
    assert!(checks.text.contains("\"check\":\"web\""), "{}", checks.text);

    let hosts = json.hosts().expect("hosts");
    assert!(hosts.text.contains("\"host\":\"b\""), "{}", hosts.text);
    assert!(
        hosts.text.contains("\"version\":\"9.9.9\""),
        "{}",
        hosts.text
    );

    let mut csv = Vec::new();
    q(&db, now, Format::Csv)
        .export("a", None, None, &mut csv)
        .expect("export");
    let lines = String::from_utf8(csv).expect("utf-8").lines().count();
    assert_eq!(lines, 1 + 1191 + 2, "header, cpu, mem and check.up rows");

    // The node stops (its final flush writes everything): the file answers alone, at once.
    drop(endpoint);
    w.shutdown();
    assert!(
        !socket_path(&db).exists(),
        "the socket is removed at the end"
    );
    let started = Instant::now();
    let alone = points(
        &json
            .series("a", "cpu.usage_pct", Some(SINCE), None, None)
            .expect("series from the file")
            .text,
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(alone, got, "the file alone now has the same rows");
}

#[test]
fn a_stale_socket_means_the_file_alone_without_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, _clock) = writer(&db, T0 + 60_000);
    send(&w, vec![sample("a", &cpu(), T0, 1.0)]);
    w.flush().expect("flush");
    w.shutdown();
    // What a node killed with -9 leaves: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(socket_path(&db)).expect("bind"));
    assert!(socket_path(&db).exists());
    let req = HeadRequest {
        version: HEAD_VERSION,
        ..HeadRequest::default()
    };
    let started = Instant::now();
    assert!(matches!(fetch(&db, &req), Fetched::NotRunning));
    let out = q(&db, T0 + 60_000, Format::Csv)
        .series("a", "cpu.usage_pct", Some(SINCE), None, None)
        .expect("series");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(out.warning, None);
    assert_eq!(out.text.lines().count(), 2);
    // A node starting on that store replaces the stale socket.
    let (w, _clock) = writer(&db, T0 + 60_000);
    let endpoint = Endpoint::start(&db, &w);
    assert!(matches!(fetch(&db, &req), Fetched::Head(_)));
    // From inside an async runtime too (`meshmon demo` asks from one).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let inside = rt.block_on(async { fetch(&db, &req) });
    assert!(matches!(inside, Fetched::Head(_)), "{inside:?}");
    drop(endpoint);
    w.shutdown();
}

#[test]
fn bad_and_oversized_requests_get_an_error_and_the_endpoint_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, _clock) = writer(&db, T0 + 60_000);
    let endpoint = Endpoint::start(&db, &w);
    let path = socket_path(&db);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&path).expect("socket").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let ask = |bytes: &[u8]| -> Vec<u8> {
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(bytes).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    // Over the size limit: refused before reading the body.
    let reply = ask(&u32::MAX.to_be_bytes());
    assert!(String::from_utf8_lossy(&reply).contains("over the limit"));
    // Not MessagePack.
    let mut garbage = 3u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xc1, 0xc1, 0xc1]);
    let reply = ask(&garbage);
    assert!(String::from_utf8_lossy(&reply).contains("not a head request"));
    // Another version.
    let req = HeadRequest {
        version: 99,
        ..HeadRequest::default()
    };
    match fetch(&db, &req) {
        Fetched::Failed(e) => assert!(e.contains("version 99"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A client that connects and says nothing is dropped after the timeout; others are
    // served meanwhile.
    let _silent = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let ok = HeadRequest {
        version: HEAD_VERSION,
        ..HeadRequest::default()
    };
    assert!(matches!(fetch(&db, &ok), Fetched::Head(_)));
    drop(endpoint);
    w.shutdown();
}

/// The web dashboard asks several queries at once: more requests than
/// `serve::MAX_CONNECTIONS` wait in the socket's backlog and are all answered from the head;
/// none is closed (which would make its query read the file alone, without the newest data).
#[test]
fn more_requests_at_once_than_connections_all_get_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, _clock) = writer(&db, T0 + 60_000);
    let endpoint = Endpoint::start(&db, &w);
    let n = 3 * meshmon_dashboard::head::serve::MAX_CONNECTIONS;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let askers: Vec<_> = (0..n)
        .map(|_| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let req = HeadRequest {
                    version: HEAD_VERSION,
                    ..HeadRequest::default()
                };
                matches!(fetch(&db, &req), Fetched::Head(_))
            })
        })
        .collect();
    let answered = askers
        .into_iter()
        .map(|t| t.join())
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(answered, n, "every request answered from the head");
    drop(endpoint);
    w.shutdown();
}
