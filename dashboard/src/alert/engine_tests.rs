//! Engine tests with made-up frames and a made-up clock.

use super::*;
use crate::alert::rules::{Op, Severity};
use meshmon_proto::Selector;
use meshmon_proto::metrics::Metric;
use std::time::Duration;

fn threshold(name: &str, op: Op, t: f64, clear: Option<f64>, hold_s: u64, repeat_s: u64) -> Rule {
    Rule {
        name: name.into(),
        condition: Condition::Threshold {
            metric: Selector::parse("cpu.usage_pct").expect("selector"),
            op,
            threshold: t,
            clear,
        },
        hosts: "*".into(),
        tags: Vec::new(),
        hold: Duration::from_secs(hold_s),
        severity: Severity::Warning,
        repeat: Duration::from_secs(repeat_s),
        builtin: false,
    }
}

fn host_down(hold_s: u64) -> Rule {
    Rule {
        name: "host-down".into(),
        condition: Condition::HostDown,
        hosts: "*".into(),
        tags: Vec::new(),
        hold: Duration::from_secs(hold_s),
        severity: Severity::Critical,
        repeat: Duration::from_secs(3600),
        builtin: true,
    }
}

fn cpu(v: f64) -> Vec<(SeriesKey, f64)> {
    vec![(SeriesKey::new(Metric::CpuUsagePct), v)]
}

/// Feeds one value per second from `t0` and returns the events.
fn feed(e: &mut Engine, host: &str, t0: i64, values: &[f64]) -> Vec<(EventKind, AlertRecord)> {
    let mut events = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let ts = t0 + i as i64 * 1000;
        let mut out = Vec::new();
        e.frame(host, ts, ts, &cpu(*v), true, &mut out);
        for c in out {
            if let Change::Upsert(r, Some(ev)) = c {
                events.push((ev, r));
            }
        }
    }
    events
}

fn kinds(ev: &[(EventKind, AlertRecord)]) -> Vec<EventKind> {
    ev.iter().map(|(k, _)| *k).collect()
}

#[test]
fn fires_after_hold_once_and_resolves_once() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 2, 0)]);
    let ev = feed(&mut e, "a", 0, &[95.0, 95.0, 95.0, 95.0, 95.0, 10.0, 10.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Firing, EventKind::Resolved]);
    let (_, fired) = &ev[0];
    assert_eq!(fired.started_ms, 0);
    assert_eq!(
        fired.fired_ms,
        Some(2000),
        "fires at the first frame `for` after the start"
    );
    assert_eq!(ev[1].1.ended_ms, Some(5000));
    assert_eq!(ev[0].1.ident, ev[1].1.ident);
}

#[test]
fn a_short_spike_never_fires() {
    let mut e = Engine::new(vec![threshold("hot", Op::Gt, 90.0, None, 3, 0)]);
    let ev = feed(&mut e, "a", 0, &[95.0, 95.0, 50.0, 95.0, 95.0, 50.0]);
    assert!(ev.is_empty());
}

#[test]
fn a_held_value_reminds_only_every_repeat() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 0, 10)]);
    let ev = feed(&mut e, "a", 0, &[95.0; 35]);
    assert_eq!(
        kinds(&ev),
        vec![
            EventKind::Firing,
            EventKind::Reminder(1),
            EventKind::Reminder(2),
            EventKind::Reminder(3)
        ]
    );
    assert_eq!(ev[1].1.reminders, 1);
}

#[test]
fn acknowledged_alerts_send_no_reminders_but_resolve() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 0, 10)]);
    let ev = feed(&mut e, "a", 0, &[95.0; 5]);
    assert!(e.ack(&ev[0].1.ident));
    let ev = feed(&mut e, "a", 5000, &[95.0; 30]);
    assert!(ev.is_empty());
    let ev = feed(&mut e, "a", 35_000, &[1.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Resolved]);
    assert!(ev[0].1.acked);
}

