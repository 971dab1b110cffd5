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
use crate::alertdb::{AlertDb, SilenceRow};
use crate::config::NotifyConfig;
use crate::time::now_ms;
use crate::{Reader, StoreError};
use meshmon_proto::payload::{AlertSync, HostInfo, SilenceWire};
use meshmon_proto::{Payload, SeriesKey};
use std::collections::HashSet;
use std::path::PathBuf;
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
}

/// The alert thread's queue: bounded; a full queue drops (and the sender counts) rather than
/// waits.
pub type AlertSender = mpsc::Sender<Input>;

/// What the alert thread needs to know of the node's config.
#[derive(Debug, Clone)]
pub struct AlertParams {
    /// This node's name (ownership: the live dashboard node with the lowest name notifies).
    pub node: String,
    /// The store file holding the alert tables.
    pub store: PathBuf,
    pub rules: Vec<super::Rule>,
    pub notify: NotifyConfig,
}

/// Frames waiting for the alert thread.
const QUEUE: usize = 8192;
const TICK_MS: i64 = 1000;
const PRUNE_EVERY_MS: i64 = 3600 * 1000;
/// Finished notifications and resolved silences are kept this long.
const KEEP_MS: i64 = 7 * 86_400 * 1000;

/// Starts the alert thread and its delivery tasks (on the current runtime). The thread runs a
/// runtime of its own, so that its SQLite work, which can block for as long as the store file
/// is locked, never holds up the caller's runtime (the mesh). `gossip` takes the `AlertSync`
/// payloads for the other dashboard nodes; a full queue skips one (the next follows in 2 s).
pub fn start(
    params: AlertParams,
    client: reqwest::Client,
    gossip: mpsc::Sender<Payload>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<(AlertSender, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let targets = deliver::targets(&params.notify);
    let (report_tx, reports) = mpsc::unbounded_channel();
    let jobs = deliver::start(
        &targets,
        &client,
        params.notify.give_up_after,
        report_tx,
        tracker,
        shutdown,
    );
    let mut runner = Runner::new(&params, targets, jobs, gossip);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let shutdown = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || rt.block_on(runner.run(rx, reports, shutdown)))?;
    Ok((tx, thread))
}

struct Runner {
    name: String,
    path: std::path::PathBuf,
    engine: Engine,
    targets: Vec<Target>,
    jobs: Vec<mpsc::Sender<Job>>,
    gossip: mpsc::Sender<Payload>,
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
        p: &AlertParams,
        targets: Vec<Target>,
        jobs: Vec<mpsc::Sender<Job>>,
        gossip: mpsc::Sender<Payload>,
    ) -> Runner {
        Runner {
            name: p.node.clone(),
            path: p.store.clone(),
            engine: Engine::new(p.rules.clone()),
            targets,
            jobs,
            gossip,
            in_flight: HashSet::new(),
            silences: Vec::new(),
            started_ms: now_ms(),
            old_rows_below: 0,
            owner: false,
            last_sync_ms: 0,
            sync_soon: false,
            last_prune_ms: 0,
            failing: false,
        }
    }

    async fn open(&self, shutdown: &CancellationToken) -> Option<AlertDb> {
        let mut logged = false;
        loop {
            match AlertDb::open(&self.path) {
                Ok(db) => return Some(db),
                Err(error) => {
                    if !logged {
                        warn!(%error, "alerts cannot open the store; retrying every second");
                        logged = true;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Input>,
        mut reports: mpsc::UnboundedReceiver<(String, Outcome)>,
        shutdown: CancellationToken,
    ) {
        let Some(mut db) = self.open(&shutdown).await else {
            return;
        };
        let now = now_ms();
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
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS as u64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                // Reports first: they settle the outbox, which exactly-once depends on.
                Some((notification, outcome)) = reports.recv() => {
                    self.on_report(&mut db, notification, outcome);
                }
                input = rx.recv() => match input {
                    Some(input) => self.on_input(&mut db, input),
                    None => break,
                },
                _ = tick.tick() => self.tick(&mut db, now_ms()),
            }
        }
        // Reports that arrived before the end are still written.
        while let Ok((notification, outcome)) = reports.try_recv() {
            self.on_report(&mut db, notification, outcome);
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
        }
    }

    fn on_report(&mut self, db: &mut AlertDb, notification: String, outcome: Outcome) {
        let now = now_ms();
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
        if self.gossip.try_send(Payload::AlertSync(sync)).is_err() {
            self.sync_soon = true;
        }
    }

    fn on_sync(&mut self, db: &mut AlertDb, from: &str, sync: AlertSync) {
        let now = now_ms();
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

fn log_event(rec: &crate::alertdb::AlertRecord, event: EventKind, silenced: bool) {
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
