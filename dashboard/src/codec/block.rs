//! The rollup block codec: a fixed number of consecutive buckets (for example the 360
//! one-minute buckets of six hours) of one series, stored column by column.
//!
//! Responsible for the byte format of one block. Not responsible for computing buckets
//! ([`crate::agg`]) or for which rows hold which blocks ([`crate::layout`]).
//!
//! # Format (version 1)
//! `u8 version = 1`, `varint slots`, a presence bitmap of `slots` bits (bytes, least
//! significant bit first), then one bit stream holding six XOR-coded columns over the present
//! buckets in order: count (as `f64`), min, max, sum, p95, last.

use super::bits::{BitReader, BitWriter, get_varint, put_varint};
use super::chunk::CodecError;
use super::xor::XorState;
use crate::agg::Bucket;

/// The block format version written by this build.
pub const BLOCK_VERSION: u8 = 1;

/// A block of `slots.len()` buckets; `None` where a bucket has no data.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// One entry per bucket of the block, oldest first.
    pub slots: Vec<Option<Bucket>>,
}

impl Block {
    /// A block of `n` empty buckets.
    pub fn empty(n: usize) -> Block {
        Block {
            slots: vec![None; n],
        }
    }

    /// Whether no bucket holds data.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Encodes the block (format above).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.slots.len();
        let mut out = Vec::with_capacity(16 + n);
        out.push(BLOCK_VERSION);
        put_varint(&mut out, n as u64);
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        for (i, s) in self.slots.iter().enumerate() {
            if s.is_some() {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        let present: Vec<&Bucket> = self.slots.iter().flatten().collect();
        let mut w = BitWriter::new();
        for col in 0..6 {
            let mut x = XorState::default();
            for b in &present {
                x.put(&mut w, column(b, col).to_bits());
            }
        }
        w.copy_to(&mut out);
        out
    }

    /// Decodes a block; `expect_slots` guards against a blob of another resolution.
    pub fn decode(blob: &[u8], expect_slots: usize) -> Result<Block, CodecError> {
        let (&version, rest) = blob.split_first().ok_or(CodecError::Empty)?;
        if version != BLOCK_VERSION {
            return Err(CodecError::Version(version));
        }
        let (n, used) = get_varint(rest)?;
        if n != expect_slots as u64 {
            return Err(CodecError::Truncated);
        }
        let rest = &rest[used..];
        let bm_len = expect_slots.div_ceil(8);
        if rest.len() < bm_len {
            return Err(CodecError::Truncated);
        }
        let (bitmap, stream) = rest.split_at(bm_len);
        let idx: Vec<usize> = (0..expect_slots)
            .filter(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
            .collect();
        let mut cols = vec![[0f64; 6]; idx.len()];
        let mut r = BitReader::new(stream);
        for col in 0..6 {
            let mut x = XorState::default();
            for row in cols.iter_mut() {
                row[col] = f64::from_bits(x.get(&mut r)?);
            }
        }
        let mut block = Block::empty(expect_slots);
        for (i, c) in idx.into_iter().zip(cols) {
            block.slots[i] = Some(Bucket {
                count: c[0] as u64,
                min: c[1],
                max: c[2],
                sum: c[3],
                p95: c[4],
                last: c[5],
            });
        }
        Ok(block)
    }
}

fn column(b: &Bucket, col: usize) -> f64 {
    match col {
        0 => b.count as f64,
        1 => b.min,
        2 => b.max,
        3 => b.sum,
        4 => b.p95,
        _ => b.last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(v: f64) -> Bucket {
        Bucket {
            count: 60,
            min: v - 1.0,
            max: v + 1.0,
            sum: v * 60.0,
            p95: v + 0.5,
            last: v,
        }
    }

    #[test]
    fn blocks_round_trip_with_holes() {
        let mut b = Block::empty(360);
        for i in (0..360).filter(|i| i % 7 != 3) {
            b.slots[i] = Some(bucket(i as f64 * 0.25));
        }
        let blob = b.encode();
        assert_eq!(Block::decode(&blob, 360), Ok(b));
        assert!(Block::decode(&blob, 168).is_err(), "wrong resolution");
        for cut in 0..blob.len() {
            assert!(Block::decode(&blob[..cut], 360).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn steady_buckets_are_small() {
        let mut b = Block::empty(360);
        for s in &mut b.slots {
            *s = Some(bucket(50.0));
        }
        assert!(b.encode().len() < 400, "{}", b.encode().len());
    }
}
