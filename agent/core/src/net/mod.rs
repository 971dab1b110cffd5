//! Sockets: the ZMTP guard (inbound connections served in-line, outbound links relayed to
//! zmq.rs), outbound links, and the mesh task that owns the gossip machine. Everything that touches the network lives here.
//!
//! # Layout
//! - [`zmtp`]: sans-io streaming validator of ZMTP 3 bytes (greeting, frame sizes, parts).
//! - [`guard`]: the public listener and outbound relays that run every byte through it.
//! - [`wire`]: one inbound connection served in-line: messages assembled from validated
//!   bytes straight to the mesh task, its messages framed back (no zmq.rs).
//! - [`link`]: one task per configured neighbour (re-created DEALER, backoff).
//! - [`mesh`]: the mesh task.

pub mod guard;
pub mod link;
pub mod mesh;
pub mod wire;
pub mod zmtp;
