//! Machine tests with made-up frames, a made-up clock and no store: the effects are the
//! assertions.

use super::*;
use crate::alert::rules::{Condition, Op, Severity};
use crate::alertdb::OutboxRow;
use crate::config::Kind;
use meshmon_proto::metrics::Metric;
use meshmon_proto::payload::HostInfo;
use meshmon_proto::{Selector, SeriesKey};
use std::time::Duration;

/// The clock at start.
const T0: i64 = 1_700_000_000_000;

fn hot() -> Rule {
    Rule {
        name: "hot".into(),
        condition: Condition::Threshold {
            metric: Selector::parse("cpu.usage_pct").expect("selector"),
            op: Op::Ge,
            threshold: 90.0,
            clear: None,
        },
        hosts: "*".into(),
        tags: Vec::new(),
        hold: Duration::ZERO,
        severity: Severity::Warning,
        repeat: Duration::ZERO,
        builtin: false,
    }
}

fn targets() -> Vec<Target> {
    vec![
        Target::shorthand(Kind::Slack, "http://127.0.0.1:9/slack"),
        Target {
            label: "webhook-00112233".into(),
            ..Target::shorthand(Kind::Webhook, "http://127.0.0.1:9/hook")
        },
    ]
}

fn started(name: &str, s: Startup) -> (Machine, Vec<Effect>) {
    let mut m = Machine::new(name.into(), vec![hot()], targets());
    let fx = m.start(s, T0);
    (m, fx)
}

fn frame(host: &str, at: i64, cpu: f64, dashboard: bool) -> Event {
    Event::Frame(Frame {
        host: host.into(),
        ts_ms: at,
        now_ms: at,
        values: vec![(SeriesKey::new(Metric::CpuUsagePct), cpu)],
        complete: true,
        info: Some(HostInfo {
            interval_ms: 1000,
            dashboard,
            ..HostInfo::default()
        }),
    })
}

fn ops(fx: &[Effect]) -> Vec<&Db> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Tx(ops) => Some(ops),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Notifications queued (not silenced): (id, target).
fn enqueued(fx: &[Effect]) -> Vec<(String, String)> {
    ops(fx)
        .into_iter()
        .filter_map(|op| match op {
            Db::Enqueue {
                notification,
                target,
                silenced: false,
                ..
            } => Some((notification.clone(), target.clone())),
            _ => None,
        })
        .collect()
}

/// Jobs handed out: (target index, notification).
fn delivered(fx: &[Effect]) -> Vec<(usize, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Deliver { target, job } => Some((*target, job.notifications.join(","))),
            _ => None,
        })
        .collect()
}

/// Notifications finished: (id, state, error).
fn finished(fx: &[Effect]) -> Vec<(String, Done, Option<String>)> {
    ops(fx)
        .into_iter()
        .filter_map(|op| match op {
            Db::Finish {
                notification,
                state,
                error,
                ..
            } => Some((notification.clone(), *state, error.clone())),
            _ => None,
        })
        .collect()
}

fn gossip(fx: &[Effect]) -> Vec<&AlertSync> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Gossip(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Fires `hot` on host `web` at `at`; returns the ident and the effects.
fn fire(m: &mut Machine, at: i64) -> (String, Vec<Effect>) {
    let fx = m.handle(frame("web", at, 95.0, false));
    let ident = ops(&fx)
        .into_iter()
        .find_map(|op| match op {
            Db::Upsert(rec) if rec.state == "firing" => Some(rec.ident.clone()),
            _ => None,
        })
        .expect("the alert fires");
    (ident, fx)
}

fn silence(rule: &str, host: &str, until_ms: i64) -> SilenceRow {
    SilenceRow {
        id: 1,
        ident: "ops-1-x".into(),
        rule: rule.into(),
        host: host.into(),
        created_ms: T0,
        until_ms,
        by: "ops".into(),
        removed: false,
        updated_ms: T0,
        maintenance: false,
    }
}

fn queued_row(id: i64, notification: &str, target: &str) -> OutboxRow {
    OutboxRow {
        id,
        notification: notification.into(),
        target: target.into(),
        body: "{}".into(),
        created_ms: T0 - 60_000,
        state: "queued".into(),
        attempts: 0,
        group: None,
    }
}

#[test]
fn a_firing_alert_queues_one_row_per_target_in_one_transaction() {
    let (mut m, fx) = started("dash-a", Startup::default());
    assert!(ops(&fx).is_empty(), "nothing to restore");
    let (ident, fx) = fire(&mut m, T0 + 100);
    assert_eq!(
        fx.iter().filter(|e| matches!(e, Effect::Tx(_))).count(),
        1,
        "the episode and its notifications are one transaction: {fx:?}"
    );
    assert_eq!(
        enqueued(&fx),
        vec![
            (format!("{ident}:firing#slack"), "slack".to_owned()),
            (
                format!("{ident}:firing#webhook-00112233"),
                "webhook-00112233".to_owned()
            ),
        ]
    );
    assert!(
        delivered(&fx).is_empty(),
        "nothing is sent in the start grace"
    );
}

#[test]
fn the_owner_dispatches_after_the_start_grace_and_once() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    assert!(delivered(&m.handle(Event::Tick(T0 + START_GRACE_MS - 1))).is_empty());
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS));
    assert_eq!(
        delivered(&fx),
        vec![
            (0, format!("{ident}:firing#slack")),
            (1, format!("{ident}:firing#webhook-00112233")),
        ]
    );
    assert!(
        delivered(&m.handle(Event::Tick(T0 + START_GRACE_MS + 1000))).is_empty(),
        "in flight: not handed out twice"
    );
}

