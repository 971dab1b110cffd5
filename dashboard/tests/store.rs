//! The store end to end on real SQLite files: queries match a reference computation, late
//! samples are merged, retention keeps rollups, readers work while the writer writes, and
//! `meshmon query` output follows INTERFACE.md.

mod common;

use common::*;
use meshmon_dashboard::agg::p95_exact;
use meshmon_dashboard::cli::{Format, Query};
use meshmon_dashboard::layout::RAW_WINDOW_MS;
use meshmon_dashboard::{Ingest, Reader};
use meshmon_proto::Selector;
use meshmon_proto::payload::HostInfo;
use std::time::Duration;

/// A deterministic, wiggly series with repeats, negatives and a NaN now and then.
fn value(i: i64) -> f64 {
    if i % 997 == 0 {
        return f64::NAN;
    }
    let x = ((i * 7919) % 1000) as f64 / 10.0 - 20.0;
    f64::from(x as f32)
}

#[test]
fn stats_and_series_match_a_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let n = 3 * 3600; // three hours at 1 s, with jitter
    let ts = |i: i64| T0 + i * 1000 + (i * 31 % 4);
    let (w, clock) = writer(&db, T0 + n * 1000);
    let key = cpu();
    send(
        &w,
        (0..n).map(|i| sample("a", &key, ts(i), value(i))).collect(),
    );
    w.flush().expect("flush");

    let r = Reader::open(&db).expect("reader");
    let sel = Selector::parse("cpu.usage_pct").expect("selector");
    let (since, until) = (ts(100), ts(9000));
    let stats = r
        .stats("a", std::slice::from_ref(&sel), since, until)
        .expect("stats");
    let st = stats[0].1.expect("data");
    let mut vals: Vec<f64> = (100..=9000).map(value).filter(|v| !v.is_nan()).collect();
    assert_eq!(st.count, vals.len() as u64);
    assert_eq!(st.min, vals.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(
        st.max,
        vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    let avg = vals.iter().sum::<f64>() / vals.len() as f64;
    assert!((st.avg - avg).abs() < 1e-9, "{} vs {avg}", st.avg);
    assert_eq!(st.last, value(9000));
    assert_eq!(st.p95, p95_exact(&mut vals));

    let rows = r.series("a", &sel, since, until, None).expect("series");
    assert_eq!(rows[0].points.len(), 8901);
    assert_eq!(rows[0].points[5], (ts(105), value(105)));

    // Downsampled: each 5-minute step is the mean of its samples.
    let rows = r
        .series("a", &sel, T0, T0 + n * 1000, Some(Duration::from_secs(300)))
        .expect("steps");
    assert_eq!(rows[0].points.len(), 36);
    let first: Vec<f64> = (0..300).map(value).filter(|v| !v.is_nan()).collect();
    let mean = first.iter().sum::<f64>() / first.len() as f64;
    assert_eq!(rows[0].points[0].0, T0);
    assert!((rows[0].points[0].1 - mean).abs() < 1e-9);

    // Once the hours are rolled up, a long step reads rollups and gives the same means.
    clock.advance(3_600_000);
    w.maintain().expect("maintain");
    let r = Reader::open(&db).expect("reader");
    let rolled = r
        .series("a", &sel, T0, T0 + n * 1000, Some(Duration::from_secs(300)))
        .expect("steps from rollups");
    assert_eq!(rolled[0].points.len(), rows[0].points.len());
    for (a, b) in rolled[0].points.iter().zip(&rows[0].points) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() < 1e-9, "{a:?} vs {b:?}");
    }
    w.shutdown();
}

