//! Sockets: the ZMTP guard in front of zmq.rs, outbound links, and the mesh task that owns
//! the gossip machine. Everything that touches the network lives here.
//!
//! # Layout
//! - [`zmtp`]: sans-io streaming validator of ZMTP 3 bytes (greeting, frame sizes, parts).
//! - [`guard`]: the public listener and outbound relays that run every byte through it.
//! - [`link`]: one task per configured neighbour (re-created DEALER, backoff).
//! - [`mesh`]: the mesh task.

pub mod guard;
pub mod link;
pub mod mesh;
pub mod zmtp;
