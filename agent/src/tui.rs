//! `meshmon tui` and the demo's live view: attaches a viewer to a node, turns what it
//! delivers into the dashboard TUI's [`AppEvent`]s, says so in the UI when the node does not
//! answer (and keeps retrying), and turns SIGTERM/SIGINT into a clean exit.
//!
//! Not here: the UI itself (`meshmon_dashboard::tui`), or attaching (`viewer`).

use crate::gossip::Delivered;
use crate::viewer;
use meshmon_dashboard::tui::{self, AppEvent, HistorySource, Settings};
use meshmon_proto::{Keyring, Payload};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long without a Status before the UI says the node is not answering.
const SILENCE: Duration = Duration::from_secs(2);

/// What the TUI attaches to.
pub struct Target {
    /// `host:port` of the node.
    pub addr: String,
    pub keyring: Keyring,
    /// How to start the node, for the "not answering" message (e.g.
    /// `meshmon agent --config /etc/meshmon/meshmon.toml`).
    pub start_hint: String,
    /// The node's store, when it has the dashboard role: history comes from it.
    pub store: Option<PathBuf>,
}

/// Points per series in a history answer (charts are at most a few hundred cells wide).
const HISTORY_POINTS: i64 = 600;

/// Answers the UI's history requests from the store on this thread, so drawing never waits
/// on the disk. Requests that come while one is being answered replace each other.
fn history_worker(
    path: PathBuf,
    requests: std::sync::mpsc::Receiver<(String, i64, i64)>,
    events: mpsc::Sender<AppEvent>,
) {
    let mut reader: Option<meshmon_dashboard::Reader> = None;
    while let Ok(mut req) = requests.recv() {
        while let Ok(newer) = requests.try_recv() {
            req = newer;
        }
        let (host, since_ms, until_ms) = req;
        if reader.is_none() {
            match meshmon_dashboard::Reader::open(&path) {
                Ok(r) => reader = Some(r),
                Err(error) => {
                    tracing::debug!(%error, "store not readable yet; live history only");
                    continue;
                }
            }
        }
        let Some(r) = &reader else { continue };
        let step_ms = ((until_ms - since_ms) / HISTORY_POINTS).max(1000);
        let step = Duration::from_millis(u64::try_from(step_ms).unwrap_or(1000));
        let names: std::collections::BTreeSet<String> = match r.host_series(&host) {
            Ok(v) => v.into_iter().map(|(_, k)| k.name).collect(),
            Err(error) => {
                tracing::debug!(%error, "history query failed");
                reader = None;
                continue;
            }
        };
        let mut series = Vec::new();
        for name in names {
            let sel = meshmon_proto::Selector {
                name,
                labels: Vec::new(),
            };
            if let Ok(rows) = r.series(&host, &sel, since_ms, until_ms, Some(step)) {
                series.extend(rows.into_iter().map(|s| (s.key, s.points)));
            }
        }
        let loaded = tui::Loaded {
            host,
            since_ms,
            until_ms,
            series,
        };
        if events.blocking_send(AppEvent::History(loaded)).is_err() {
            break;
        }
    }
}

/// What the alert worker is asked to do.
enum AlertAction {
    Ack(i64),
    Silence { id: i64, until_ms: i64 },
}

