//! Gap-free history, the sans-io parts: the origin's ring of its own recent frames
//! ([`OwnRing`], which answers backfill requests) and a dashboard's per-origin gap tracker
//! ([`GapTracker`], which decides what to ask for and when).
//!
//! Not here: routing requests and replays through the mesh (gossip does that), or storing
//! what arrives (the store).

pub use meshmon_proto::gaps::{
    GAP_GRACE_MS, GapTracker, MAX_GAPS, MAX_RANGE, MAX_TRIES, RETRY_MS, TAIL, Wanted,
};
pub use meshmon_proto::ring::{OwnRing, RING_MAX_BYTES, RING_WINDOW_MS};

/// Replay payloads are cut at about this many bytes of frames.
pub const REPLAY_CHUNK: usize = 48 * 1024;
