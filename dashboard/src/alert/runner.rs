//! The alert thread of a dashboard node: the shell around [`Machine`]. Its store work runs on
//! the store writer's thread and connection ([`CallSender`]), so the file has one writer. It
//! owns the input queue, the delivery reports, the delivery queues and the clock; it
//! feeds the machine and carries out what it asks (store transactions, jobs for the delivery
//! tasks, `AlertSync` payloads for the other dashboard nodes).
//!
//! Not here: any decision (which notification, who notifies, when to sync): see `machine`.

use super::SYNC_WINDOW_MS;
use super::deliver::{self, Job, Outcome};
use super::machine::{Db, Effect, Event, Frame, Machine, Startup, Store, ident_of};
use crate::CallSender;
use crate::alertdb::AlertDb;
use crate::config::NotifyConfig;
use crate::time::now_ms;
use crate::{Reader, StoreError};
use meshmon_proto::Payload;
use meshmon_proto::payload::AlertSync;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// What the alert thread is told.
#[derive(Debug)]
pub enum Input {
    /// A live frame (never a replayed one).
    Frame(Frame),
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
    /// The store file holding the alert tables (read-only, for the hosts it knows).
    pub store: PathBuf,
    /// The store writer, which runs the alert tables' reads and writes on its connection.
    pub calls: CallSender,
    pub rules: Vec<super::Rule>,
    pub notify: NotifyConfig,
    /// Recurring maintenance windows from the config.
    pub maintenance: Vec<super::maintenance::Recurring>,
}

/// Frames waiting for the alert thread.
const QUEUE: usize = 8192;
const TICK_MS: u64 = 1000;
/// After a batch of inputs, how long the alert thread lets the next ones gather.
const COALESCE: Duration = Duration::from_millis(20);
/// Inputs taken in one batch before reports and ticks get their turn.
const COALESCE_MAX: usize = 1024;

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
) -> anyhow::Result<(AlertSender, tokio::sync::oneshot::Receiver<()>)> {
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
    // Dropped when the thread ends: what the node awaits at shutdown (no polling).
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || {
            let _done = done;
            rt.block_on(runner.run(rx, reports, shutdown));
        })?;
    Ok((tx, ended))
}

struct Runner {
    path: PathBuf,
    calls: CallSender,
    machine: Machine,
    targets: usize,
    jobs: Vec<mpsc::Sender<Job>>,
    gossip: mpsc::Sender<Payload>,
    failing: bool,
    /// Transactions the store refused, oldest first, written before any newer one.
    unwritten: std::collections::VecDeque<std::sync::Arc<Vec<Db>>>,
    /// Transactions dropped because `unwritten` was full.
    unwritten_dropped: u64,
}

/// Transactions kept while the store refuses them (about an hour of a busy fleet's alert
/// changes); older ones are dropped.
const MAX_UNWRITTEN: usize = 100_000;

impl Runner {
    fn new(
        p: &AlertParams,
        targets: Vec<deliver::Target>,
        jobs: Vec<mpsc::Sender<Job>>,
        gossip: mpsc::Sender<Payload>,
    ) -> Runner {
        let n = targets.len();
        let mut machine = Machine::new(p.node.clone(), p.rules.clone(), targets);
        machine.set_maintenance(p.maintenance.clone());
        Runner {
            path: p.store.clone(),
            calls: p.calls.clone(),
            targets: n,
            machine,
            jobs,
            gossip,
            failing: false,
            unwritten: std::collections::VecDeque::new(),
            unwritten_dropped: 0,
        }
    }

