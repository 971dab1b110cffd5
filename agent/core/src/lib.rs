//! The agent side of meshmon: what every host runs. Collectors, HTTP checks, the mesh (links
//! and the sans-io gossip), the viewer, the Prometheus endpoint and self-update. It knows
//! nothing of SQLite, ratatui or alerts: the dashboard role lives in `meshmon-dashboard`, and
//! the `meshmon` binary (`meshmon-agent`) composes the two.
//!
//! # Layout
//! - [`config`]: the agent's config sections, raw and validated.
//! - [`collect`]: host metric collectors (CPU, memory, disks, network, host, optional ones).
//! - [`check`]: HTTP(S) service checks (`[[check]]`), feature `checks`.
//! - [`gossip`]: the sans-io gossip state machine (links, credits, dedup, forwarding).
//! - [`net`]: sockets: the ZMTP guard, zmq.rs ROUTER/DEALER links, the mesh task.
//! - [`node`]: the agent stage of a node (collector threads, checks, self-update).
//! - [`viewer`]: a client that attaches to a node's port and receives its live stream.
//! - [`export`]: the Prometheus endpoint, feature `export`.
//! - [`http`]: the HTTP client builder every HTTP caller uses (TLS provider, user agent).
//! - [`update`]: self-update from a GitHub-style release, feature `self-update`.

#[cfg(feature = "checks")]
pub mod check;
pub mod collect;
pub mod config;
#[cfg(feature = "export")]
pub mod export;
pub mod gossip;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
pub mod node;
#[cfg(feature = "self-update")]
pub mod update;
pub mod viewer;