#[test]
fn flapping_with_a_clear_threshold_notifies_once() {
    let mut e = Engine::new(vec![threshold("hot", Op::Gt, 90.0, Some(80.0), 0, 0)]);
    // 40 readings hovering around 90 (89..91) never get below 80.
    let values: Vec<f64> = (0..40)
        .map(|i| if i % 2 == 0 { 91.0 } else { 89.0 })
        .collect();
    let ev = feed(&mut e, "a", 0, &values);
    assert_eq!(kinds(&ev), vec![EventKind::Firing]);
    let ev = feed(&mut e, "a", 40_000, &[85.0, 79.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Resolved]);
    // Without the clear threshold the same input flaps on every reading.
    let mut e = Engine::new(vec![threshold("hot", Op::Gt, 90.0, None, 0, 0)]);
    let ev = feed(&mut e, "a", 0, &values);
    assert_eq!(ev.len(), 40);
}

#[test]
fn rules_apply_by_host_glob_and_tags() {
    let mut r = threshold("hot", Op::Ge, 90.0, None, 0, 0);
    r.hosts = "web*".into();
    r.tags = vec!["prod".into()];
    let mut e = Engine::new(vec![r]);
    e.host_info("web1", &["prod".into()], 1000, false);
    e.host_info("web2", &[], 1000, false);
    assert_eq!(feed(&mut e, "web1", 0, &[95.0]).len(), 1);
    assert!(feed(&mut e, "web2", 0, &[95.0]).is_empty(), "lacks the tag");
    assert!(
        feed(&mut e, "db1", 0, &[95.0]).is_empty(),
        "name does not match"
    );
}

#[test]
fn the_same_frames_give_the_same_identities_on_every_node() {
    let run = || {
        let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 2, 0)]);
        feed(&mut e, "a", 1_000_000, &[10.0, 95.0, 95.0, 95.0, 95.0])
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].1.ident, b[0].1.ident);
}

#[test]
fn increase_fires_on_a_rise_and_resolves_after_hold_without_one() {
    let rule = Rule {
        name: "media".into(),
        condition: Condition::Increase {
            metric: Selector::parse("cpu.usage_pct").expect("selector"),
        },
        hosts: "*".into(),
        tags: Vec::new(),
        hold: Duration::from_secs(5),
        severity: Severity::Critical,
        repeat: Duration::ZERO,
        builtin: true,
    };
    let mut e = Engine::new(vec![rule]);
    let ev = feed(
        &mut e,
        "a",
        0,
        &[3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
    );
    assert_eq!(kinds(&ev), vec![EventKind::Firing, EventKind::Resolved]);
    assert_eq!(
        ev[1].1.ended_ms,
        Some(9000),
        "five seconds after the last rise at 4 s"
    );
}

#[test]
fn host_down_pending_then_firing_then_resolved_by_a_frame() {
    let mut e = Engine::new(vec![host_down(15)]);
    e.host_info("a", &[], 1000, false);
    let mut out = Vec::new();
    e.frame("a", 10_000, 10_000, &[], false, &mut out);
    let mut events = Vec::new();
    let mut states = Vec::new();
    for s in 11..40 {
        let mut out = Vec::new();
        e.tick(s * 1000, &mut out);
        for c in out {
            if let Change::Upsert(r, ev) = c {
                states.push((s, r.state.clone()));
                if let Some(ev) = ev {
                    events.push((s, ev, r));
                }
            }
        }
    }
    assert_eq!(states[0], (15, "pending".to_owned()), "down after 5 s");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, 25, "fires 15 s after the last frame");
    assert_eq!(
        events[0].2.started_ms, 10_000,
        "named with its last-seen time"
    );
    let mut out = Vec::new();
    e.frame("a", 40_000, 40_000, &[], false, &mut out);
    assert!(
        matches!(&out[..], [Change::Upsert(r, Some(EventKind::Resolved))] if r.ended_ms == Some(40_000))
    );
}

#[test]
fn a_restored_episode_resolves_under_a_changed_rule_and_does_not_refire() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 0.0, None, 0, 0)]);
    let ev = feed(&mut e, "a", 0, &[5.0]);
    let rec = ev[0].1.clone();
    // Restart with the same rule: no new firing.
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 0.0, None, 0, 0)]);
    assert!(e.restore(vec![rec.clone()], 1000).is_empty());
    assert!(feed(&mut e, "a", 1000, &[5.0, 6.0]).is_empty());
    // Restart with the rule changed so it no longer holds: one resolved.
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 1000.0, None, 0, 0)]);
    assert!(e.restore(vec![rec.clone()], 1000).is_empty());
    let ev = feed(&mut e, "a", 1000, &[5.0, 6.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Resolved]);
    assert_eq!(ev[0].1.ident, rec.ident);
    // Restart with the rule removed: resolved at once.
    let mut e = Engine::new(vec![]);
    let out = e.restore(vec![rec], 1000);
    assert!(
        matches!(&out[..], [Change::Upsert(r, Some(EventKind::Resolved))] if r.state == "resolved")
    );
}

