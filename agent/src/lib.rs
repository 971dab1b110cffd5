//! The meshmon agent: configuration, collectors, the mesh (links and gossip) and the node that
//! wires them together. The `meshmon` binary (`main.rs`) only parses arguments and calls in here.
//!
//! # Layout
//! - [`config`]: the TOML config, raw serde structs and the validated form.
//! - [`alert`]: alert rules, the engine, notifications and their delivery (dashboard nodes).
//! - [`cmd`]: the implementations of the `meshmon` commands (the binary parses arguments).
//! - [`collect`]: host metric collectors (CPU, memory, disks, network, host).
//! - [`check`]: HTTP(S) service checks (`[[check]]`), async tasks on the node's runtime.
//! - [`gossip`]: the sans-io gossip state machine (links, credits, dedup, forwarding).
//! - [`http`]: the HTTP client builder every HTTP caller uses (TLS provider, user agent).
//! - [`export`]: the optional Prometheus endpoint.
//! - [`ingest`]: a dashboard node's frames into its store.
//! - [`net`]: sockets: the ZMTP guard, zmq.rs ROUTER/DEALER links, the mesh task.
//! - [`node`]: starts and stops a whole node.
//! - [`demo`]: `meshmon demo`, a mesh of local agents with cleanup on every exit path.
//! - [`viewer`]: a client that attaches to a node's port and receives its live stream.
//! - [`tui`]: `meshmon tui`: a viewer feeding the dashboard's terminal UI.
//! - [`update`]: self-update from a GitHub-style release with SHA-256 verification.

pub mod alert;
pub mod check;
pub mod cmd;
pub mod collect;
pub mod config;
pub mod demo;
pub mod export;
pub mod gossip;
pub mod http;
pub mod ingest;
pub mod net;
pub mod node;
pub mod tui;
pub mod update;
pub mod viewer;
