//! meshmon's dashboard role: the time-series store that keeps the whole fleet's history in one
//! SQLite file, the whole alert domain (rules, engine, outbox, persistence, notification), the
//! queries (`meshmon query ...`) over the store, and the terminal UI (feature `tui`). It
//! depends on `meshmon-proto` only, never on the agent: the `meshmon` binary composes them.
//!
//! Compact by design: raw samples live in per-series ten-minute chunks coded Gorilla-style
//! (about 1-2 bytes per sample instead of 25-40 for a row per sample), rolled up into
//! one-minute and one-hour buckets (min, max, avg, count, p95, last) kept much longer.
//! One writer thread owns the connection; readers open the file read-only at any time.
//!
//! Default retentions: raw 7 days ([`layout::DEFAULT_RETENTION_RAW`], `store.retention`),
//! one-minute rollups 90 days, one-hour rollups 2 years (fields of [`StoreConfig`]).
//!
//! # Layout
//! - [`stage`]: the dashboard stage of a node: store, alerts and ingestion, routed by kind.
//! - [`ingest`]: accepted frames into store writes and alert inputs.
//! - [`alert`]: alert rules, the engine, notifications and their delivery.
//! - [`config`]: the dashboard's config sections (`[store]`, `[[alert]]`, `[notify]`).
//! - [`writer`]: the writer thread, its queue, health and failure handling.
//! - [`alertdb`]: the alert tables (episodes, notification outbox, silences), read-write.
//! - [`reader`]: read-only queries (hosts, series, stats, export, alerts).
//! - [`head`]: a running node's unwritten data, served on `<store>.sock` for fresh queries.
//! - [`remote`]: Prometheus remote write of every host's live samples, with catch-up from
//!   the store after an outage.
//! - [`cli`]: `meshmon query` output as table, JSON or CSV, from parsed arguments.
//! - [`codec`]: byte formats of raw chunks and rollup blocks.
//! - [`agg`]: aggregates (count/min/max/avg/p95/last) and rollup buckets.
//! - [`layout`]: windows, blocks, row ids and default retentions.
//! - [`skew`]: where a skewed origin's timestamps go on this node's time line.
//! - [`schema`]: tables, migrations and how connections are opened.
//! - [`time`]: clocks, RFC 3339 and time arguments.
//! - [`error`]: the crate's error type.
//! - [`tui`]: (feature `tui`) the terminal UI (`meshmon tui`): fleet, host, services, disks, alerts and mesh
//!   views over a node's live stream.
//! - [`web`]: (feature `web`) the web dashboard: pages, the JSON API under `/api/v1/`,
//!   live events, logins and the public status page.

pub mod agg;
pub mod alert;
pub mod alertdb;
pub mod cli;
pub mod codec;
pub mod config;
pub mod error;
pub mod head;
pub mod ingest;
pub mod layout;
pub mod reader;
pub mod remote;
pub mod schema;
pub mod skew;
pub mod stage;
pub mod time;
#[cfg(feature = "tui")]
pub mod tui;
#[cfg(feature = "web")]
pub mod web;
pub mod writer;

pub use error::StoreError;
pub use reader::Reader;
pub use time::Clock;
pub use writer::{
    CallSender, HeadSender, Ingest, IngestSender, Sample, StoreConfig, WriterHandle, WriterHealth,
    start_writer,
};