/// Reads the store's alerts every 2 s for the Alerts view, and performs the view's
/// acknowledgements and silences in the store (the running node picks them up and tells the
/// other dashboard nodes), on this thread so the UI never waits on the disk.
fn alerts_worker(
    path: PathBuf,
    actions: std::sync::mpsc::Receiver<AlertAction>,
    events: mpsc::Sender<AppEvent>,
) {
    use meshmon_dashboard::alertdb::{AlertDb, SilenceRow};
    use meshmon_dashboard::tui::alerts::{Alert, AlertState, Severity};
    let mut db: Option<AlertDb> = None;
    loop {
        let action = match actions.recv_timeout(Duration::from_secs(2)) {
            Ok(a) => Some(a),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if db.is_none() && path.exists() {
            db = AlertDb::open(&path)
                .map_err(|error| tracing::debug!(%error, "alerts not readable yet"))
                .ok();
        }
        let Some(d) = &db else { continue };
        let now = meshmon_dashboard::time::now_ms();
        match action {
            Some(AlertAction::Ack(id)) => {
                let _ = d.ack(id);
            }
            Some(AlertAction::Silence { id, until_ms }) => {
                if let Ok(Some(a)) = d.get(id) {
                    let _ = d.merge_silence(&SilenceRow {
                        id: 0,
                        ident: format!("tui-{now}-{:08x}", rand::random::<u32>()),
                        rule: a.rule,
                        host: a.host,
                        created_ms: now,
                        until_ms,
                        by: "tui".into(),
                        removed: false,
                        updated_ms: now,
                    });
                }
            }
            None => {}
        }
        let Ok(reader) = meshmon_dashboard::Reader::open(&path) else {
            continue;
        };
        let silences = d.silences(false, now).unwrap_or_default();
        let rows = reader
            .alerts(true, Some(now - 86_400_000))
            .unwrap_or_default();
        let list = rows
            .into_iter()
            .map(|r| Alert {
                id: u64::try_from(r.id).unwrap_or(0),
                silenced_until_ms: silences
                    .iter()
                    .filter(|s| {
                        meshmon_dashboard::alert::rules::glob(&s.rule, &r.rule)
                            && meshmon_dashboard::alert::rules::glob(&s.host, &r.host)
                    })
                    .map(|s| s.until_ms)
                    .max(),
                rule: r.rule,
                host: r.host,
                state: match r.state.as_str() {
                    "firing" => AlertState::Firing,
                    "pending" => AlertState::Pending,
                    _ => AlertState::Resolved,
                },
                severity: match r.severity.as_str() {
                    "critical" => Severity::Critical,
                    "warning" => Severity::Warning,
                    _ => Severity::Info,
                },
                started_ms: r.started_ms,
                ended_ms: r.ended_ms,
                value: r.value.unwrap_or(f64::NAN),
                acked: r.acked,
            })
            .collect();
        if events.blocking_send(AppEvent::Alerts(list)).is_err() {
            return;
        }
    }
}

/// The UI event for one delivery, if the UI uses it. A status that comes in several frames
/// is handed over once all its parts are in.
pub fn to_event(d: Delivered, statuses: &mut viewer::StatusAssembler) -> Option<AppEvent> {
    match d.payload {
        Payload::Status(s) => statuses.push(s).map(AppEvent::Status),
        Payload::Hello(_) | Payload::Heartbeat(_) => None,
        payload => Some(AppEvent::Frame {
            header: d.header,
            payload,
            replay: d.replay,
        }),
    }
}

/// Runs the TUI attached to `target` until the user quits or a signal arrives.
pub async fn run(target: Target) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let deliveries =
        viewer::attach(&target.addr, target.keyring.clone(), &tracker, stop.clone()).await?;
    let (tx, rx) = mpsc::channel::<AppEvent>(4096);
    let silent_msg = format!(
        "no meshmon node answers at {} (retrying); start one with `{}`, and check that both \
         use the same key",
        target.addr, target.start_hint
    );
    tracker.spawn(forward(deliveries, tx.clone(), silent_msg, stop.clone()));
    tracker.spawn(signals(tx.clone(), stop.clone()));
    let (history_tx, history_rx) = std::sync::mpsc::sync_channel::<(String, i64, i64)>(8);
    let (alert_tx, alert_rx) = std::sync::mpsc::sync_channel::<AlertAction>(16);
    let history = match target.store.clone() {
        Some(path) => {
            let events = tx.clone();
            let apath = path.clone();
            std::thread::Builder::new()
                .name("tui-alerts".into())
                .spawn(move || alerts_worker(apath, alert_rx, events))?;
            let events = tx.clone();
            std::thread::Builder::new()
                .name("tui-history".into())
                .spawn(move || history_worker(path, history_rx, events))?;
            HistorySource::Store
        }
        None => HistorySource::Live {
            since_ms: tui::run::wall_ms(),
        },
    };
    let settings = Settings {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        history,
        target: target.addr.clone(),
    };
    let ui = tokio::task::spawn_blocking(move || {
        tui::run(rx, settings, |action| match action {
            tui::Action::LoadHistory {
                host,
                since_ms,
                until_ms,
            } => {
                // Without a store nobody listens: the live rings answer.
                let _ = history_tx.try_send((host, since_ms, until_ms));
            }
            // Without a store (not a dashboard node) nobody listens: they stay in the UI.
            tui::Action::Ack { id } => {
                let _ = alert_tx.try_send(AlertAction::Ack(i64::try_from(id).unwrap_or(0)));
            }
            tui::Action::Silence { id, until_ms } => {
                let _ = alert_tx.try_send(AlertAction::Silence {
                    id: i64::try_from(id).unwrap_or(0),
                    until_ms,
                });
            }
        })
    });
    let result = ui.await;
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
    result?.map_err(|e| {
        anyhow::anyhow!("cannot run the terminal UI ({e}); it needs an interactive terminal")
    })
}

/// Forwards deliveries to the UI (dropping when the UI is behind), and tells it when no
/// Status has come for [`SILENCE`].
async fn forward(
    mut deliveries: mpsc::Receiver<Delivered>,
    tx: mpsc::Sender<AppEvent>,
    silent_msg: String,
    stop: CancellationToken,
) {
    let mut last_status = tokio::time::Instant::now();
    let mut told = false;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    let mut dropped = 0u64;
    let mut statuses = viewer::StatusAssembler::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.recv() => {
                let Some(d) = d else { break };
                let Some(ev) = to_event(d, &mut statuses) else { continue };
                if matches!(ev, AppEvent::Status(_)) {
                    last_status = tokio::time::Instant::now();
                    told = false;
                }
                match tx.try_send(ev) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            _ = check.tick() => {
                if !told && last_status.elapsed() >= SILENCE {
                    told = true;
                    if tx.send(AppEvent::Disconnected(silent_msg.clone())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if dropped > 0 {
        tracing::debug!(dropped, "tui events dropped while the UI was behind");
    }
}

/// SIGTERM and SIGINT end the UI like `q` does, so the terminal is restored.
async fn signals(tx: mpsc::Sender<AppEvent>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = tx.send(AppEvent::Shutdown).await;
}
