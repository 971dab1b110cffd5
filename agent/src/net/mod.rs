//! Sockets: the ZMTP guard, links, the mesh task.
//!
//! # Layout
//! - [`zmtp`]: sans-io validator of the ZMTP 3 byte stream a remote peer sends.
//! - [`guard`]: the tokio proxies that put every network byte through [`zmtp`] before zmq.rs.

pub mod guard;
pub mod zmtp;