#[test]
fn late_and_repeated_samples_are_merged_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, clock) = writer(&db, T0 + 3 * RAW_WINDOW_MS);
    let key = cpu();
    // Even seconds first, across three windows; flushed (windows 0 and 1 sealed).
    send(
        &w,
        (0..1800)
            .step_by(2)
            .map(|i| sample("a", &key, T0 + i * 1000, i as f64))
            .collect(),
    );
    w.flush().expect("flush");
    // Then the odd seconds, newest first (backfill), and every even one again.
    send(
        &w,
        (0..1800)
            .rev()
            .map(|i| sample("a", &key, T0 + i * 1000, i as f64))
            .collect(),
    );
    w.flush().expect("flush");
    let r = Reader::open(&db).expect("reader");
    let rows = r
        .series(
            "a",
            &Selector::parse("cpu.usage_pct").expect("sel"),
            T0,
            T0 + 1_800_000,
            None,
        )
        .expect("series");
    let want: Vec<(i64, f64)> = (0..1800).map(|i| (T0 + i * 1000, i as f64)).collect();
    assert_eq!(rows[0].points, want);
    assert!(w.health().late > 0);

    // Late samples for an hour already rolled up re-roll it.
    clock.set(T0 + 3 * 3_600_000);
    w.maintain().expect("maintain");
    send(&w, vec![sample("a", &key, T0 + 1_799_500, 1e6)]);
    w.maintain().expect("maintain");
    let r = Reader::open(&db).expect("reader");
    let sel = Selector::parse("cpu.usage_pct").expect("sel");
    let hourly = r
        .series(
            "a",
            &sel,
            T0,
            T0 + 3_600_000,
            Some(Duration::from_secs(3600)),
        )
        .expect("hourly");
    let sum: f64 = (0..1800).map(f64::from).sum::<f64>() + 1e6;
    assert!(
        (hourly[0].points[0].1 - sum / 1801.0).abs() < 1e-6,
        "{:?}",
        hourly[0].points
    );
    w.shutdown();
}

#[test]
fn retention_prunes_raw_but_keeps_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, clock) = writer(&db, T0 + 2 * 3_600_000);
    let key = cpu();
    send(
        &w,
        (0..7200)
            .map(|i| sample("a", &key, T0 + i * 1000, (i % 100) as f64))
            .collect(),
    );
    w.flush().expect("flush");
    clock.set(T0 + 8 * 86_400_000);
    w.maintain().expect("maintain");

    let conn = rusqlite::Connection::open(&db).expect("open");
    let chunks: i64 = conn
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .expect("count");
    let m1: i64 = conn
        .query_row("SELECT count(*) FROM rollup_1m", [], |r| r.get(0))
        .expect("count");
    assert_eq!(chunks, 0, "raw data past retention is gone");
    assert!(m1 > 0, "rollups remain");

    let r = Reader::open(&db).expect("reader");
    let sel = Selector::parse("cpu.usage_pct").expect("sel");
    let st = r
        .stats("a", std::slice::from_ref(&sel), T0, T0 + 7_200_000)
        .expect("stats")[0]
        .1
        .expect("data");
    assert_eq!((st.count, st.min, st.max, st.avg), (7200, 0.0, 99.0, 49.5));
    // The exact p95 is 94; from rollups it is the count-weighted p95 of per-minute p95s.
    assert!(
        (94.0..=97.0).contains(&st.p95),
        "approximate p95 {}",
        st.p95
    );
    let pts = r
        .series("a", &sel, T0, T0 + 7_200_000, None)
        .expect("series");
    assert_eq!(
        pts[0].points.len(),
        120,
        "one point per minute from rollups"
    );
    // Samples older than raw retention are refused.
    send(&w, vec![sample("a", &key, T0, 1.0)]);
    w.flush().expect("flush");
    assert_eq!(w.shutdown().refused, 1);
}

#[test]
fn readers_work_while_the_writer_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, clock) = writer(&db, T0);
    w.flush().expect("create");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let r = Reader::open(&db).expect("reader");
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = r.hosts(T0).expect("hosts query never fails").len();
                let c = r
                    .stats("h0", &[], T0, T0 + 86_400_000)
                    .map(|s| s.iter().map(|x| x.1.map_or(0, |s| s.count)).sum::<u64>())
                    .unwrap_or(0);
                seen.push((n, c));
            }
            seen
        })
    };
    let keys: Vec<_> = (0..20).map(|i| disk(&format!("/m{i}"))).collect();
    for sec in 0..1200 {
        clock.set(T0 + sec * 1000);
        let batch = (0..10)
            .flat_map(|h| keys.iter().map(move |k| (h, k)))
            .map(|(h, k)| sample(&format!("h{h}"), k, T0 + sec * 1000, sec as f64))
            .collect();
        send(&w, batch);
        if sec % 300 == 0 {
            w.flush().expect("flush");
        }
    }
    w.flush().expect("flush");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = reader.join().expect("reader thread");
    assert!(seen.len() > 3, "reader ran: {}", seen.len());
    assert!(
        seen.windows(2).all(|p| p[0].1 <= p[1].1),
        "counts never go back"
    );
    let r = Reader::open(&db).expect("reader");
    let total: u64 = r
        .stats("h3", &[], T0, T0 + 86_400_000)
        .expect("stats")
        .iter()
        .map(|x| x.1.map_or(0, |s| s.count))
        .sum();
    assert_eq!(total, 20 * 1200);
    w.shutdown();
}

