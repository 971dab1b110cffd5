//! Sockets: the ZMTP guard, links, the mesh task.
//!
//! # Layout
//! - [`zmtp`]: sans-io validator of the ZMTP 3 byte stream a remote peer sends.

pub mod zmtp;
