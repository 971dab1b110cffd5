//! The alert thread's decisions, without I/O: a state machine fed with [`Event`]s (live
//! frames, other dashboard nodes' `AlertSync`, delivery reports, what other processes wrote
//! into the store, ticks) that returns [`Effect`]s (store transactions, jobs for the delivery
//! tasks, `AlertSync` payloads to flood). It owns the engine, the queued part of the outbox,
//! what this node delivered lately, the in-flight set and the notifier election
//! (PROTOCOL.md section 10).
//!
//! The outbox is written only by the alert thread, so the machine's copy is authoritative and
//! the store is its persistence. Acknowledgements and silences are also written by
//! `meshmon alerts` and the TUI, so the shell reads them and hands them in ([`Store`]).
//!
//! Not here: SQLite, channels, clocks (the shell, `runner`), when an alert fires (`engine`),
//! what a notification says (`notify`), HTTP (`deliver`).

use super::deliver::{Job, Outcome, Target};
use super::engine::{Change, Engine, EventKind};
pub use super::events::{Db, Done, Effect, Event, Frame, Startup, Store};
use super::maintenance::{Recurring, Windows};
use super::notify::Notice;
use super::routing::{GROUP_MAX, event_class, takes};
use super::rules::{Rule, glob};
use super::{RESTART_GRACE_MS, START_GRACE_MS, SYNC_EVERY_MS, SYNC_WINDOW_MS};
use crate::alertdb::{AlertRecord, SilenceRow};
use meshmon_proto::payload::{AlertSync, SilenceWire};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use tracing::info;

pub const PRUNE_EVERY_MS: i64 = 3600 * 1000;
/// Finished notifications and resolved silences are kept this long.
pub const KEEP_MS: i64 = 7 * 86_400 * 1000;
/// Queued notifications looked at per dispatch.
const DISPATCH_BATCH: usize = 512;
/// Delivered notifications named per `AlertSync`.
const SYNC_SENT_MAX: usize = 500;
/// Silences per `AlertSync`.
const SYNC_SILENCES_MAX: usize = 200;

#[derive(Debug, Clone)]
struct Queued {
    notification: String,
    target: String,
    body: String,
    created_ms: i64,
    /// Rule and host of the alert (silences are checked at dispatch).
    alert: Option<(String, String)>,
    /// Queued before this start: waits for [`RESTART_GRACE_MS`].
    old: bool,
}

/// An outbox row the machine knows of: its place and, once finished, when.
#[derive(Debug, Clone, Copy)]
struct Known {
    id: i64,
    done_ms: Option<i64>,
}

/// The alert thread's state.
pub struct Machine {
    name: String,
    engine: Engine,
    targets: Vec<Target>,
    started_ms: i64,
    /// Queued outbox rows by id (oldest first).
    queued: BTreeMap<i64, Queued>,
    /// Every outbox row not yet pruned, by notification id.
    known: HashMap<String, Known>,
    next_id: i64,
    in_flight: HashSet<String>,
    /// Notifications this node delivered, newest first, with when.
    sent: VecDeque<(i64, String)>,
    store: Store,
    owner: bool,
    last_sync_ms: i64,
    sync_soon: bool,
    last_prune_ms: i64,
}