    /// Reads what the previous run left, retrying every second while the store cannot be
    /// read (starting without it would notify again about alerts already notified).
    async fn startup_retrying(&mut self, shutdown: &CancellationToken) -> Option<Startup> {
        let mut logged = false;
        loop {
            let now = now_ms();
            match self.startup(now) {
                Ok(s) => return Some(s),
                Err(error) => {
                    if !logged {
                        warn!(%error, "alerts cannot read the store; retrying every second");
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
        let Some(startup) = self.startup_retrying(&shutdown).await else {
            return;
        };
        let now = now_ms();
        let restored = startup.active.len();
        let effects = self.machine.start(startup, now);
        self.execute(effects);
        info!(
            rules = self.machine.rules().len(),
            targets = self.targets,
            restored,
            "alert engine started"
        );
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                // Reports first: they settle the outbox, which exactly-once depends on.
                Some((notification, outcome)) = reports.recv() => {
                    self.report(notification, outcome);
                }
                input = rx.recv() => match input {
                    Some(input) => {
                        self.input(input);
                        // Take what else is queued, then let more gather: one wake-up of this
                        // thread per batch of frames, not per frame.
                        for _ in 0..COALESCE_MAX {
                            match rx.try_recv() {
                                Ok(input) => self.input(input),
                                Err(_) => break,
                            }
                        }
                        tokio::time::sleep(COALESCE).await;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let now = now_ms();
                    self.write_unwritten();
                    self.refresh(now);
                    self.step(Event::Tick(now));
                }
            }
        }
        // Reports that arrived before the end are still written.
        while let Ok((notification, outcome)) = reports.try_recv() {
            self.report(notification, outcome);
        }
    }

    /// What the previous run left in the store.
    fn startup(&mut self, now: i64) -> Result<Startup, StoreError> {
        let hosts = Reader::open(&self.path)
            .and_then(|r| r.hosts(now))
            .map(|hosts| {
                hosts
                    .into_iter()
                    .map(|h| (h.host, h.last_seen_ms))
                    .collect()
            })
            .unwrap_or_default();
        self.calls.call(move |conn, path| {
            let db = AlertDb::on(conn, path);
            let active = db.active()?;
            let outbox = db.outbox()?;
            let mut alerts = HashMap::new();
            for row in outbox.iter().filter(|r| r.state == "queued") {
                let ident = ident_of(&row.notification);
                if !alerts.contains_key(ident)
                    && let Some(a) = db.by_ident(ident)?
                {
                    alerts.insert(ident.to_owned(), (a.rule, a.host));
                }
            }
            let sent = db.sent_since(now - SYNC_WINDOW_MS, 500)?;
            let store = read_store(&db, now)?;
            Ok(Startup {
                active,
                hosts,
                outbox,
                alerts,
                sent,
                store,
            })
        })
    }

    /// Acknowledgements and silences, as `meshmon alerts`, the TUI and merged syncs left them.
    fn refresh(&mut self, now: i64) {
        match self
            .calls
            .call(move |conn, path| read_store(&AlertDb::on(conn, path), now))
        {
            Ok(store) => {
                self.machine.handle(Event::Store(store));
            }
            Err(error) => self.store_result(Err(error)),
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Frame(frame) => self.step(Event::Frame(frame)),
            Input::Sync { from, sync } => {
                let now = now_ms();
                self.step(Event::Sync {
                    from,
                    sync,
                    now_ms: now,
                });
                // The merged acknowledgements and silences.
                self.refresh(now);
            }
        }
    }

    fn report(&mut self, notification: String, outcome: Outcome) {
        let now_ms = now_ms();
        self.step(Event::Report {
            notification,
            outcome,
            now_ms,
        });
    }

    fn step(&mut self, event: Event) {
        let effects = self.machine.handle(event);
        self.execute(effects);
    }

    /// Carries out the machine's effects, in order, and tells it of jobs and payloads that
    /// did not fit their queues.
    fn execute(&mut self, effects: Vec<Effect>) {
        let mut closed = false;
        let mut answers = Vec::new();
        for effect in effects {
            match effect {
                Effect::Tx(ops) => {
                    self.unwritten.push_back(std::sync::Arc::new(ops));
                    self.write_unwritten();
                }
                Effect::Deliver { target, job } => {
                    // A closed queue (shutting down) takes nothing more of this dispatch.
                    let notifications = job.notifications.clone();
                    let taken = !closed
                        && match self.jobs.get(target).map(|q| q.try_send(job)) {
                            Some(Ok(())) => true,
                            Some(Err(TrySendError::Full(_))) => false,
                            Some(Err(TrySendError::Closed(_))) | None => {
                                closed = true;
                                false
                            }
                        };
                    if !taken {
                        answers.extend(notifications.into_iter().map(Event::Refused));
                    }
                }
                Effect::Gossip(sync) => {
                    if self.gossip.try_send(Payload::AlertSync(sync)).is_err() {
                        answers.push(Event::GossipDropped);
                    }
                }
            }
        }
        for answer in answers {
            // These answers cause no effects.
            let more = self.machine.handle(answer);
            debug_assert!(more.is_empty());
        }
    }

    /// Writes the transactions not yet written, oldest first, until one fails (the store is
    /// locked, full, gone): the machine has already acted on them, so they are kept and tried
    /// again at the next transaction or tick rather than lost; exactly-once after a restart
    /// depends on the outbox holding them. Past [`MAX_UNWRITTEN`] the oldest are dropped and
    /// counted.
    fn write_unwritten(&mut self) {
        while let Some(ops) = self.unwritten.front() {
            // Shared, not copied: the writer thread needs its own handle to the operations.
            let ops = std::sync::Arc::clone(ops);
            let r = self.calls.call(move |conn, path| {
                AlertDb::on(conn, path)
                    .transaction(|db| ops.iter().try_for_each(|op| write(db, op)))
            });
            let ok = r.is_ok();
            self.store_result(r);
            if !ok {
                break;
            }
            self.unwritten.pop_front();
        }
        while self.unwritten.len() > MAX_UNWRITTEN {
            self.unwritten.pop_front();
            self.unwritten_dropped += 1;
            if self.unwritten_dropped.is_power_of_two() {
                warn!(
                    dropped = self.unwritten_dropped,
                    "alert store writes dropped: the store has been failing too long"
                );
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
}

/// One write of the machine's.
/// Acknowledgements and silences, as `meshmon alerts`, the TUI and merged syncs left them.
fn read_store(db: &AlertDb<&mut rusqlite::Connection>, now: i64) -> Result<Store, StoreError> {
    Ok(Store {
        acked: db.acked_active()?,
        silences: db.silences(false, now)?,
        silences_changed: db.silences_updated_since(now - SYNC_WINDOW_MS)?,
    })
}

fn write(db: &AlertDb<&mut rusqlite::Connection>, op: &Db) -> Result<(), StoreError> {
    match op {
        Db::Upsert(rec) => db.upsert(rec).map(drop),
        Db::DeletePending(ident) => db.delete_pending(ident),
        Db::Enqueue {
            notification,
            target,
            body,
            silenced,
            now_ms,
        } => {
            let state = if *silenced { "silenced" } else { "queued" };
            db.enqueue(notification, target, body, state, *now_ms)
                .map(drop)
        }
        Db::Finish {
            notification,
            state,
            now_ms,
            error,
        } => db
            .finish(notification, state.as_str(), *now_ms, error.as_deref())
            .map(drop),
        Db::AttemptFailed {
            notification,
            error,
        } => db.attempt_failed(notification, error),
        Db::Group {
            group,
            notifications,
        } => db.set_group(group, notifications),
        Db::AckIdents(idents) => db.ack_idents(idents).map(drop),
        Db::MergeSilence(s) => db.merge_silence(s).map(drop),
        Db::Prune { before_ms } => db.prune(*before_ms),
    }
}

use tokio::sync::mpsc::error::TrySendError;