#[test]
fn dashboards_are_live_while_heard() {
    let mut e = Engine::new(vec![]);
    e.host_info("d2", &[], 1000, true);
    e.host_info("n1", &[], 1000, false);
    let mut out = Vec::new();
    e.frame("d2", 0, 0, &[], false, &mut out);
    e.frame("n1", 0, 0, &[], false, &mut out);
    assert_eq!(e.live_dashboards(4_000), vec!["d2".to_owned()]);
    assert!(e.live_dashboards(6_000).is_empty());
}

#[test]
fn an_alert_on_a_series_no_longer_reported_resolves_after_a_minute() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 0, 0)]);
    let ev = feed(&mut e, "a", 0, &[95.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Firing]);
    let mem = vec![(SeriesKey::new(Metric::MemUsedPct), 10.0)];
    let mut resolved = Vec::new();
    for s in 1..80 {
        let mut out = Vec::new();
        // Complete frames without the series (a partial frame would prove nothing).
        e.frame("a", s * 1000, s * 1000, &mem, true, &mut out);
        if !out.is_empty() {
            resolved.push((s, out));
        }
    }
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let (at, out) = &resolved[0];
    assert!((60..=70).contains(at), "resolved at {at} s");
    assert!(
        matches!(&out[..], [Change::Upsert(r, Some(EventKind::Resolved))] if r.state == "resolved")
    );
    // Incomplete frames never resolve anything.
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 0, 0)]);
    feed(&mut e, "a", 0, &[95.0]);
    for s in 1..200 {
        let mut out = Vec::new();
        e.frame("a", s * 1000, s * 1000, &mem, false, &mut out);
        assert!(out.is_empty());
    }
}

#[test]
fn hold_tolerates_the_collectors_wake_up_jitter() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 2, 0)]);
    let mut events = Vec::new();
    // Readings at 0, 1, 2 s of the grid; the first woke 7 ms late, the third 2 ms late.
    for ts in [7, 1003, 2002, 3004] {
        let mut out = Vec::new();
        e.frame("a", ts, ts, &cpu(95.0), true, &mut out);
        for c in out {
            if let Change::Upsert(r, Some(ev)) = c {
                events.push((ev, r));
            }
        }
    }
    assert_eq!(kinds(&events), vec![EventKind::Firing]);
    assert_eq!(
        events[0].1.fired_ms,
        Some(2002),
        "the third reading, not the fourth"
    );
    // A reading well short of `for` does not fire.
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 2, 0)]);
    assert!(feed(&mut e, "a", 0, &[95.0]).is_empty());
    let mut out = Vec::new();
    e.frame("a", 1800, 1800, &cpu(95.0), true, &mut out);
    assert!(out.iter().all(|c| !matches!(c, Change::Upsert(_, Some(_)))));
}

/// A one-off maintenance window on hosts `host` until `until_ms`.
fn window(e: &mut Engine, host: &str, until_ms: i64) {
    let row = crate::alertdb::SilenceRow {
        id: 1,
        ident: "d-1-x".into(),
        rule: "*".into(),
        host: host.into(),
        created_ms: 0,
        until_ms,
        by: String::new(),
        removed: false,
        updated_ms: 0,
        maintenance: true,
    };
    e.windows_mut().set_oneoff([&row]);
}

/// Ticks every second over `[from, to)`, returning the events.
fn ticks(e: &mut Engine, from: i64, to: i64) -> Vec<(EventKind, AlertRecord)> {
    let mut events = Vec::new();
    for now in (from..to).step_by(1000) {
        let mut out = Vec::new();
        e.tick(now, &mut out);
        events.extend(out.into_iter().filter_map(|c| match c {
            Change::Upsert(r, Some(ev)) => Some((ev, r)),
            _ => None,
        }));
    }
    events
}