impl Machine {
    pub fn new(name: String, rules: Vec<Rule>, targets: Vec<Target>) -> Machine {
        Machine {
            name,
            engine: Engine::new(rules),
            targets,
            started_ms: 0,
            queued: BTreeMap::new(),
            known: HashMap::new(),
            next_id: 1,
            in_flight: HashSet::new(),
            sent: VecDeque::new(),
            store: Store::default(),
            owner: false,
            last_sync_ms: 0,
            sync_soon: false,
            last_prune_ms: 0,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        self.engine.rules()
    }

    /// The config's recurring maintenance windows (one-off ones come with the store reads).
    pub fn set_maintenance(&mut self, recurring: Vec<Recurring>) {
        let w = self.engine.windows_mut();
        *w = Windows::new(recurring);
        w.set_oneoff(&self.store.silences);
    }

    /// Takes over what the previous run left at `now`.
    pub fn start(&mut self, s: Startup, now: i64) -> Vec<Effect> {
        self.started_ms = now;
        self.engine.windows_mut().set_oneoff(&s.store.silences);
        let changes = self.engine.restore(s.active, now);
        for (host, last_ts) in &s.hosts {
            self.engine.know_host(host, *last_ts, now);
        }
        for row in s.outbox {
            self.next_id = self.next_id.max(row.id + 1);
            let queued = row.state == "queued";
            self.known.insert(
                row.notification.clone(),
                Known {
                    id: row.id,
                    // Not read back: when it was queued is close enough for pruning.
                    done_ms: (!queued).then_some(row.created_ms),
                },
            );
            if queued {
                let alert = s.alerts.get(ident_of(&row.notification)).cloned();
                self.queued.insert(
                    row.id,
                    Queued {
                        notification: row.notification,
                        target: row.target,
                        body: row.body,
                        created_ms: row.created_ms,
                        alert,
                        old: true,
                    },
                );
            }
        }
        // When each was delivered is not read back: they count as delivered at the start.
        self.sent = s.sent.into_iter().map(|n| (now, n)).collect();
        let mut out = Vec::new();
        self.apply(changes, now, &mut out);
        self.store = s.store;
        out
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut out = Vec::new();
        match event {
            Event::Frame(Frame {
                host,
                ts_ms,
                now_ms,
                values,
                complete,
                info,
            }) => {
                if let Some(info) = info {
                    self.engine
                        .host_info(&host, &info.tags, info.interval_ms, info.dashboard);
                }
                let mut changes = Vec::new();
                self.engine
                    .frame(&host, ts_ms, now_ms, &values, complete, &mut changes);
                if !changes.is_empty() {
                    self.apply(changes, now_ms, &mut out);
                    self.dispatch(now_ms, &mut out);
                }
            }
            Event::Sync { from, sync, now_ms } => {
                if from != self.name {
                    self.on_sync(&from, sync, now_ms, &mut out);
                }
            }
            Event::Report {
                notification,
                outcome,
                now_ms,
            } => self.on_report(notification, outcome, now_ms, &mut out),
            Event::Store(store) => {
                for ident in &store.acked {
                    self.engine.ack(ident);
                }
                self.engine.windows_mut().set_oneoff(&store.silences);
                self.store = store;
            }
            Event::Refused(notification) => {
                self.in_flight.remove(&notification);
            }
            Event::GossipDropped => self.sync_soon = true,
            Event::Tick(now) => self.tick(now, &mut out),
        }
        out
    }

    fn on_report(
        &mut self,
        notification: String,
        outcome: Outcome,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        let op = match outcome {
            Outcome::Sent => {
                self.in_flight.remove(&notification);
                self.sync_soon = true;
                self.finish(notification, Done::Sent, now, None)
            }
            Outcome::Failed(error) => Db::AttemptFailed {
                notification,
                error,
            },
            Outcome::GaveUp(error) => {
                self.in_flight.remove(&notification);
                self.finish(notification, Done::Expired, now, Some(error))
            }
        };
        out.push(Effect::Tx(vec![op]));
        if self.sync_soon {
            self.send_sync(now, out);
        }
    }

    /// Ends `notification` in memory (if queued) and returns the write that ends it in the
    /// store (which, like the memory, ends only a queued row).
    fn finish(&mut self, notification: String, state: Done, now: i64, error: Option<String>) -> Db {
        if let Some(k) = self.known.get_mut(&notification)
            && k.done_ms.is_none()
        {
            k.done_ms = Some(now);
            self.queued.remove(&k.id);
            if state == Done::Sent {
                self.sent.push_front((now, notification.clone()));
                self.sent.truncate(SYNC_SENT_MAX);
            }
        }
        Db::Finish {
            notification,
            state,
            now_ms: now,
            error,
        }
    }

    /// Whether a silence (not a maintenance window: the engine acts on those) holds.
    fn silenced(&self, rule: &str, host: &str, now: i64) -> bool {
        self.store.silences.iter().any(|s| {
            !s.maintenance
                && !s.removed
                && s.until_ms > now
                && glob(&s.rule, rule)
                && glob(&s.host, host)
        })
    }

    /// The engine's changes and the notifications they cause (one per target), in one
    /// transaction.
    fn apply(&mut self, changes: Vec<Change>, now: i64, out: &mut Vec<Effect>) {
        let mut ops = Vec::new();
        for change in changes {
            match change {
                Change::DeletePending(ident) => ops.push(Db::DeletePending(ident)),
                Change::Upsert(rec, event) => {
                    let Some(event) = event else {
                        ops.push(Db::Upsert(rec));
                        continue;
                    };
                    let silenced = self.silenced(&rec.rule, &rec.host, now);
                    log_event(&rec, event, silenced);
                    let at_ms = match event {
                        EventKind::Resolved => rec.ended_ms.unwrap_or(now),
                        _ => now,
                    };
                    let rule = self.engine.rules().iter().find(|r| r.name == rec.rule);
                    let tags = self.engine.host_tags(&rec.host);
                    let mut rows = Vec::new();
                    for t in self.targets.iter().filter(|t| takes(&t.filter, &rec, tags)) {
                        let id = format!("{}:{}#{}", rec.ident, event.tag(), t.label);
                        let notice =
                            Notice::new(event, rec.clone(), rule, &self.name, at_ms, id.clone());
                        // A notice is plain data: serialising it cannot fail.
                        let body = serde_json::to_string(&notice).unwrap_or_default();
                        rows.push((id, t.label.clone(), body));
                    }
                    let alert = (rec.rule.clone(), rec.host.clone());
                    ops.push(Db::Upsert(rec));
                    for (id, target, body) in rows {
                        if !self.known.contains_key(&id) {
                            let k = Known {
                                id: self.next_id,
                                done_ms: silenced.then_some(now),
                            };
                            self.next_id += 1;
                            self.known.insert(id.clone(), k);
                            if !silenced {
                                let q = Queued {
                                    notification: id.clone(),
                                    target: target.clone(),
                                    body: body.clone(),
                                    created_ms: now,
                                    alert: Some(alert.clone()),
                                    old: false,
                                };
                                self.queued.insert(k.id, q);
                            }
                        }
                        ops.push(Db::Enqueue {
                            notification: id,
                            target,
                            body,
                            silenced,
                            now_ms: now,
                        });
                    }
                }
            }
        }
        out.push(Effect::Tx(ops));
    }

    /// Whether this node notifies: no live dashboard node with a lower name, and the start
    /// grace is over.
    fn is_owner(&self, now: i64) -> bool {
        if now - self.started_ms < START_GRACE_MS {
            return false;
        }
        self.engine
            .live_dashboards(now)
            .iter()
            .all(|d| d.as_str() >= self.name.as_str())
    }

    /// Hands queued notifications to the delivery tasks while this node is the owner.
    fn dispatch(&mut self, now: i64, out: &mut Vec<Effect>) {
        if !self.is_owner(now) || self.targets.is_empty() {
            return;
        }
        let ids: Vec<i64> = self.queued.keys().take(DISPATCH_BATCH).copied().collect();
        let mut groups = HashSet::new();
        for id in ids {
            let Some(row) = self.queued.get(&id) else {
                continue;
            };
            if self.in_flight.contains(&row.notification) {
                continue;
            }
            if row.old && now - self.started_ms < RESTART_GRACE_MS {
                continue;
            }
            let Some(i) = self.targets.iter().position(|t| t.label == row.target) else {
                let n = row.notification.clone();
                let error = Some("target no longer configured".to_owned());
                let op = self.finish(n, Done::Expired, now, error);
                out.push(Effect::Tx(vec![op]));
                continue;
            };
            // A silence added after the notification was queued still holds.
            if let Some((rule, host)) = &row.alert
                && self.silenced(rule, host, now)
            {
                let op = self.finish(row.notification.clone(), Done::Silenced, now, None);
                out.push(Effect::Tx(vec![op]));
                continue;
            }
            let Some(members) = self.group_of(id, i, now, &mut groups) else {
                continue;
            };
            let mut job = Job {
                notifications: Vec::with_capacity(members.len()),
                bodies: Vec::with_capacity(members.len()),
                created_ms: i64::MAX,
            };
            for m in &members {
                if let Some(q) = self.queued.get(m) {
                    job.notifications.push(q.notification.clone());
                    job.bodies.push(q.body.clone());
                    job.created_ms = job.created_ms.min(q.created_ms);
                }
            }
            if job.notifications.len() > 1 {
                out.push(Effect::Tx(vec![Db::Group {
                    group: job.notifications[0].clone(),
                    notifications: job.notifications.clone(),
                }]));
            }
            self.in_flight.extend(job.notifications.iter().cloned());
            out.push(Effect::Deliver { target: i, job });
        }
    }

    /// The queued rows that go out with row `id` (to target `i`) now: itself alone when the
    /// target does not group; else, once the window that opened when the oldest of its group
    /// (target, rule, event) was queued has passed, every queued row of the group (the
    /// oldest first). `None` while the window is open or when an older row of the group
    /// spoke for it this dispatch (`seen`). Windows are counted from the rows' persisted
    /// queueing times, so a restart neither loses nor repeats a group.
    fn group_of(
        &self,
        id: i64,
        i: usize,
        now: i64,
        seen: &mut HashSet<(usize, String, String)>,
    ) -> Option<Vec<i64>> {
        let row = self.queued.get(&id)?;
        let window = i64::try_from(self.targets[i].group.as_millis()).unwrap_or(i64::MAX);
        let Some((rule, _)) = row.alert.as_ref().filter(|_| window > 0) else {
            return Some(vec![id]);
        };
        let class = event_class(&row.notification);
        if !seen.insert((i, rule.clone(), class.to_owned())) {
            return None;
        }
        if now < row.created_ms.saturating_add(window) {
            return None;
        }
        let grace = now - self.started_ms < RESTART_GRACE_MS;
        let members = self
            .queued
            .iter()
            .filter(|(_, q)| {
                q.target == row.target
                    && q.alert
                        .as_ref()
                        .is_some_and(|(r, h)| r == rule && !self.silenced(r, h, now))
                    && event_class(&q.notification) == class
                    && !self.in_flight.contains(&q.notification)
                    && !(q.old && grace)
            })
            .map(|(k, _)| *k)
            .take(GROUP_MAX)
            .collect();
        Some(members)
    }

    fn tick(&mut self, now: i64, out: &mut Vec<Effect>) {
        let mut changes = Vec::new();
        self.engine.tick(now, &mut changes);
        if !changes.is_empty() {
            self.apply(changes, now, out);
        }
        let owner = self.is_owner(now);
        if owner != self.owner {
            info!(
                owner,
                live_dashboards = ?self.engine.live_dashboards(now),
                "alert notification role changed"
            );
            self.owner = owner;
        }
        self.dispatch(now, out);
        if now - self.last_sync_ms >= SYNC_EVERY_MS {
            self.send_sync(now, out);
        }
        if now - self.last_prune_ms >= PRUNE_EVERY_MS {
            self.last_prune_ms = now;
            let before = now - KEEP_MS;
            self.known
                .retain(|_, k| k.done_ms.is_none_or(|d| d >= before));
            out.push(Effect::Tx(vec![Db::Prune { before_ms: before }]));
        }
    }

    /// Tells the other dashboard nodes what this node delivered, acknowledged and silenced.
    fn send_sync(&mut self, now: i64, out: &mut Vec<Effect>) {
        self.last_sync_ms = now;
        self.sync_soon = false;
        while self
            .sent
            .back()
            .is_some_and(|(at, _)| *at < now - SYNC_WINDOW_MS)
        {
            self.sent.pop_back();
        }
        let sent: Vec<String> = self.sent.iter().map(|(_, n)| n.clone()).collect();
        let acks = self.store.acked.clone();
        let silences: Vec<SilenceWire> = self
            .store
            .silences_changed
            .iter()
            .chain(&self.store.silences)
            .take(SYNC_SILENCES_MAX)
            .map(wire)
            .collect();
        if sent.is_empty() && acks.is_empty() && silences.is_empty() {
            return;
        }
        out.push(Effect::Gossip(AlertSync {
            sent,
            acks,
            silences,
        }));
    }

    fn on_sync(&mut self, from: &str, sync: AlertSync, now: i64, out: &mut Vec<Effect>) {
        let mut ops = Vec::new();
        let mut n = 0;
        for id in sync.sent {
            if self.known.get(&id).is_some_and(|k| k.done_ms.is_none()) {
                n += 1;
            }
            ops.push(self.finish(id, Done::SentElsewhere, now, Some(from.to_owned())));
        }
        for ident in &sync.acks {
            self.engine.ack(ident);
        }
        ops.push(Db::AckIdents(sync.acks));
        ops.extend(sync.silences.iter().map(|s| Db::MergeSilence(unwire(s))));
        out.push(Effect::Tx(ops));
        if n > 0 {
            tracing::debug!(from, n, "notifications delivered by another dashboard node");
        }
    }
}

fn wire(s: &SilenceRow) -> SilenceWire {
    SilenceWire {
        id: s.ident.clone(),
        rule: s.rule.clone(),
        host: s.host.clone(),
        created_ms: s.created_ms.max(0) as u64,
        until_ms: s.until_ms.max(0) as u64,
        by: s.by.clone(),
        removed: s.removed,
        updated_ms: s.updated_ms.max(0) as u64,
        maintenance: s.maintenance,
    }
}

fn unwire(s: &SilenceWire) -> SilenceRow {
    SilenceRow {
        id: 0,
        ident: s.id.clone(),
        rule: s.rule.clone(),
        host: s.host.clone(),
        created_ms: i64::try_from(s.created_ms).unwrap_or(i64::MAX),
        until_ms: i64::try_from(s.until_ms).unwrap_or(i64::MAX),
        by: s.by.clone(),
        removed: s.removed,
        updated_ms: i64::try_from(s.updated_ms).unwrap_or(i64::MAX),
        maintenance: s.maintenance,
    }
}

/// The alert a notification is about: notification ids are `<ident>:<event>#<target>`.
pub fn ident_of(notification: &str) -> &str {
    notification.split(':').next().unwrap_or(notification)
}

fn log_event(rec: &AlertRecord, event: EventKind, silenced: bool) {
    info!(
        rule = %rec.rule,
        host = %rec.host,
        series = %rec.series,
        event = %event.tag(),
        value = ?rec.value,
        alert = %rec.ident,
        silenced,
        "alert"
    );
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
