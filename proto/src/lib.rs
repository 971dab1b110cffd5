//! meshmon wire protocol: the bytes that cross the mesh and the types they carry.
//!
//! This crate knows bytes and types only: no sockets, no tokio, no SQLite. Decoding takes
//! untrusted input, is size-capped and never panics; every failure is a typed error.
//! The normative description of the format is `proto/PROTOCOL.md`.
//!
//! # Layout
//! - [`clock`]: the one clock (system or manual), ms since the epoch.
//! - [`gaps`]: per-origin sequence bookkeeping: which frames are held, which to ask for.
//! - [`frame`]: the envelope (version, hops, header, nonce, sealed body), encode/decode.
//! - [`seal`]: mesh keys, the keyring used for rotation, sealing and opening frames.
//! - [`payload`]: the MessagePack payloads, one per [`Kind`].
//! - [`metrics`]: canonical metric names, series keys and selectors.
//! - [`prometheus`]: how meshmon series are named, typed and scaled in Prometheus.
//! - [`ring`]: an origin's ring of its own recent frames, which answers backfill requests.
//! - [`samples`]: compact sample encoding (series table once, then changed values only).
//! - [`stream`]: one sample decoder per origin stream (origin, boot, live or replay), bounded.
//! - [`num`]: the compact number encoding used in sample payloads.
//! - [`units`]: durations (`500ms`, `5m`, `7d`) as written in configs and on the command line.
//! - [`error`]: the crate's error type.

pub mod clock;
pub mod error;
pub mod frame;
pub mod gaps;
pub mod metrics;
pub mod num;
pub mod payload;
pub mod prometheus;
pub mod ring;
pub mod samples;
pub mod seal;
pub mod stream;
pub mod units;

pub use error::{DecodeError, ProtoError};
pub use frame::{Flags, Frame, Header, Kind, MAX_FRAME_LEN, PROTOCOL_VERSION};
pub use metrics::{Selector, SeriesKey};
pub use payload::Payload;
pub use seal::{Key, Keyring, OpenedFrame};
