//! The `meshmon` binary's library: it composes the agent side (`meshmon-agent-core`: collectors,
//! checks, mesh, viewer, exporter) and, in builds with the `dashboard` feature, the dashboard
//! role (`meshmon-dashboard`: store, alerts, queries, TUI). The binary (`main.rs`) only parses
//! arguments and calls in here.
//!
//! Features (all on by default): `dashboard`, `tui`, `web`, `export`, `self-update`, `gpu`, `checks`.
//! `cargo build --release --no-default-features` gives a plain agent without SQLite, ratatui,
//! reqwest or rustls.
//!
//! # Layout
//! - [`config`]: the whole config file, composed of the sections each component owns.
//! - [`node`]: builds a node by role, stage by stage, and stops it.
//! - [`cmd`]: the implementations of the `meshmon` commands.
//! - [`demo`]: `meshmon demo`, a mesh of local agents with cleanup on every exit path.
//! - [`web`]: the web dashboard wired into a node (feature `web`).
//! - [`tui`]: `meshmon tui`: a viewer feeding the dashboard's terminal UI (feature `tui`).
//!
//! The agent side's modules are re-exported under their own names ([`gossip`], [`net`], ...).

#[cfg(feature = "checks")]
pub use meshmon_agent_core::check;
#[cfg(feature = "export")]
pub use meshmon_agent_core::export;
#[cfg(feature = "dashboard")]
pub use meshmon_agent_core::http;
#[cfg(feature = "self-update")]
pub use meshmon_agent_core::update;
pub use meshmon_agent_core::{collect, gossip, net, viewer};

pub mod cmd;
pub mod config;
#[cfg(feature = "tui")]
pub mod demo;
pub mod node;
#[cfg(feature = "tui")]
pub mod tui;
#[cfg(feature = "web")]
pub mod web;