#[test]
fn a_firing_held_by_a_window_goes_out_once_when_it_ends_without_reminders_stacked() {
    // Fires at 2 s, reminds every 10 s; the window holds until 35 s.
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 2, 10)]);
    window(&mut e, "a", 35_000);
    let mut out = Vec::new();
    for i in 0..30 {
        e.frame("a", i * 1000, i * 1000, &cpu(95.0), true, &mut out);
    }
    assert!(
        !out.iter().any(|c| matches!(c, Change::Upsert(_, Some(_)))),
        "no event in the window: {out:?}"
    );
    let Some(Change::Upsert(rec, None)) = out
        .iter()
        .find(|c| matches!(c, Change::Upsert(r, _) if r.state == "firing"))
    else {
        panic!("the firing is recorded: {out:?}");
    };
    assert!(rec.maintenance, "and marked");
    assert!(ticks(&mut e, 30_000, 35_000).is_empty(), "still held");
    let ev = ticks(&mut e, 35_000, 40_000);
    assert_eq!(
        kinds(&ev),
        vec![EventKind::Firing],
        "once, when the window ends"
    );
    assert!(!ev[0].1.maintenance);
    assert_eq!(
        ev[0].1.fired_ms,
        Some(2000),
        "the episode's own firing time"
    );
    // The next reminder comes at least a whole repeat after that firing: not at 42 s, when
    // one is due by the episode's own times, but at 52 s.
    let ev = feed(&mut e, "a", 40_000, &[95.0, 95.0, 95.0]);
    assert!(kinds(&ev).is_empty(), "not stacked with the firing: {ev:?}");
    let ev = feed(&mut e, "a", 52_000, &[95.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Reminder(5)]);
}

#[test]
fn host_down_in_a_window_stays_pending_and_fires_once_after_it() {
    let mut e = Engine::new(vec![host_down(15)]);
    window(&mut e, "a", 60_000);
    let mut out = Vec::new();
    e.frame("a", 0, 0, &[], false, &mut out);
    out.clear();
    for now in (1000..60_000).step_by(1000) {
        e.tick(now, &mut out);
    }
    assert!(!out.iter().any(|c| matches!(c, Change::Upsert(_, Some(_)))));
    let last = out.iter().rev().find_map(|c| match c {
        Change::Upsert(r, _) => Some(r.clone()),
        _ => None,
    });
    let last = last.expect("recorded");
    assert_eq!((last.state.as_str(), last.maintenance), ("pending", true));
    let ev = ticks(&mut e, 60_000, 70_000);
    assert_eq!(kinds(&ev), vec![EventKind::Firing]);
    assert_eq!(ev[0].1.started_ms, 0, "named like it would have been");
}

#[test]
fn an_alert_held_by_a_window_resolves_silently_and_a_notified_one_normally() {
    let mut e = Engine::new(vec![threshold("hot", Op::Ge, 90.0, None, 0, 0)]);
    window(&mut e, "a", 10_000);
    assert!(
        feed(&mut e, "a", 0, &[95.0, 10.0]).is_empty(),
        "fired and resolved unseen"
    );
    let rows = e.episodes.len();
    assert_eq!(rows, 0);
    // Fired before a window: its end is told even in one.
    let ev = feed(&mut e, "b", 0, &[95.0]);
    window(&mut e, "b", 10_000);
    let ev2 = feed(&mut e, "b", 1000, &[10.0]);
    assert_eq!(kinds(&ev), vec![EventKind::Firing]);
    assert_eq!(kinds(&ev2), vec![EventKind::Resolved]);
}

