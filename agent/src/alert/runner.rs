//! The alert thread of a dashboard node: feeds the engine, persists its changes and the
//! notifications they cause (one outbox row per event and target) in one transaction, hands
//! queued notifications to the delivery tasks while this node is the notifying one, and
//! exchanges deliveries, acknowledgements and silences with the other dashboard nodes.
//!
//! Ownership (PROTOCOL.md section 10): the notifying node is the live dashboard node with the
//! lowest name. Every dashboard node evaluates and queues every notification; the others hold
//! theirs until an `AlertSync` says it was delivered, and send them if the notifying node dies.

use super::deliver::{self, Job, Outcome, Target};
use super::engine::{Change, Engine, EventKind};
use super::notify::Notice;
use super::rules::glob;
use super::{RESTART_GRACE_MS, START_GRACE_MS, SYNC_EVERY_MS, SYNC_WINDOW_MS};
use crate::config::Config;
use crate::net::mesh::{MeshCommand, wall_ms};
use meshmon_dashboard::alertdb::{AlertDb, SilenceRow};
use meshmon_dashboard::{Reader, StoreError};
use meshmon_proto::payload::{AlertSync, HostInfo, SilenceWire};
use meshmon_proto::{Payload, SeriesKey};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// What the alert thread is told.
#[derive(Debug)]
pub enum Input {
    /// A live frame (never a replayed one) of `host`.
    Frame {
        host: String,
        /// The frame's own timestamp.
        ts_ms: i64,
        /// This node's clock when it arrived.
        now_ms: i64,
        values: Vec<(SeriesKey, f64)>,
        /// `values` is every series the host reports now (decoded without a gap).
        complete: bool,
        info: Option<HostInfo>,
    },
    /// Another dashboard node's account.
    Sync { from: String, sync: AlertSync },
    /// A delivery task's report.
    Report {
        notification: String,
        outcome: Outcome,
    },
}

/// The alert thread's queue.
pub type AlertSender = SyncSender<Input>;

/// Frames waiting for the alert thread.
const QUEUE: usize = 8192;
const TICK_MS: i64 = 1000;
const PRUNE_EVERY_MS: i64 = 3600 * 1000;
/// Finished notifications and resolved silences are kept this long.
const KEEP_MS: i64 = 7 * 86_400 * 1000;

/// Starts the alert thread and its delivery tasks (on the current runtime).
pub fn start(
    cfg: &Config,
    commands: mpsc::Sender<MeshCommand>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<(AlertSender, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let targets = deliver::targets(&cfg.notify);
    let client = deliver::client()?;
    let reports = tx.clone();
    let report: Arc<deliver::Report> = Arc::new(Box::new(move |notification, outcome| {
        // Blocking here is fine: the delivery tasks are few and a report is rare; dropping one
        // would re-send a delivered notification after a restart.
        let _ = reports.send(Input::Report {
            notification,
            outcome,
        });
    }));
    let jobs = deliver::start(
        &targets,
        &client,
        cfg.notify.give_up_after,
        report,
        tracker,
        shutdown,
    );
    let mut runner = Runner::new(cfg, targets, jobs, commands);
    let thread = std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || runner.run(&rx))?;
    Ok((tx, thread))
}

struct Runner {
    name: String,
    path: std::path::PathBuf,
    engine: Engine,
    targets: Vec<Target>,
    jobs: Vec<mpsc::Sender<Job>>,
    commands: mpsc::Sender<MeshCommand>,
    in_flight: HashSet<String>,
    silences: Vec<SilenceRow>,
    started_ms: i64,
    /// Outbox rows queued before this start wait for [`RESTART_GRACE_MS`].
    old_rows_below: i64,
    owner: bool,
    last_sync_ms: i64,
    sync_soon: bool,
    last_prune_ms: i64,
    failing: bool,
}

