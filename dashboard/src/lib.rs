//! meshmon dashboard role: what a node shows and keeps about the whole fleet.
//!
//! # Layout
//! - [`tui`]: the terminal UI (`meshmon tui`): fleet, host, services, disks, alerts and mesh
//!   views over a node's live stream.

pub mod tui;
