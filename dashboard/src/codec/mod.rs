//! Byte formats of the store's blobs: raw chunks ([`chunk`]) and rollup blocks ([`block`]),
//! built on a bit writer/reader ([`bits`]) and Gorilla XOR value coding ([`xor`]).
//!
//! Pure functions over bytes: no SQLite, no clocks. Decoding never panics and reports damage
//! as [`CodecError`].

pub mod bits;
pub mod block;
pub mod chunk;
pub mod xor;

pub use chunk::CodecError;
