//! The raw-sample chunk codec: a run of `(timestamp ms, f64)` samples of one series packed
//! Gorilla-style (Pelkonen et al., VLDB 2015), with buckets tuned for millisecond timestamps.
//!
//! Responsible for the byte format of one chunk, bit-exact round trips of any `i64`/`f64`
//! (NaN payloads, infinities and negative zero included), appending to an open chunk, and
//! merging late samples. Not responsible for which window a chunk covers or where it is stored
//! ([`crate::layout`], [`crate::writer`]).
//!
//! # Format (version 1)
//! `u8 version = 1`, `varint count`, then a bit stream (most significant bit first):
//! - sample 0: timestamp as 64 raw bits, then its value XOR-coded against 0;
//! - each later sample: the timestamp's delta-of-delta `dod` (`wrapping`, first delta taken
//!   against 0), then the value XOR-coded against the previous one ([`super::xor`]).
//!
//! Delta-of-delta codes: `0` (dod 0), `10`+4 bits, `110`+7 bits, `1110`+12 bits, `11110`+32
//! bits (two's complement), `11111`+64 bits.

use super::bits::{BitReader, BitWriter, Truncated, get_varint, put_varint};
use super::xor::XorState;

/// The chunk format version written by this build.
pub const CHUNK_VERSION: u8 = 1;

/// Why a chunk blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The blob is empty or its count is zero.
    #[error("empty chunk")]
    Empty,
    /// The blob has a format version this build does not know.
    #[error("unknown chunk format version {0}")]
    Version(u8),
    /// The blob ends before its declared samples do.
    #[error("truncated chunk")]
    Truncated,
}

impl From<Truncated> for CodecError {
    fn from(_: Truncated) -> CodecError {
        CodecError::Truncated
    }
}

/// Delta-of-delta buckets: (prefix ones before the terminating zero, payload bits).
const DOD_BUCKETS: [(u32, u32); 4] = [(1, 4), (2, 7), (3, 12), (4, 32)];

/// An append-only encoder of one chunk. Samples are normally appended in time order, but any
/// order encodes (and decodes) exactly.
#[derive(Debug, Clone, Default)]
pub struct ChunkEncoder {
    w: BitWriter,
    count: u32,
    prev_ts: i64,
    prev_delta: i64,
    values: XorState,
}

impl ChunkEncoder {
    /// An empty chunk.
    pub fn new() -> ChunkEncoder {
        ChunkEncoder::default()
    }

    /// A chunk holding `samples` in the given order.
    pub fn from_samples(samples: &[(i64, f64)]) -> ChunkEncoder {
        let mut e = ChunkEncoder::new();
        for &(t, v) in samples {
            e.push(t, v);
        }
        e
    }

    /// Number of samples.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether the chunk holds no sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the last appended sample.
    pub fn last_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.prev_ts)
    }

    /// Approximate heap bytes held.
    pub fn mem_bytes(&self) -> usize {
        self.w.capacity() + std::mem::size_of::<ChunkEncoder>()
    }

    /// Appends one sample.
    pub fn push(&mut self, ts: i64, value: f64) {
        if self.count == 0 {
            self.w.write(ts as u64, 64);
            self.prev_ts = ts;
            self.prev_delta = 0;
        } else {
            let delta = ts.wrapping_sub(self.prev_ts);
            self.put_dod(delta.wrapping_sub(self.prev_delta));
            self.prev_ts = ts;
            self.prev_delta = delta;
        }
        self.values.put(&mut self.w, value.to_bits());
        self.count = self.count.saturating_add(1);
    }

    fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.bit(false);
            return;
        }
        for (ones, width) in DOD_BUCKETS {
            let lim = 1i64 << (width - 1);
            if (-lim..lim).contains(&dod) {
                // `ones` one bits then a zero, then the two's complement payload.
                self.w.write(((1u64 << ones) - 1) << 1, ones + 1);
                self.w.write(dod as u64, width);
                return;
            }
        }
        self.w.write(0b11111, 5);
        self.w.write(dod as u64, 64);
    }

    /// The chunk's bytes (format above). The encoder can keep appending afterwards.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.w.len_bits() / 8 + 8);
        out.push(CHUNK_VERSION);
        put_varint(&mut out, u64::from(self.count));
        self.w.copy_to(&mut out);
        out
    }
}