#[test]
fn hosts_and_query_output_follow_the_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let (w, _clock) = writer(&db, T0);
    let info = HostInfo {
        os: "Debian GNU/Linux 13".into(),
        version: "0.1.0".into(),
        tags: vec!["gpu".into(), "prod".into()],
        interval_ms: 1000,
        boot_time_s: (T0 / 1000 - 3600) as u64,
        ..HostInfo::default()
    };
    assert!(w.try_send(Ingest::Host {
        name: "srv1".into(),
        info,
        hops: 2,
        ts_ms: T0
    }));
    assert!(w.try_send(Ingest::Seen {
        name: "srv2".into(),
        hops: 1,
        ts_ms: T0 - 60_000
    }));
    send(
        &w,
        vec![
            sample("srv1", &disk("/"), T0, 12.5),
            sample("srv1", &disk("/home"), T0, 3.0),
            sample(
                "srv2",
                &meshmon_proto::SeriesKey::new(meshmon_proto::metrics::Metric::HostClockOffsetMs),
                T0 - 61_000,
                -1_500.0,
            ),
        ],
    );
    w.flush().expect("flush");

    let q = Query {
        db: &db,
        format: Format::Json,
        now_ms: T0 + 2000,
    };
    let hosts: serde_json::Value =
        serde_json::from_str(&q.hosts().expect("hosts").text).expect("json");
    assert_eq!(
        hosts,
        serde_json::json!([
            {"host": "srv1", "status": "up", "last_seen": "2023-11-14T22:20:00.000Z", "hops": 2,
             "version": "0.1.0", "os": "Debian GNU/Linux 13", "uptime_s": 3600, "tags": ["gpu", "prod"],
             "clock_offset_ms": null},
            {"host": "srv2", "status": "down", "last_seen": "2023-11-14T22:19:00.000Z", "hops": 1,
             "version": null, "os": null, "uptime_s": null, "tags": [], "clock_offset_ms": -1500}
        ])
    );
    let csv = Query {
        format: Format::Csv,
        ..q
    };
    let out = csv
        .stats("srv1", &[], Some("1h"), None)
        .expect("stats")
        .text;
    assert_eq!(
        out,
        "metric,count,min,max,avg,p95,last\n\
         \"disk.used_pct{mount=\"\"/\"\"}\",1,12.5,12.5,12.5,12.5,12.5\n\
         \"disk.used_pct{mount=\"\"/home\"\"}\",1,3,3,3,3,3\n"
    );
    let table = Query {
        format: Format::Table,
        ..q
    };
    let out = table
        .series(
            "srv1",
            "disk.used_pct{mount=\"/\"}",
            Some("1h"),
            Some("now"),
            None,
        )
        .expect("series")
        .text;
    assert_eq!(
        out,
        "TS                        VALUE\n2023-11-14T22:20:00.000Z   12.5\n"
    );
    let err = table
        .series("srv1", "disk.used_pct", None, None, None)
        .expect_err("ambiguous");
    assert!(err.to_string().contains("matches 2 series"), "{err}");
    let err = table
        .series("nope", "cpu.usage_pct", None, None, None)
        .expect_err("unknown");
    assert_eq!(err.to_string(), "no host 'nope' in the store");
    let err = table
        .series("srv1", "cpu.usage_pct", Some("yesterday"), None, None)
        .expect_err("bad time");
    assert!(
        err.to_string().contains("'yesterday' is not a time"),
        "{err}"
    );
    assert_eq!(q.alerts(true, None).expect("alerts").text, "[]\n");
    assert_eq!(
        csv.alerts(false, Some("1d")).expect("alerts").text,
        "id,rule,host,state,severity,started,ended,value,acked,maintenance\n"
    );
    let mut buf = Vec::new();
    q.export("srv1", None, None, &mut buf).expect("export");
    let rows: serde_json::Value = serde_json::from_slice(&buf).expect("export json");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["metric"], "disk.used_pct{mount=\"/\"}");
    assert_eq!(rows[0]["value"], 12.5);
    w.shutdown();
}
