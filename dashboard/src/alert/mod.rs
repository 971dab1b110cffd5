//! Alerting on dashboard nodes: rules (built-in and `[[alert]]`) evaluated as live frames
//! arrive, episodes and a notification outbox persisted in the store file, delivery to Slack
//! and generic webhooks, and the exchange between dashboard nodes that makes each transition
//! notified exactly once (PROTOCOL.md section 10).
//!
//! One thread ("alerts") owns the engine and its SQLite connection. It takes [`Input`]s on a
//! bounded queue (the ingestor never waits for it: a full queue drops and counts) and ticks
//! every second for host-down, reminders, ownership and the exchange.
//!
//! # Layout
//! - [`rules`]: built-in rules and the config's, validated.
//! - [`engine`]: the sans-io state machine (pending -> firing -> resolved).
//! - [`maintenance`]: maintenance windows (recurring from the config, one-off from the CLI)
//!   and their weekly schedules in IANA time zones.
//! - [`notify`]: what each kind of target is sent (Slack, Discord, Teams, Telegram, ntfy,
//!   Gotify, Pushover, PagerDuty, Opsgenie, email, generic webhook).
//! - [`deliver`]: POSTing with retries and backoff, one task per target.
//! - `events`: the machine's inputs and outputs.
//! - `routing`: which targets take an alert, and what groups notifications.
//! - `machine`: the alert thread's decisions without I/O: outbox, ownership, silences,
//!   acknowledgements and the exchange between dashboard nodes.
//! - `runner`: the thread around it: the store connection, queues and clock.

pub mod deliver;
pub mod engine;
mod events;
mod machine;
pub mod maintenance;
pub mod notify;
mod routing;
pub mod rules;
mod runner;

pub use events::Frame;
pub use rules::Rule;
pub use runner::{AlertParams, AlertSender, Input, start};

/// A dashboard node that sends no notifications for this long after it starts, so that it
/// hears of lower-named live dashboard nodes first.
pub const START_GRACE_MS: i64 = 2_000;
/// Notifications already queued in the outbox at start wait this long, so that a restarted
/// node hears which of them another dashboard node delivered while it was away.
pub const RESTART_GRACE_MS: i64 = 10_000;
/// How often a dashboard node tells the others what it delivered, acknowledged and silenced.
pub const SYNC_EVERY_MS: i64 = 2_000;
/// Deliveries are reported to the other dashboard nodes for this long.
pub const SYNC_WINDOW_MS: i64 = 10 * 60 * 1000;
