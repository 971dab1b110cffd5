//! Sockets: the ZMTP guard, inbound connections and outbound links (both served in-line,
//! without zmq.rs), and the mesh task that owns the gossip machine. Everything that touches
//! the network lives here.
//!
//! # Layout
//! - [`zmtp`]: sans-io streaming validator of ZMTP 3 bytes (greeting, frame sizes, parts).
//! - [`guard`]: the public listener, the connection cap, counters and how a connection ended.
//! - [`wire`]: one connection served in-line, as a ROUTER (accepted) or a DEALER (dialled):
//!   messages assembled from validated bytes straight to the mesh task, its messages
//!   framed back.
//! - [`link`]: one task per configured neighbour (dial, serve in-line, re-dial with backoff).
//! - [`mesh`]: the mesh task.

pub mod guard;
pub mod link;
pub mod mesh;
pub mod wire;
pub mod zmtp;