#[test]
fn a_non_owner_holds_until_the_lower_named_dashboard_is_down() {
    let (mut m, _) = started("dash-b", Startup::default());
    m.handle(frame("dash-a", T0, 10.0, true));
    fire(&mut m, T0 + 100);
    for t in [T0 + 1000, T0 + START_GRACE_MS, T0 + 4999] {
        assert!(
            delivered(&m.handle(Event::Tick(t))).is_empty(),
            "dash-a is live at {t}"
        );
    }
    // dash-a (1 s interval) counts as down 5 s after its last frame.
    let fx = m.handle(Event::Tick(T0 + 5000));
    assert_eq!(delivered(&fx).len(), 2, "dash-b took over: {fx:?}");
}

#[test]
fn a_lower_named_live_dashboard_takes_ownership() {
    let (mut m, _) = started("dash-b", Startup::default());
    fire(&mut m, T0 + 100);
    assert_eq!(
        delivered(&m.handle(Event::Tick(T0 + START_GRACE_MS))).len(),
        2
    );
    // A lower-named dashboard node appears; a higher-named one changes nothing.
    m.handle(frame("dash-c", T0 + 2500, 10.0, true));
    m.handle(frame("dash-a", T0 + 2500, 10.0, true));
    let fx = m.handle(frame("web", T0 + 3000, 10.0, false));
    assert_eq!(
        enqueued(&fx).len(),
        2,
        "the resolution is queued all the same"
    );
    assert!(delivered(&fx).is_empty(), "dash-a notifies now: {fx:?}");
    assert!(delivered(&m.handle(Event::Tick(T0 + 4000))).is_empty());
}

#[test]
fn rows_queued_before_a_restart_wait_the_restart_grace() {
    let startup = Startup {
        outbox: vec![
            OutboxRow {
                state: "sent".into(),
                ..queued_row(3, "aaaa:firing#slack", "slack")
            },
            queued_row(7, "bbbb:firing#slack", "slack"),
        ],
        ..Startup::default()
    };
    let (mut m, _) = started("dash-a", startup);
    let (ident, _) = fire(&mut m, T0 + 100);
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS));
    assert_eq!(
        delivered(&fx),
        vec![
            (0, format!("{ident}:firing#slack")),
            (1, format!("{ident}:firing#webhook-00112233")),
        ],
        "new rows go after the start grace, the old one waits"
    );
    assert!(delivered(&m.handle(Event::Tick(T0 + RESTART_GRACE_MS - 1))).is_empty());
    let fx = m.handle(Event::Tick(T0 + RESTART_GRACE_MS));
    assert_eq!(delivered(&fx), vec![(0, "bbbb:firing#slack".to_owned())]);
}

#[test]
fn a_row_whose_target_is_gone_expires() {
    let startup = Startup {
        outbox: vec![queued_row(1, "aaaa:firing#webhook-gone", "webhook-gone")],
        ..Startup::default()
    };
    let (mut m, _) = started("dash-a", startup);
    let fx = m.handle(Event::Tick(T0 + RESTART_GRACE_MS));
    assert_eq!(
        finished(&fx),
        vec![(
            "aaaa:firing#webhook-gone".to_owned(),
            Done::Expired,
            Some("target no longer configured".to_owned())
        )]
    );
    assert!(delivered(&fx).is_empty());
    let fx = m.handle(Event::Tick(T0 + RESTART_GRACE_MS + 1000));
    assert!(finished(&fx).is_empty(), "expired once");
}