impl Runner {
    fn new(
        cfg: &Config,
        targets: Vec<Target>,
        jobs: Vec<mpsc::Sender<Job>>,
        commands: mpsc::Sender<MeshCommand>,
    ) -> Runner {
        Runner {
            name: cfg.node.name.clone(),
            path: cfg.store.path.clone(),
            engine: Engine::new(cfg.alerts.clone()),
            targets,
            jobs,
            commands,
            in_flight: HashSet::new(),
            silences: Vec::new(),
            started_ms: wall_ms() as i64,
            old_rows_below: 0,
            owner: false,
            last_sync_ms: 0,
            sync_soon: false,
            last_prune_ms: 0,
            failing: false,
        }
    }

    fn open(&self) -> AlertDb {
        let mut logged = false;
        loop {
            match AlertDb::open(&self.path) {
                Ok(db) => return db,
                Err(error) => {
                    if !logged {
                        warn!(%error, "alerts cannot open the store; retrying every second");
                        logged = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn run(&mut self, rx: &Receiver<Input>) {
        let mut db = self.open();
        let now = wall_ms() as i64;
        self.started_ms = now;
        let active = db.active().unwrap_or_else(|error| {
            warn!(%error, "cannot read the active alerts; starting without them");
            Vec::new()
        });
        let restored = active.len();
        let changes = self.engine.restore(active, now);
        if let Ok(hosts) = Reader::open(&self.path).and_then(|r| r.hosts(now)) {
            for h in hosts {
                self.engine.know_host(&h.host, h.last_seen_ms, now);
            }
        }
        self.old_rows_below = db
            .outbox()
            .map(|rows| rows.last().map_or(0, |r| r.id + 1))
            .unwrap_or(0);
        self.apply(&mut db, changes, now);
        self.refresh_silences(&db, now);
        info!(
            rules = self.engine.rules().len(),
            targets = self.targets.len(),
            restored,
            "alert engine started"
        );
        let mut next_tick = now + TICK_MS;
        loop {
            let now = wall_ms() as i64;
            let wait = Duration::from_millis(next_tick.saturating_sub(now).max(0) as u64);
            match rx.recv_timeout(wait) {
                Ok(input) => self.on_input(&mut db, input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = wall_ms() as i64;
            if now >= next_tick {
                next_tick = now + TICK_MS;
                self.tick(&mut db, now);
            }
        }
    }

    fn on_input(&mut self, db: &mut AlertDb, input: Input) {
        match input {
            Input::Frame {
                host,
                ts_ms,
                now_ms,
                values,
                complete,
                info,
            } => {
                if let Some(info) = info {
                    self.engine
                        .host_info(&host, &info.tags, info.interval_ms, info.dashboard);
                }
                let mut out = Vec::new();
                self.engine
                    .frame(&host, ts_ms, now_ms, &values, complete, &mut out);
                if !out.is_empty() {
                    self.apply(db, out, now_ms);
                    self.dispatch(db, now_ms);
                }
            }
            Input::Sync { from, sync } => {
                if from != self.name {
                    self.on_sync(db, &from, sync);
                }
            }
            Input::Report {
                notification,
                outcome,
            } => {
                let now = wall_ms() as i64;
                let r = match &outcome {
                    Outcome::Sent => {
                        self.in_flight.remove(&notification);
                        self.sync_soon = true;
                        db.finish(&notification, "sent", now, None).map(drop)
                    }
                    Outcome::Failed(e) => db.attempt_failed(&notification, e),
                    Outcome::GaveUp(e) => {
                        self.in_flight.remove(&notification);
                        db.finish(&notification, "expired", now, Some(e)).map(drop)
                    }
                };
                self.store_result(r);
                if self.sync_soon {
                    self.send_sync(db, now);
                }
            }
        }
    }

    fn store_result(&mut self, r: Result<(), StoreError>) {
        match r {
            Ok(()) => {
                if self.failing {
                    info!("alerts can write to the store again");
                    self.failing = false;
                }
            }
            Err(error) => {
                if !self.failing {
                    warn!(%error, "alerts cannot write to the store; retrying");
                    self.failing = true;
                }
            }
        }
    }

    fn silenced(&self, rule: &str, host: &str, now: i64) -> bool {
        self.silences
            .iter()
            .any(|s| !s.removed && s.until_ms > now && glob(&s.rule, rule) && glob(&s.host, host))
    }

    /// Persists the engine's changes and queues their notifications, in one transaction.
    fn apply(&mut self, db: &mut AlertDb, changes: Vec<Change>, now: i64) {
        let silenced: Vec<bool> = changes
            .iter()
            .map(|c| match c {
                Change::Upsert(rec, Some(_)) => self.silenced(&rec.rule, &rec.host, now),
                _ => false,
            })
            .collect();
        let (source, targets, rules) = (&self.name, &self.targets, self.engine.rules());
        let r = db.transaction(|db| {
            for (change, silenced) in changes.iter().zip(silenced) {
                match change {
                    Change::DeletePending(ident) => db.delete_pending(ident)?,
                    Change::Upsert(rec, event) => {
                        db.upsert(rec)?;
                        let Some(event) = event else { continue };
                        log_event(rec, *event, silenced);
                        let notice = Notice {
                            event: *event,
                            alert: rec,
                            rule: rules.iter().find(|r| r.name == rec.rule),
                            source,
                            at_ms: match event {
                                EventKind::Resolved => rec.ended_ms.unwrap_or(now),
                                _ => now,
                            },
                        };
                        for t in targets {
                            let id = format!("{}:{}#{}", rec.ident, event.tag(), t.label);
                            let body = if t.slack {
                                notice.slack_json()
                            } else {
                                notice.webhook_json(&id)
                            };
                            let state = if silenced { "silenced" } else { "queued" };
                            db.enqueue(&id, &t.label, &body.to_string(), state, now)?;
                        }
                    }
                }
            }
            Ok(())
        });
        self.store_result(r);
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
    fn dispatch(&mut self, db: &mut AlertDb, now: i64) {
        if !self.is_owner(now) || self.targets.is_empty() {
            return;
        }
        let rows = match db.queued(512) {
            Ok(r) => r,
            Err(error) => {
                self.store_result(Err(error));
                return;
            }
        };
        for row in rows {
            if self.in_flight.contains(&row.notification) {
                continue;
            }
            if row.id < self.old_rows_below && now - self.started_ms < RESTART_GRACE_MS {
                continue;
            }
            let Some(i) = self.targets.iter().position(|t| t.label == row.target) else {
                let r = db
                    .finish(
                        &row.notification,
                        "expired",
                        now,
                        Some("target no longer configured"),
                    )
                    .map(drop);
                self.store_result(r);
                continue;
            };
            // A silence added after the notification was queued still holds.
            let alert = db.by_ident(ident_of(&row.notification));
            if let Ok(Some(a)) = alert
                && self.silenced(&a.rule, &a.host, now)
            {
                let r = db
                    .finish(&row.notification, "silenced", now, None)
                    .map(drop);
                self.store_result(r);
                continue;
            }
            let job = Job {
                notification: row.notification.clone(),
                body: row.body,
                created_ms: row.created_ms,
            };
            match self.jobs[i].try_send(job) {
                Ok(()) => {
                    self.in_flight.insert(row.notification);
                }
                Err(TrySendErrorAsync::Full(_)) => {}
                Err(TrySendErrorAsync::Closed(_)) => return,
            }
        }
    }

    fn tick(&mut self, db: &mut AlertDb, now: i64) {
        let mut out = Vec::new();
        self.engine.tick(now, &mut out);
        if !out.is_empty() {
            self.apply(db, out, now);
        }
        // Acknowledgements and silences made by `meshmon alerts` or the TUI on this node.
        match db.acked_active() {
            Ok(acked) => {
                for ident in acked {
                    self.engine.ack(&ident);
                }
            }
            Err(error) => self.store_result(Err(error)),
        }
        self.refresh_silences(db, now);
        let owner = self.is_owner(now);
        if owner != self.owner {
            info!(
                owner,
                live_dashboards = ?self.engine.live_dashboards(now),
                "alert notification role changed"
            );
            self.owner = owner;
        }
        self.dispatch(db, now);
        if now - self.last_sync_ms >= SYNC_EVERY_MS {
            self.send_sync(db, now);
        }
        if now - self.last_prune_ms >= PRUNE_EVERY_MS {
            self.last_prune_ms = now;
            let r = db.prune(now - KEEP_MS);
            self.store_result(r);
        }
    }

    fn refresh_silences(&mut self, db: &AlertDb, now: i64) {
        match db.silences(false, now) {
            Ok(s) => self.silences = s,
            Err(error) => self.store_result(Err(error)),
        }
    }

    /// Tells the other dashboard nodes what this node delivered, acknowledged and silenced.
    fn send_sync(&mut self, db: &AlertDb, now: i64) {
        self.last_sync_ms = now;
        self.sync_soon = false;
        let sent = db.sent_since(now - SYNC_WINDOW_MS, 500).unwrap_or_default();
        let acks = db.acked_active().unwrap_or_default();
        let silences: Vec<SilenceWire> = db
            .silences_updated_since(now - SYNC_WINDOW_MS)
            .unwrap_or_default()
            .into_iter()
            .chain(self.silences.iter().cloned())
            .take(200)
            .map(|s| SilenceWire {
                id: s.ident,
                rule: s.rule,
                host: s.host,
                created_ms: s.created_ms.max(0) as u64,
                until_ms: s.until_ms.max(0) as u64,
                by: s.by,
                removed: s.removed,
                updated_ms: s.updated_ms.max(0) as u64,
            })
            .collect();
        if sent.is_empty() && acks.is_empty() && silences.is_empty() {
            return;
        }
        let sync = AlertSync {
            sent,
            acks,
            silences,
        };
        if self
            .commands
            .try_send(MeshCommand::Gossip(Payload::AlertSync(sync)))
            .is_err()
        {
            self.sync_soon = true;
        }
    }

    fn on_sync(&mut self, db: &mut AlertDb, from: &str, sync: AlertSync) {
        let now = wall_ms() as i64;
        let r = db.transaction(|db| {
            let mut n = 0;
            for id in &sync.sent {
                if db.finish(id, "sent_elsewhere", now, Some(from))? {
                    n += 1;
                }
            }
            db.ack_idents(&sync.acks)?;
            for s in &sync.silences {
                db.merge_silence(&SilenceRow {
                    id: 0,
                    ident: s.id.clone(),
                    rule: s.rule.clone(),
                    host: s.host.clone(),
                    created_ms: i64::try_from(s.created_ms).unwrap_or(i64::MAX),
                    until_ms: i64::try_from(s.until_ms).unwrap_or(i64::MAX),
                    by: s.by.clone(),
                    removed: s.removed,
                    updated_ms: i64::try_from(s.updated_ms).unwrap_or(i64::MAX),
                })?;
            }
            Ok(n)
        });
        for ident in &sync.acks {
            self.engine.ack(ident);
        }
        match r {
            Ok(n) if n > 0 => {
                tracing::debug!(from, n, "notifications delivered by another dashboard node")
            }
            Ok(_) => {}
            Err(error) => self.store_result(Err(error)),
        }
        self.refresh_silences(db, now);
    }
}

use tokio::sync::mpsc::error::TrySendError as TrySendErrorAsync;

/// The alert a notification is about: notification ids are `<ident>:<event>#<target>`.
fn ident_of(notification: &str) -> &str {
    notification.split(':').next().unwrap_or(notification)
}

fn log_event(rec: &meshmon_dashboard::alertdb::AlertRecord, event: EventKind, silenced: bool) {
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
mod tests {
    #[test]
    fn a_notification_names_its_alert() {
        assert_eq!(
            super::ident_of("0011223344556677:reminder-2#webhook-ab12cd34"),
            "0011223344556677"
        );
    }
}
