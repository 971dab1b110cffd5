use super::*;

/// ms since the epoch of a UTC time written as RFC 3339.
fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .expect("timestamp")
        .as_millisecond()
}

fn sched(days: &[&str], from: &str, to: &str, tz: &str) -> Schedule {
    let days: Vec<String> = days.iter().map(|d| (*d).to_owned()).collect();
    Schedule::parse(&days, from, to, tz).expect("schedule")
}

#[test]
fn a_range_covers_its_days_and_times_only() {
    // 2026-11-28 is a Saturday.
    let s = sched(&["sat", "Sun"], "02:00", "04:00", "UTC");
    assert!(s.covers(at("2026-11-28T02:00:00Z")));
    assert!(s.covers(at("2026-11-28T03:59:59Z")));
    assert!(
        !s.covers(at("2026-11-28T04:00:00Z")),
        "the end is exclusive"
    );
    assert!(!s.covers(at("2026-11-28T01:59:59Z")));
    assert!(s.covers(at("2026-11-29T02:30:00Z")), "sunday");
    assert!(!s.covers(at("2026-11-30T02:30:00Z")), "monday");
    assert_eq!(s.describe(), "sat,sun 02:00-04:00 UTC");
}

#[test]
fn a_range_past_midnight_belongs_to_the_day_it_starts() {
    // Friday 22:00 to Saturday 02:00 (2026-11-27 is a Friday).
    let s = sched(&["fri"], "22:00", "02:00", "UTC");
    assert!(s.covers(at("2026-11-27T22:00:00Z")));
    assert!(s.covers(at("2026-11-28T01:59:00Z")), "saturday morning");
    assert!(!s.covers(at("2026-11-28T02:00:00Z")));
    assert!(!s.covers(at("2026-11-28T22:30:00Z")), "saturday evening");
    assert!(
        !s.covers(at("2026-11-27T01:00:00Z")),
        "friday morning is thursday's"
    );
    // Sunday night into Monday wraps around the week.
    let s = sched(&["sun"], "23:00", "01:00", "UTC");
    assert!(s.covers(at("2026-11-30T00:30:00Z")), "monday 00:30");
}

#[test]
fn no_days_means_every_day_and_equal_times_a_whole_day() {
    let s = sched(&[], "00:00", "00:00", "UTC");
    for day in 23..30 {
        assert!(s.covers(at(&format!("2026-11-{day}T12:00:00Z"))));
    }
    assert_eq!(s.describe(), "daily 00:00-00:00 UTC");
}

#[test]
fn local_times_follow_the_zone_and_its_offset() {
    // Berlin is UTC+1 in November: 02:00 local is 01:00 UTC.
    let s = sched(&["sat"], "02:00", "04:00", "Europe/Berlin");
    assert!(s.covers(at("2026-11-28T01:00:00Z")));
    assert!(!s.covers(at("2026-11-28T03:30:00Z")));
    // In summer (UTC+2), 02:00 local is 00:00 UTC (2026-07-04 is a Saturday).
    assert!(s.covers(at("2026-07-04T00:00:00Z")));
    assert!(!s.covers(at("2026-07-04T02:00:00Z")));
}

