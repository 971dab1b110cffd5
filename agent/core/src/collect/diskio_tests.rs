//! `/proc/diskstats` parsing and rates on recorded fixtures (`tests/fixtures/diskio`: two
//! readings 2 s apart and a sysfs tree with disks, partitions, dm, md, loop and optical).

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/diskio")
}

fn stats(name: &str) -> Vec<(String, Counters)> {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    parse(&path.display().to_string(), &text).expect("parse")
}

fn disk_io(partitions: bool) -> DiskIo {
    let f = fixtures();
    DiskIo::at_root(
        &f.join("diskstats.a").display().to_string(),
        &f.join("sys"),
        partitions,
    )
}

/// Two readings 2 s apart; the values of the second.
fn two_readings(d: &mut DiskIo) -> Vec<Sample> {
    let (t0, two_s) = (Instant::now(), Duration::from_secs(2));
    let mut out = Vec::new();
    d.update(stats("diskstats.a"), t0, None, &mut out);
    assert!(out.is_empty(), "the first reading has no rates");
    d.update(stats("diskstats.b"), t0 + two_s, Some(two_s), &mut out);
    out
}

fn value(out: &[Sample], name: &str, device: &str) -> Option<f64> {
    out.iter()
        .find(|(k, _)| k.name == name && k.label("device") == Some(device))
        .map(|(_, v)| *v)
}

fn devices(out: &[Sample]) -> Vec<String> {
    let mut d: Vec<String> = out
        .iter()
        .filter_map(|(k, _)| k.label("device").map(str::to_owned))
        .collect();
    d.dedup();
    d
}

#[test]
fn parses_old_and_new_layouts_and_rejects_garbage() {
    let s = stats("diskstats.a");
    assert_eq!(s.len(), 10);
    let (name, sda) = &s[2];
    assert_eq!(name, "sda");
    assert_eq!(
        *sda,
        Counters {
            reads: 3_620_873,
            read_sectors: 170_031_274,
            read_ms: 28_419_943,
            writes: 440_766,
            write_sectors: 630_773_256,
            write_ms: 5_934_769,
            io_ticks_ms: 922_300,
        }
    );
    assert_eq!(s[5].0, "nvme0n1", "11 counters (kernels before 4.18)");
    for bad in [
        "8 0 sda 1 2 3",
        "8 0 sda 1 2 3 4 5 6 7 8 9 x 11",
        "8 0",
        "8 0 sda 1 2 3 4 5 6 7 8 9 10 -1",
    ] {
        assert!(parse("/proc/diskstats", bad).is_err(), "{bad}");
    }
    assert!(parse("/proc/diskstats", "").expect("empty").is_empty());
}

#[test]
fn whole_disks_dm_by_name_and_used_devices_only() {
    let out = two_readings(&mut disk_io(false));
    // Ranked: disks, then dm/md, then loop; md0 and loop1 never did I/O, partitions are off.
    assert_eq!(
        devices(&out),
        ["nvme0n1", "sda", "sr0", "vg0-root", "loop0"],
        "{out:#?}"
    );
    assert_eq!(out.len(), 5 * 7);
}

#[test]
fn rates_utilisation_and_await_over_the_elapsed_time() {
    let out = two_readings(&mut disk_io(false));
    for dev in ["sda", "vg0-root"] {
        // +20000 read sectors, +410000 written, +100 reads, +1000 writes, +10500 ms of I/O,
        // +500 ms io_ticks, over 2 s.
        let v = |n| value(&out, n, dev).expect(n);
        assert_eq!(v("diskio.read_bytes_per_s"), 20_000.0 * 512.0 / 2.0);
        assert_eq!(v("diskio.write_bytes_per_s"), 410_000.0 * 512.0 / 2.0);
        assert_eq!(v("diskio.iops"), 550.0);
        assert_eq!(v("diskio.read_iops"), 50.0);
        assert_eq!(v("diskio.write_iops"), 500.0);
        assert_eq!(v("diskio.util_pct"), 25.0);
        assert!((v("diskio.await_ms") - 10_500.0 / 1100.0).abs() < 1e-9);
    }
    assert_eq!(value(&out, "diskio.iops", "nvme0n1"), Some(0.0));
    assert_eq!(
        value(&out, "diskio.await_ms", "nvme0n1"),
        Some(0.0),
        "no I/O: 0"
    );
}

#[test]
fn partitions_when_asked() {
    let out = two_readings(&mut disk_io(true));
    assert_eq!(
        devices(&out),
        [
            "nvme0n1",
            "sda",
            "sr0",
            "vg0-root",
            "nvme0n1p1",
            "sda1",
            "sda2",
            "loop0"
        ]
    );
    assert_eq!(value(&out, "diskio.write_iops", "sda2"), Some(500.0));
}

#[test]
fn devices_over_the_bound_are_folded_into_other() {
    let mut d = disk_io(false);
    d.max = 2;
    let out = two_readings(&mut d);
    assert_eq!(devices(&out), ["nvme0n1", "sda", OTHER]);
    // other = sr0 + vg0-root + loop0: the writes of vg0-root; utilisation is their mean.
    assert_eq!(value(&out, "diskio.write_iops", OTHER), Some(500.0));
    let util = value(&out, "diskio.util_pct", OTHER).expect("util");
    assert!((util - 25.0 / 3.0).abs() < 1e-9, "{util}");
}

#[test]
fn a_counter_going_back_gives_no_rates_for_that_device() {
    let mut d = disk_io(false);
    let (t0, s) = (Instant::now(), Duration::from_secs(1));
    let mut out = Vec::new();
    d.update(stats("diskstats.b"), t0, None, &mut out);
    d.update(stats("diskstats.a"), t0 + s, Some(s), &mut out);
    let devs = devices(&out);
    assert!(!devs.contains(&"sda".to_owned()), "{devs:?}");
    assert!(
        devs.contains(&"nvme0n1".to_owned()),
        "unchanged devices go on"
    );
    out.clear();
    d.update(stats("diskstats.b"), t0 + s, Some(Duration::ZERO), &mut out);
    assert!(out.is_empty(), "no time passed: no rates");
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let mut d = DiskIo::at_root("/nonexistent/diskstats", Path::new("/nonexistent"), false);
    assert!(matches!(
        d.collect(&mut Vec::new()),
        Err(CollectError::Read { .. })
    ));
}