#[test]
fn a_sent_report_finishes_the_row_and_syncs_at_once() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    m.handle(Event::Tick(T0 + START_GRACE_MS));
    let slack = format!("{ident}:firing#slack");
    let at = T0 + START_GRACE_MS + 300;
    let fx = m.handle(Event::Report {
        notification: slack.clone(),
        outcome: Outcome::Sent,
        now_ms: at,
    });
    assert_eq!(finished(&fx), vec![(slack.clone(), Done::Sent, None)]);
    let syncs = gossip(&fx);
    assert_eq!(syncs.len(), 1, "a delivery is told at once: {fx:?}");
    assert_eq!(syncs[0].sent, vec![slack.clone()]);
    // Told again with each sync until the window is over.
    let fx = m.handle(Event::Tick(at + SYNC_EVERY_MS));
    assert_eq!(gossip(&fx)[0].sent, vec![slack.clone()]);
    assert!(
        delivered(&fx).is_empty(),
        "finished rows are not sent again"
    );
    let fx = m.handle(Event::Tick(at + SYNC_WINDOW_MS + 1));
    assert!(gossip(&fx).is_empty(), "nothing left to say: {fx:?}");
}

#[test]
fn syncs_follow_their_cadence_and_a_dropped_one_goes_with_the_next_report() {
    let (mut m, _) = started("dash-a", Startup::default());
    let store = Store {
        acked: vec!["cafe".into()],
        ..Store::default()
    };
    m.handle(Event::Store(store));
    let fx = m.handle(Event::Tick(T0 + 1000));
    assert_eq!(gossip(&fx).len(), 1);
    assert_eq!(gossip(&fx)[0].acks, vec!["cafe".to_owned()]);
    assert!(gossip(&m.handle(Event::Tick(T0 + 2000))).is_empty());
    assert_eq!(gossip(&m.handle(Event::Tick(T0 + 3000))).len(), 1);
    m.handle(Event::GossipDropped);
    let fx = m.handle(Event::Report {
        notification: "x:firing#slack".into(),
        outcome: Outcome::Failed("HTTP 500".into()),
        now_ms: T0 + 3100,
    });
    assert_eq!(gossip(&fx).len(), 1, "the dropped sync is made up for");
}

#[test]
fn a_sync_from_another_node_marks_rows_sent_elsewhere_and_acks() {
    let (mut m, _) = started("dash-b", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    let slack = format!("{ident}:firing#slack");
    let sync = AlertSync {
        sent: vec![slack.clone()],
        acks: vec![ident.clone()],
        silences: vec![wire(&silence("disk*", "*", T0 + 60_000))],
    };
    let fx = m.handle(Event::Sync {
        from: "dash-a".into(),
        sync: sync.clone(),
        now_ms: T0 + 500,
    });
    assert_eq!(fx.len(), 1, "one transaction: {fx:?}");
    assert_eq!(
        finished(&fx),
        vec![(slack.clone(), Done::SentElsewhere, Some("dash-a".into()))]
    );
    let all = ops(&fx);
    assert!(all.contains(&&Db::AckIdents(vec![ident.clone()])));
    assert!(
        all.iter()
            .any(|op| matches!(op, Db::MergeSilence(s) if s.rule == "disk*"))
    );
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS));
    assert_eq!(
        delivered(&fx),
        vec![(1, format!("{ident}:firing#webhook-00112233"))],
        "only what was not delivered elsewhere"
    );
    let own = m.handle(Event::Sync {
        from: "dash-b".into(),
        sync,
        now_ms: T0 + 2500,
    });
    assert!(own.is_empty(), "a node's own sync is ignored");
}

#[test]
fn a_silence_suppresses_at_queueing_and_at_dispatch() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    m.handle(Event::Store(Store {
        silences: vec![silence("h*", "web*", T0 + 60_000)],
        ..Store::default()
    }));
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS));
    assert!(delivered(&fx).is_empty());
    assert_eq!(
        finished(&fx),
        vec![
            (format!("{ident}:firing#slack"), Done::Silenced, None),
            (
                format!("{ident}:firing#webhook-00112233"),
                Done::Silenced,
                None
            ),
        ]
    );
    // In force when the event happens: queued already silenced.
    let fx = m.handle(frame("web", T0 + 3000, 10.0, false));
    assert!(enqueued(&fx).is_empty());
    assert_eq!(
        ops(&fx)
            .iter()
            .filter(|op| matches!(op, Db::Enqueue { silenced: true, .. }))
            .count(),
        2
    );
    assert!(delivered(&fx).is_empty());
}

#[test]
fn a_one_off_window_holds_the_firing_then_queues_it_once_and_travels_marked() {
    let (mut m, _) = started("dash-a", Startup::default());
    let mut w = silence("*", "web*", T0 + 10_000);
    w.maintenance = true;
    m.handle(Event::Store(Store {
        silences: vec![w],
        ..Store::default()
    }));
    let (ident, fx) = fire(&mut m, T0 + 100);
    let queued = |fx: &[Effect]| {
        ops(fx)
            .iter()
            .filter(|op| matches!(op, Db::Enqueue { .. }))
            .count()
    };
    assert_eq!(queued(&fx), 0, "not queued, not even as silenced");
    let fx = m.handle(Event::Tick(T0 + 5000));
    assert!(delivered(&fx).is_empty());
    assert!(
        gossip(&fx)[0].silences[0].maintenance,
        "sent to the others marked"
    );
    let fx = m.handle(Event::Tick(T0 + 10_000));
    let id = |t: &str| (format!("{ident}:firing#{t}"), t.to_owned());
    assert_eq!(enqueued(&fx), vec![id("slack"), id("webhook-00112233")]);
    assert_eq!(delivered(&fx).len(), 2, "as a normal firing");
    assert_eq!(queued(&m.handle(Event::Tick(T0 + 11_000))), 0, "once");
}

