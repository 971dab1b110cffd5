//! Grouping and target filters in the machine: one message per group window, exactly one
//! row per alert, windows counted from the persisted queueing time across a restart.

use super::*;

/// A webhook target `grouped` with a 30 s window beside the ungrouped `hook`, both on
/// `hot` only.
fn grouping_targets() -> Vec<Target> {
    let mut grouped = Target::shorthand(Kind::Webhook, "http://127.0.0.1:9/grouped");
    grouped.label = "grouped".into();
    grouped.group = Duration::from_secs(30);
    grouped.filter.rules = vec!["hot".into()];
    let mut hook = Target::shorthand(Kind::Webhook, "http://127.0.0.1:9/hook");
    hook.label = "hook".into();
    // Filtered out: `hot` is a warning.
    let mut pager = Target::shorthand(Kind::Webhook, "http://127.0.0.1:9/pager");
    pager.label = "pager".into();
    pager.filter.min_severity = Severity::Critical;
    vec![grouped, hook, pager]
}

fn fire_on(m: &mut Machine, host: &str, at: i64) -> Vec<Effect> {
    m.handle(frame(host, at, 95.0, false))
}

#[test]
fn one_message_per_window_for_the_grouped_target_one_per_alert_for_the_other() {
    let mut m = Machine::new("dash-a".into(), vec![hot()], grouping_targets());
    m.start(Startup::default(), T0);
    let base = T0 + START_GRACE_MS;
    let mut queued = Vec::new();
    let mut sent = Vec::new();
    for i in 0..30 {
        let fx = fire_on(&mut m, &format!("web{i:02}"), base + i * 100);
        queued.extend(enqueued(&fx));
        sent.extend(delivered(&fx));
    }
    // One row per alert and target that takes it; the critical-only target takes none.
    assert_eq!(queued.iter().filter(|(_, t)| t == "grouped").count(), 30);
    assert_eq!(queued.iter().filter(|(_, t)| t == "hook").count(), 30);
    assert!(!queued.iter().any(|(_, t)| t == "pager"));
    // The ungrouped target got each at once; the grouped one nothing yet.
    assert_eq!(sent.iter().filter(|(t, _)| *t == 1).count(), 30);
    assert!(!sent.iter().any(|(t, _)| *t == 0));
    let fx = m.handle(Event::Tick(base + 29_000));
    assert!(delivered(&fx).is_empty(), "the window is still open");
    let fx = m.handle(Event::Tick(base + 30_000));
    let jobs = delivered(&fx);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, 0);
    assert_eq!(jobs[0].1.split(',').count(), 30);
    let groups: Vec<_> = ops(&fx)
        .into_iter()
        .filter_map(|op| match op {
            Db::Group { notifications, .. } => Some(notifications.len()),
            _ => None,
        })
        .collect();
    assert_eq!(groups, vec![30]);
    // In flight: not handed out again.
    assert!(delivered(&m.handle(Event::Tick(base + 31_000))).is_empty());
    // Each member is reported on: all finish as sent.
    let mut done = 0;
    for n in jobs[0].1.split(',') {
        let fx = m.handle(Event::Report {
            notification: n.into(),
            outcome: Outcome::Sent,
            now_ms: base + 31_500,
        });
        done += finished(&fx).len();
    }
    assert_eq!(done, 30);
    assert!(delivered(&m.handle(Event::Tick(base + 60_000))).is_empty());
}

#[test]
fn a_restart_inside_the_window_keeps_the_group_whole() {
    // Three rows of one group queued 20 s before the restart, one of another rule's event.
    let row = |id: i64, n: &str, at: i64| OutboxRow {
        created_ms: at,
        ..queued_row(id, n, "grouped")
    };
    let startup = Startup {
        outbox: vec![
            row(1, "a1:firing#grouped", T0 - 20_000),
            row(2, "a2:firing#grouped", T0 - 19_000),
            row(3, "a3:firing#grouped", T0 - 15_000),
            row(4, "a1:resolved#grouped", T0 - 1_000),
        ],
        alerts: [("a1", "web01"), ("a2", "web02"), ("a3", "web03")]
            .into_iter()
            .map(|(i, h)| (i.to_owned(), ("hot".to_owned(), h.to_owned())))
            .collect(),
        ..Startup::default()
    };
    let mut m = Machine::new("dash-a".into(), vec![hot()], grouping_targets());
    m.start(startup, T0);
    // The window (30 s from the oldest) ends at T0 + 10 s, with the restart grace.
    assert!(delivered(&m.handle(Event::Tick(T0 + 9_000))).is_empty());
    let jobs = delivered(&m.handle(Event::Tick(T0 + RESTART_GRACE_MS)));
    assert_eq!(
        jobs,
        vec![(
            0,
            "a1:firing#grouped,a2:firing#grouped,a3:firing#grouped".into()
        )]
    );
    // The resolved notice's own window ends 30 s after it was queued.
    assert!(delivered(&m.handle(Event::Tick(T0 + 28_000))).is_empty());
    let jobs = delivered(&m.handle(Event::Tick(T0 + 29_000)));
    assert_eq!(jobs, vec![(0, "a1:resolved#grouped".into())]);
}