/// Encodes `samples` (in the given order) as one chunk.
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    ChunkEncoder::from_samples(samples).to_blob()
}

/// Calls `f(ts, value)` for every sample of a chunk, in stored order. Never panics.
pub fn decode_each(blob: &[u8], mut f: impl FnMut(i64, f64)) -> Result<u32, CodecError> {
    let (&version, rest) = blob.split_first().ok_or(CodecError::Empty)?;
    if version != CHUNK_VERSION {
        return Err(CodecError::Version(version));
    }
    let (count, used) = get_varint(rest)?;
    let stream = &rest[used..];
    if count == 0 {
        return Err(CodecError::Empty);
    }
    // Every sample after the first costs at least two bits.
    if count > (stream.len() as u64 * 4) + 1 || count > u64::from(u32::MAX) {
        return Err(CodecError::Truncated);
    }
    let mut r = BitReader::new(stream);
    let mut values = XorState::default();
    let mut ts = r.read(64)? as i64;
    f(ts, f64::from_bits(values.get(&mut r)?));
    let mut delta = 0i64;
    for _ in 1..count {
        let dod = match r.unary(5)? {
            0 => 0,
            5 => r.read(64)? as i64,
            ones => {
                let width = DOD_BUCKETS[ones as usize - 1].1;
                let raw = r.read(width)?;
                // Sign-extend the two's complement payload.
                ((raw << (64 - width)) as i64) >> (64 - width)
            }
        };
        delta = delta.wrapping_add(dod);
        ts = ts.wrapping_add(delta);
        f(ts, f64::from_bits(values.get(&mut r)?));
    }
    Ok(count as u32)
}

/// Decodes a whole chunk.
pub fn decode(blob: &[u8]) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut out = Vec::new();
    decode_each(blob, |t, v| out.push((t, v)))?;
    Ok(out)
}

/// Merges `incoming` into time-ordered `existing`: the result is sorted by timestamp with one
/// sample per timestamp. On a tie the existing sample wins (a re-delivered sample is the same
/// sample; the first write is kept), and within `incoming` the first occurrence wins.
pub fn merge(existing: &[(i64, f64)], incoming: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut all: Vec<(i64, f64)> = Vec::with_capacity(existing.len() + incoming.len());
    all.extend_from_slice(existing);
    all.extend_from_slice(incoming);
    // Stable sort keeps existing before incoming, and incoming in arrival order, on ties.
    all.sort_by_key(|s| s.0);
    all.dedup_by_key(|s| s.0);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_series_is_small() {
        let samples: Vec<(i64, f64)> = (0..600)
            .map(|i| (1_700_000_000_000 + i * 1000, 42.0))
            .collect();
        let blob = encode(&samples);
        // Two bits per sample (same delta, same value) plus the header.
        assert!(blob.len() <= 600 / 4 + 20, "{} bytes", blob.len());
        assert_eq!(decode(&blob), Ok(samples));
    }

    #[test]
    fn appending_after_a_snapshot_continues_the_stream() {
        let mut e = ChunkEncoder::new();
        e.push(10, 1.5);
        e.push(20, 2.5);
        let first = e.to_blob();
        e.push(35, -0.0);
        assert_eq!(decode(&first), Ok(vec![(10, 1.5), (20, 2.5)]));
        let all = decode(&e.to_blob()).expect("decodes");
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].1.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[9, 1]), Err(CodecError::Version(9)));
        assert_eq!(decode(&[1, 0]), Err(CodecError::Empty));
        assert_eq!(decode(&[1, 5, 0, 0]), Err(CodecError::Truncated));
        let blob = encode(&[(1, 1.0), (2, 3.0), (4, 9.0)]);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn merge_keeps_existing_on_ties_and_sorts() {
        let m = merge(
            &[(1, 1.0), (3, 3.0)],
            &[(3, 30.0), (2, 2.0), (2, 20.0), (0, 0.5)],
        );
        assert_eq!(m, vec![(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0)]);
    }
}
