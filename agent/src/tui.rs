//! `meshmon tui` and the demo's live view: the glue between the agent side's viewer and the
//! dashboard's TUI (`meshmon_dashboard::tui`, where the whole UI lives, its store workers
//! included). It attaches a viewer to a node, turns what it delivers into [`AppEvent`]s, says so in the UI when the node does not
//! answer (and keeps retrying), and turns SIGTERM/SIGINT into a clean exit.
//!
//! Not here: the UI itself (`meshmon_dashboard::tui`), or attaching (`viewer`).

use crate::gossip::Delivered;
use crate::viewer;
use meshmon_dashboard::tui::store::{AlertAction, alerts_worker, history_worker};
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
    /// The config's recurring maintenance windows (the Alerts view lists those in force).
    pub maintenance: Vec<meshmon_dashboard::alert::maintenance::Recurring>,
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
            let recurring = target.maintenance.clone();
            std::thread::Builder::new()
                .name("tui-alerts".into())
                .spawn(move || alerts_worker(apath, recurring, alert_rx, events))?;
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
