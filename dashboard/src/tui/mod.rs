//! `meshmon tui`: a keyboard-driven terminal UI for the whole fleet, attached to one node.
//!
//! Input and live data become [`AppEvent`]s; [`App::update`] is the only thing that changes
//! state and returns [`Action`]s for the caller (acknowledge an alert, load history); the
//! views draw an `&App` and never mutate it. [`run`] owns the terminal.
//!
//! # Layout
//! - [`app`]: the state and its update; [`input`]: the key map.
//! - [`event`]: [`AppEvent`] in, [`Action`] out.
//! - [`data`]: the fleet model (hosts, frames decoded, link rates); [`host`]: one host.
//! - [`history`]: the [`History`] trait, time windows and the in-memory [`history::Ring`].
//! - [`alerts`]: the alert model; [`rows`]: table rows for Services, Disks and Mesh;
//!   [`containers`]: container rows and their sort order (Containers and Host views).
//! - [`views`]: pure drawing, one module per screen.
//! - [`store`]: history and alerts from a dashboard node's store, on threads of their own.
//! - [`run`]: the terminal loop (raw mode, input thread, redraw pacing, restore).
//! - [`synthetic`]: a deterministic fleet for snapshots and the benchmark.

pub mod alerts;
pub mod app;
pub mod containers;
pub mod data;
pub mod event;
pub mod history;
pub mod host;
pub mod input;
pub mod rows;
pub mod run;
pub mod store;
pub mod synthetic;
pub mod views;

#[cfg(test)]
mod app_tests;

pub use app::{App, Settings, SortKey, View};
pub use event::{Action, AppEvent, Loaded};
pub use history::{History, HistorySource, Window};
pub use run::run;