// OOM kills (issue 16).
#[test]
fn builtin_oom_kill_fires_when_the_counter_rises_and_can_be_switched_off() {
    let err = |k: &str, m: String| format!("{k}: {m}");
    let rules = crate::alert::rules::compile(&[], &err).expect("builtins");
    let oom: Vec<Rule> = rules.into_iter().filter(|r| r.name == "oom-kill").collect();
    assert_eq!(oom.len(), 1);
    assert_eq!(oom[0].hold, Duration::from_secs(600));
    let mut e = Engine::new(oom);
    let mut events = Vec::new();
    for (i, kills) in [2.0, 2.0, 3.0, 3.0].into_iter().enumerate() {
        let ts = i as i64 * 1000;
        let mut out = Vec::new();
        let values = [(SeriesKey::new(Metric::MemOomKills), kills)];
        e.frame("a", ts, ts, &values, true, &mut out);
        events.extend(out.into_iter().filter_map(|c| match c {
            Change::Upsert(r, Some(ev)) => Some((ev, r)),
            _ => None,
        }));
    }
    assert_eq!(kinds(&events), vec![EventKind::Firing]);
    assert_eq!(
        events[0].1.started_ms, 2000,
        "on the rise, not on the first value"
    );

    let mut off = crate::alert::rules::builtins()
        .into_iter()
        .find(|r| r.name == "oom-kill")
        .expect("built-in");
    off.enabled = false;
    let rules = crate::alert::rules::compile(&[off], &err).expect("switched off");
    assert!(rules.iter().all(|r| r.name != "oom-kill"));
}

/// The built-in rules, as a dashboard runs them.
fn builtin_engine() -> Engine {
    let rules = crate::alert::rules::compile(&[], &|k, m| format!("{k}: {m}")).expect("builtins");
    Engine::new(rules)
}

/// One frame of `host` at `ts` carrying `values`; the events.
fn frame_events(
    e: &mut Engine,
    host: &str,
    ts: i64,
    values: &[(SeriesKey, f64)],
) -> Vec<(EventKind, AlertRecord)> {
    let mut out = Vec::new();
    e.frame(host, ts, ts, values, true, &mut out);
    out.into_iter()
        .filter_map(|c| match c {
            Change::Upsert(r, Some(ev)) => Some((ev, r)),
            _ => None,
        })
        .collect()
}

#[test]
fn host_rebooted_fires_exactly_once_per_new_boot_time_and_resolves_by_itself() {
    let mut e = builtin_engine();
    let boot = |v: f64| vec![(SeriesKey::new(Metric::HostBootTimeS), v)];
    let mut events = Vec::new();
    // Up since 1_700_000_000; /proc/stat's btime wobbles by a second with the wall clock.
    for s in 0..60 {
        let b = 1_700_000_000.0 + f64::from(u8::from(s % 7 == 3));
        events.extend(frame_events(&mut e, "a", s * 1000, &boot(b)));
    }
    assert!(
        events.is_empty(),
        "a wobble of 1 s is no reboot: {events:?}"
    );
    // Rebooted: 40 s without frames, then the new boot time, sent with every frame for 20 min.
    for s in 100..1300 {
        events.extend(frame_events(&mut e, "a", s * 1000, &boot(1_700_000_095.0)));
    }
    assert_eq!(kinds(&events), vec![EventKind::Firing, EventKind::Resolved]);
    let (fired, resolved) = (&events[0].1, &events[1].1);
    assert_eq!(
        (fired.rule.as_str(), fired.severity.as_str()),
        ("host-rebooted", "info")
    );
    assert_eq!(
        fired.fired_ms,
        Some(100_000),
        "the first frame of the new boot"
    );
    assert_eq!(
        resolved.ended_ms,
        Some(400_000),
        "`for` (5m) after the change"
    );
    // Another reboot is another alert.
    let again = frame_events(&mut e, "a", 1_400_000, &boot(1_700_001_390.0));
    assert_eq!(kinds(&again), vec![EventKind::Firing]);
    assert_ne!(again[0].1.ident, fired.ident);
}

#[test]
fn process_missing_fires_at_a_count_of_zero_and_resolves_when_back() {
    let mut e = builtin_engine();
    let count = |n: f64| vec![(SeriesKey::labelled(Metric::ProcCount, "nginx"), n)];
    let mut events = Vec::new();
    for (s, n) in [2.0, 2.0, 0.0, 0.0, 0.0, 1.0, 1.0].into_iter().enumerate() {
        events.extend(frame_events(&mut e, "web1", s as i64 * 1000, &count(n)));
    }
    assert_eq!(kinds(&events), vec![EventKind::Firing, EventKind::Resolved]);
    assert_eq!(events[0].1.rule, "process-missing");
    assert_eq!(events[0].1.series, "proc.count{name=\"nginx\"}");
    assert_eq!(
        (events[0].1.fired_ms, events[1].1.ended_ms),
        (Some(2000), Some(5000))
    );
}