#[test]
fn an_ended_silence_no_longer_holds() {
    let (mut m, _) = started("dash-a", Startup::default());
    m.handle(Event::Store(Store {
        silences: vec![silence("*", "*", T0 + 1000)],
        ..Store::default()
    }));
    fire(&mut m, T0 + 1000);
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS));
    assert_eq!(delivered(&fx).len(), 2);
}

#[test]
fn a_failed_report_keeps_the_row_in_flight_and_gave_up_expires_it() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    m.handle(Event::Tick(T0 + START_GRACE_MS));
    let slack = format!("{ident}:firing#slack");
    let fx = m.handle(Event::Report {
        notification: slack.clone(),
        outcome: Outcome::Failed("HTTP 500".into()),
        now_ms: T0 + 2100,
    });
    assert_eq!(
        ops(&fx),
        vec![&Db::AttemptFailed {
            notification: slack.clone(),
            error: "HTTP 500".into()
        }]
    );
    assert!(
        delivered(&m.handle(Event::Tick(T0 + 3000))).is_empty(),
        "the delivery task retries it; not handed out again"
    );
    let fx = m.handle(Event::Report {
        notification: slack.clone(),
        outcome: Outcome::GaveUp("HTTP 400".into()),
        now_ms: T0 + 3100,
    });
    assert_eq!(
        finished(&fx),
        vec![(slack, Done::Expired, Some("HTTP 400".into()))]
    );
    assert!(gossip(&fx).is_empty(), "giving up is not a delivery");
    assert!(delivered(&m.handle(Event::Tick(T0 + 4000))).is_empty());
}

#[test]
fn a_refused_job_is_offered_again() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    m.handle(Event::Tick(T0 + START_GRACE_MS));
    let slack = format!("{ident}:firing#slack");
    assert!(m.handle(Event::Refused(slack.clone())).is_empty());
    let fx = m.handle(Event::Tick(T0 + START_GRACE_MS + 1000));
    assert_eq!(delivered(&fx), vec![(0, slack)]);
}

#[test]
fn a_notification_already_in_the_outbox_is_not_queued_again() {
    let (mut m, _) = started("dash-a", Startup::default());
    let (ident, _) = fire(&mut m, T0 + 100);
    let slack = format!("{ident}:firing#slack");
    m.handle(Event::Tick(T0 + START_GRACE_MS));
    m.handle(Event::Report {
        notification: slack.clone(),
        outcome: Outcome::Sent,
        now_ms: T0 + 2100,
    });
    // The next run finds the rows and the episode in the store.
    let (mut m, _) = started(
        "dash-a",
        Startup {
            outbox: vec![
                OutboxRow {
                    state: "sent".into(),
                    ..queued_row(1, &slack, "slack")
                },
                queued_row(
                    2,
                    &format!("{ident}:firing#webhook-00112233"),
                    "webhook-00112233",
                ),
            ],
            sent: vec![slack.clone()],
            ..Startup::default()
        },
    );
    let fx = m.handle(Event::Tick(T0 + RESTART_GRACE_MS));
    assert_eq!(
        delivered(&fx),
        vec![(1, format!("{ident}:firing#webhook-00112233"))]
    );
    assert_eq!(gossip(&fx)[0].sent, vec![slack]);
}

#[test]
fn prune_runs_hourly_and_forgets_old_rows() {
    let (mut m, _) = started("dash-a", Startup::default());
    let fx = m.handle(Event::Tick(T0 + 1000));
    assert!(ops(&fx).contains(&&Db::Prune {
        before_ms: T0 + 1000 - KEEP_MS
    }));
    assert!(
        !ops(&m.handle(Event::Tick(T0 + 2000)))
            .iter()
            .any(|op| matches!(op, Db::Prune { .. }))
    );
    let fx = m.handle(Event::Tick(T0 + 1000 + PRUNE_EVERY_MS));
    assert!(ops(&fx).iter().any(|op| matches!(op, Db::Prune { .. })));
}

#[test]
fn a_notification_names_its_alert() {
    assert_eq!(
        ident_of("0011223344556677:reminder-2#webhook-ab12cd34"),
        "0011223344556677"
    );
}

#[path = "machine_group_tests.rs"]
mod group;
