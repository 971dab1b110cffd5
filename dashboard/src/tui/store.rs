//! The TUI's side of a dashboard node's store: history for the charts and the Alerts view's
//! list, acknowledgements and silences, each on a thread of its own so that drawing never
//! waits on the disk. The TUI talks to them over channels.
//!
//! Not here: drawing or state (the rest of `tui`), the live stream (the viewer).

use super::AppEvent;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// A silence id no other silence has: this process, now, and a counter.
fn silence_ident(now: i64) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tui-{now}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Points per series in a history answer (charts are at most a few hundred cells wide).
const HISTORY_POINTS: i64 = 600;

/// Answers the UI's history requests from the store on this thread, so drawing never waits
/// on the disk. Requests that come while one is being answered replace each other.
pub fn history_worker(
    path: PathBuf,
    requests: std::sync::mpsc::Receiver<(String, i64, i64)>,
    events: mpsc::Sender<AppEvent>,
) {
    let mut reader: Option<crate::Reader> = None;
    while let Ok(mut req) = requests.recv() {
        while let Ok(newer) = requests.try_recv() {
            req = newer;
        }
        let (host, since_ms, until_ms) = req;
        if reader.is_none() {
            match crate::Reader::open(&path) {
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
        let loaded = super::Loaded {
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
pub enum AlertAction {
    Ack(i64),
    Silence { id: i64, until_ms: i64 },
}

/// Reads the store's alerts and the maintenance windows in force (`recurring` from the
/// config, one-off ones from the store) every 2 s for the Alerts view, and performs the view's
/// acknowledgements and silences in the store (the running node picks them up and tells the
/// other dashboard nodes), on this thread so the UI never waits on the disk.
pub fn alerts_worker(
    path: PathBuf,
    recurring: Vec<crate::alert::maintenance::Recurring>,
    actions: std::sync::mpsc::Receiver<AlertAction>,
    events: mpsc::Sender<AppEvent>,
) {
    use super::alerts::{Alert, AlertState, Severity};
    use crate::alertdb::{AlertDb, SilenceRow};
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
        let now = crate::time::now_ms();
        match action {
            Some(AlertAction::Ack(id)) => {
                let _ = d.ack(id);
            }
            Some(AlertAction::Silence { id, until_ms }) => {
                if let Ok(Some(a)) = d.get(id) {
                    let _ = d.merge_silence(&SilenceRow {
                        id: 0,
                        ident: silence_ident(now),
                        rule: a.rule,
                        host: a.host,
                        created_ms: now,
                        until_ms,
                        by: "tui".into(),
                        removed: false,
                        updated_ms: now,
                        maintenance: false,
                    });
                }
            }
            None => {}
        }
        let Ok(reader) = crate::Reader::open(&path) else {
            continue;
        };
        let (windows, silences): (Vec<SilenceRow>, Vec<SilenceRow>) = d
            .silences(false, now)
            .unwrap_or_default()
            .into_iter()
            .partition(|s| s.maintenance);
        let active = crate::alert::maintenance::active(&recurring, &windows, now);
        if events.blocking_send(AppEvent::Maintenance(active)).is_err() {
            return;
        }
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
                        crate::alert::rules::glob(&s.rule, &r.rule)
                            && crate::alert::rules::glob(&s.host, &r.host)
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
                maintenance: r.maintenance,
            })
            .collect();
        if events.blocking_send(AppEvent::Alerts(list)).is_err() {
            return;
        }
    }
}
