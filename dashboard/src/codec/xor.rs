//! Gorilla XOR coding of a sequence of `f64` bit patterns, shared by raw chunks and rollup
//! columns.
//!
//! Responsible for one value stream's state and codes; not for framing (counts, versions).
//! Codes: `0` (same bits as the previous value); `10` + the meaningful bits when they fit in
//! the previous window of leading/trailing zeros; `11` + 6 bits leading zeros + 6 bits
//! (length - 1) + the meaningful bits. The first value is coded against 0.

use super::bits::{BitReader, BitWriter, Truncated};

/// State of one XOR-coded stream (the encoder's and the decoder's are the same).
#[derive(Debug, Clone, Copy)]
pub struct XorState {
    prev: u64,
    /// Leading zeros of the current window; 64 means no window yet.
    lead: u32,
    trail: u32,
}

impl Default for XorState {
    fn default() -> XorState {
        XorState {
            prev: 0,
            lead: 64,
            trail: 0,
        }
    }
}

impl XorState {
    /// Writes `bits` (an `f64` bit pattern).
    #[inline]
    pub fn put(&mut self, w: &mut BitWriter, bits: u64) {
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            w.bit(false);
            return;
        }
        let lead = x.leading_zeros();
        let trail = x.trailing_zeros();
        if self.lead < 64 && lead >= self.lead && trail >= self.trail {
            w.write(0b10, 2);
            w.write(x >> self.trail, 64 - self.lead - self.trail);
        } else {
            let len = 64 - lead - trail;
            w.write(0b11, 2);
            w.write(u64::from(lead), 6);
            w.write(u64::from(len - 1), 6);
            w.write(x >> trail, len);
            self.lead = lead;
            self.trail = trail;
        }
    }

    /// Reads the next bit pattern. Never panics on bad input.
    #[inline]
    pub fn get(&mut self, r: &mut BitReader<'_>) -> Result<u64, Truncated> {
        if r.bit()? {
            if r.bit()? {
                let lead = r.read(6)? as u32;
                let len = r.read(6)? as u32 + 1;
                if lead + len > 64 {
                    return Err(Truncated);
                }
                self.lead = lead;
                self.trail = 64 - lead - len;
            } else if self.lead == 64 {
                return Err(Truncated);
            }
            self.prev ^= r.read(64 - self.lead - self.trail)? << self.trail;
        }
        Ok(self.prev)
    }
}