#[test]
fn dst_changes_keep_local_times() {
    // Spring: Sunday 2026-03-29, Berlin skips 02:00-03:00 (01:00 UTC is 03:00 CEST).
    let s = sched(&["sun"], "02:00", "04:00", "Europe/Berlin");
    assert!(!s.covers(at("2026-03-29T00:59:00Z")), "01:59 CET");
    assert!(s.covers(at("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(s.covers(at("2026-03-29T01:59:00Z")), "03:59 CEST");
    assert!(
        !s.covers(at("2026-03-29T02:00:00Z")),
        "04:00 CEST: one hour that day"
    );
    // Autumn: Sunday 2026-10-25, 02:00-03:00 happens twice (CEST, then CET).
    let s = sched(&["sun"], "02:00", "03:00", "Europe/Berlin");
    assert!(!s.covers(at("2026-10-24T23:59:00Z")), "01:59 CEST");
    assert!(s.covers(at("2026-10-25T00:00:00Z")), "02:00 CEST");
    assert!(
        s.covers(at("2026-10-25T01:30:00Z")),
        "02:30 CET, the second time"
    );
    assert!(
        !s.covers(at("2026-10-25T02:00:00Z")),
        "03:00 CET: two hours that day"
    );
    // US zones change on other dates: New York, Sunday 2026-03-08 at 02:00 EST.
    let s = sched(&["sun"], "01:00", "05:00", "America/New_York");
    assert!(s.covers(at("2026-03-08T06:00:00Z")), "01:00 EST");
    assert!(s.covers(at("2026-03-08T08:59:00Z")), "04:59 EDT");
    assert!(
        !s.covers(at("2026-03-08T09:00:00Z")),
        "05:00 EDT: three hours"
    );
}

#[test]
fn bad_values_name_their_key() {
    let err = |days: &[&str], from, to, tz| {
        let days: Vec<String> = days.iter().map(|d| (*d).to_owned()).collect();
        Schedule::parse(&days, from, to, tz).expect_err("invalid")
    };
    let e = err(&["sat"], "02:00", "04:00", "Mars/Olympus");
    assert_eq!(e.key, "timezone");
    assert!(
        e.message
            .starts_with("'Mars/Olympus' is not an IANA time zone")
    );
    assert_eq!(err(&["caturday"], "02:00", "04:00", "UTC").key, "days");
    assert_eq!(err(&["saturnday"], "02:00", "04:00", "UTC").key, "days");
    assert_eq!(
        sched(&["Saturday", "sun"], "02:00", "04:00", "UTC").describe(),
        "sat,sun 02:00-04:00 UTC"
    );
    assert_eq!(err(&["sat"], "24:00", "04:00", "UTC").key, "from");
    assert_eq!(err(&["sat"], "02:00", "4pm", "UTC").key, "to");
    assert_eq!(err(&["sat"], "02:00", "04:5", "UTC").key, "to");
}

fn oneoff(host: &str, until_ms: i64, maintenance: bool) -> SilenceRow {
    SilenceRow {
        id: 7,
        ident: "n-1-x".into(),
        rule: "*".into(),
        host: host.into(),
        created_ms: 0,
        until_ms,
        by: "kernel upgrade".into(),
        removed: false,
        updated_ms: 0,
        maintenance,
    }
}

#[test]
fn windows_match_hosts_and_rules_and_list_the_active_ones() {
    let now = at("2026-11-28T03:00:00Z");
    let mut w = Windows::new(vec![Recurring {
        hosts: vec!["db*".into()],
        rules: vec!["host-down".into(), "disk-*".into()],
        schedule: sched(&["sat"], "02:00", "04:00", "UTC"),
    }]);
    assert!(w.covers("host-down", "db1", now));
    assert!(w.covers("disk-full", "db1", now));
    assert!(!w.covers("cpu-hot", "db1", now));
    assert!(!w.covers("host-down", "web1", now));
    assert!(!w.covers("host-down", "db1", now + 3_600_000));
    let rows = [
        oneoff("web*", now + 5_000, true),
        oneoff("*", now + 9_000, false),
    ];
    w.set_oneoff(&rows);
    assert!(w.covers("cpu-hot", "web1", now), "the one-off window");
    assert!(!w.covers("cpu-hot", "web1", now + 5_000), "it ended");
    assert!(
        !w.covers("cpu-hot", "app1", now),
        "a plain silence is no window"
    );
    let active = w.active(now);
    assert_eq!(active.len(), 2);
    assert_eq!(active[0].when, "sat 02:00-04:00 UTC");
    assert_eq!(active[1].source, "7");
    assert_eq!(active[1].comment, "kernel upgrade");
    assert_eq!(w.active(now + 3_600_000), vec![]);
}
