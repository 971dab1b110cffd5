//! What goes into the App ([`AppEvent`]: keys, live data, clock ticks) and what comes out of
//! it ([`Action`]: things only the caller can do, like acknowledging an alert in the store).
//! Both use proto and ratatui types only, so any caller (the `meshmon` binary, tests, a
//! benchmark) can drive the TUI.

use super::alerts::Alert;
use meshmon_proto::payload::Status;
use meshmon_proto::{Header, Payload, SeriesKey};
use ratatui::crossterm::event::KeyEvent;

/// One input to [`super::App::update`].
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// The attached node's status (about once a second).
    Status(Status),
    /// A gossip frame the node accepted (or a replayed one when `replay`).
    Frame {
        header: Header,
        payload: Payload,
        replay: bool,
    },
    /// A key press.
    Key(KeyEvent),
    /// The terminal was resized (redraw only).
    Resize,
    /// The clock: the time every view is drawn at, ms since the epoch.
    Tick { now_ms: i64 },
    /// The live stream is not answering; the message says why and what to do.
    Disconnected(String),
    /// The current set of alerts (from the alert engine of a dashboard node).
    Alerts(Vec<Alert>),
    /// The maintenance windows in force (the config's and the one-off ones in the store).
    Maintenance(Vec<super::alerts::ActiveWindow>),
    /// History answered for an [`Action::LoadHistory`].
    History(Loaded),
    /// Stop (SIGTERM, SIGINT, or the caller is done).
    Shutdown,
}

/// History loaded for one host and time range, preferred over the live rings where present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub host: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub series: Vec<(SeriesKey, Vec<(i64, f64)>)>,
}

/// Something the App asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Acknowledge alert `id`.
    Ack { id: u64 },
    /// Silence alert `id` until `until_ms`.
    Silence { id: u64, until_ms: i64 },
    /// Load `host`'s history for `[since_ms, until_ms]` (answer with [`AppEvent::History`]);
    /// callers without a store ignore it.
    LoadHistory {
        host: String,
        since_ms: i64,
        until_ms: i64,
    },
}
