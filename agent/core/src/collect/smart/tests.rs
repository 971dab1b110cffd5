//! The parser on real smartctl outputs (tests/fixtures/smartctl), and the whole collector
//! through a fake `smartctl` program.

use super::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/smartctl")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn nvme_fixture() {
    let h = health(&fixture("smart-nvme.json"));
    assert_eq!(
        h,
        Health {
            passed: Some(true),
            temp_c: Some(36.0),
            power_on_hours: Some(2401.0),
            percentage_used: Some(0.0),
            media_errors: Some(0.0),
            critical_warning: Some(0.0),
        }
    );
}

#[test]
fn ata_scsi_and_failing_fixtures() {
    let ata = health(&fixture("smart-ata.json"));
    assert_eq!(ata.passed, Some(true));
    assert_eq!(ata.temp_c, Some(32.0));
    assert_eq!(ata.power_on_hours, Some(1730.0));
    assert_eq!(
        (ata.percentage_used, ata.media_errors, ata.critical_warning),
        (None, None, None),
        "ATA drives report none of the NVMe-only fields"
    );
    let scsi = health(&fixture("smart-scsi.json"));
    assert_eq!(scsi.passed, Some(true));
    assert_eq!(scsi.temp_c, Some(34.0));
    assert_eq!(scsi.power_on_hours, Some(43549.0));
    let fail = fixture("smart-fail2.json");
    let h = health(&fail);
    assert_eq!(h.passed, Some(false));
    assert_eq!(h.temp_c, Some(25.0));
    assert_eq!(h.power_on_hours, Some(65592.0));
    assert!(
        smartctl::check_exit(&fail, Some(216)).is_ok(),
        "exit 216 (bits 3, 4, 6, 7) still carries a valid report"
    );
    let mut out = Vec::new();
    samples("/dev/sdc", &h, &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].0.to_string(), "smart.passed{device=\"/dev/sdc\"}");
    assert_eq!(out[0].1, 0.0);
}

/// The fake smartctl of the fixtures (`tests/fixtures/smartctl/fake-smartctl`): `--scan`
/// lists four drives and one that cannot be opened; `--xall` prints the matching fixture (with
/// the real exit status of the failing one).
pub fn fake_smartctl() -> PathBuf {
    fixtures().join("fake-smartctl")
}

fn value(out: &[Sample], name: &str, device: &str) -> Option<f64> {
    out.iter()
        .find(|(k, _)| k.name == name && k.label("device") == Some(device))
        .map(|(_, v)| *v)
}

#[test]
fn collector_end_to_end_through_a_fake_smartctl() {
    let program = fake_smartctl();
    let (extras, stop) = (Extras::default(), Stop::default());
    let t = start(
        Some(&program.display().to_string()),
        Duration::from_secs(60),
        &extras,
        &stop,
    )
    .expect("thread");
    let until = Instant::now() + Duration::from_secs(20);
    let out = loop {
        if let Some(v) = extras.get(SOURCE) {
            break v;
        }
        assert!(Instant::now() < until, "smart samples within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.stop();
    t.join().expect("smart thread");
    assert_eq!(value(&out, "smart.passed", "/dev/nvme0"), Some(1.0));
    assert_eq!(value(&out, "smart.temp_c", "/dev/nvme0"), Some(36.0));
    assert_eq!(
        value(&out, "smart.power_on_hours", "/dev/nvme0"),
        Some(2401.0)
    );
    assert_eq!(
        value(&out, "smart.percentage_used", "/dev/nvme0"),
        Some(0.0)
    );
    assert_eq!(value(&out, "smart.media_errors", "/dev/nvme0"), Some(0.0));
    assert_eq!(
        value(&out, "smart.critical_warning", "/dev/nvme0"),
        Some(0.0)
    );
    assert_eq!(value(&out, "smart.passed", "/dev/sda"), Some(1.0));
    assert_eq!(value(&out, "smart.temp_c", "/dev/sda"), Some(32.0));
    assert_eq!(
        value(&out, "smart.power_on_hours", "/dev/sdg"),
        Some(43549.0)
    );
    assert_eq!(
        value(&out, "smart.passed", "/dev/sdc"),
        Some(0.0),
        "failing"
    );
    assert_eq!(value(&out, "smart.temp_c", "/dev/sdc"), Some(25.0));
    assert!(
        !out.iter()
            .any(|(k, _)| k.label("device") == Some("/dev/sdz")),
        "the drive that cannot be opened has no series"
    );
    assert_eq!(out.len(), 6 + 3 + 3 + 3);
}

#[test]
fn missing_smartctl_gives_no_metric_and_stops_promptly() {
    let (extras, stop) = (Extras::default(), Stop::default());
    let t = start(
        Some("/nonexistent/dir/smartctl"),
        Duration::from_millis(50),
        &extras,
        &stop,
    )
    .expect("thread");
    std::thread::sleep(Duration::from_millis(300));
    assert!(extras.get(SOURCE).is_none());
    assert!(
        !t.is_finished(),
        "keeps trying (smartmontools may be installed later)"
    );
    stop.stop();
    t.join().expect("smart thread");
    assert!(start(None, Duration::from_secs(1), &extras, &stop).is_none());
}

#[test]
fn describe_names_the_drives_and_the_permission_problem() {
    let d = |n: &str| Device {
        name: n.into(),
        kind: "sat".into(),
    };
    let err = RunError::Device {
        status: 2,
        messages: "Smartctl open device: /dev/sda failed: Permission denied".into(),
    };
    let p = describe(
        "smartctl",
        &[d("/dev/sda"), d("/dev/sdb")],
        &[("/dev/sda".into(), err)],
    );
    let t = p.text();
    assert!(matches!(p, Problem::Warn(_)));
    assert!(t.contains("cannot read 1 of 2 drives (/dev/sda)"), "{t}");
    assert!(t.contains("CAP_SYS_RAWIO"), "{t}");
    assert!(matches!(describe("smartctl", &[], &[]), Problem::Info(_)));
}
