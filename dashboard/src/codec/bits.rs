//! Bit-level writer and reader (most significant bit first) under the chunk and rollup codecs.
//!
//! Responsible for packing and unpacking fixed-width bit fields and LEB128 varints. Not
//! responsible for what the fields mean. The reader never panics: reading past the end is an
//! error the caller turns into "corrupt".

/// Appends bit fields to a growing byte buffer.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Pending bits, right-aligned; fewer than 8 between calls.
    acc: u64,
    /// Number of pending bits in `acc`.
    n: u32,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Writes the low `bits` bits of `value` (`bits` <= 64).
    #[inline]
    pub fn write(&mut self, value: u64, bits: u32) {
        if bits > 32 {
            self.write_small(value >> 32, bits - 32);
            self.write_small(value & 0xffff_ffff, 32);
        } else {
            self.write_small(value, bits);
        }
    }

    #[inline]
    fn write_small(&mut self, value: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let mask = (1u64 << bits) - 1;
        self.acc = (self.acc << bits) | (value & mask);
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.buf.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    /// Writes one bit.
    #[inline]
    pub fn bit(&mut self, b: bool) {
        self.write_small(u64::from(b), 1);
    }

    /// Number of bits written so far.
    pub fn len_bits(&self) -> usize {
        self.buf.len() * 8 + self.n as usize
    }

    /// The bytes written so far, the last byte padded with zero bits, appended to `out`.
    /// The writer can keep going afterwards.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf);
        if self.n > 0 {
            out.push((self.acc << (8 - self.n)) as u8);
        }
    }

    /// Bytes of memory held (for accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Reads bit fields from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Reading ran past the end of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// Reads `bits` bits (<= 64) as an unsigned number.
    #[inline]
    pub fn read(&mut self, bits: u32) -> Result<u64, Truncated> {
        if bits > 32 {
            let hi = self.read_small(bits - 32)?;
            let lo = self.read_small(32)?;
            Ok((hi << 32) | lo)
        } else {
            self.read_small(bits)
        }
    }

    #[inline]
    fn read_small(&mut self, bits: u32) -> Result<u64, Truncated> {
        if bits == 0 {
            return Ok(0);
        }
        let end = self.pos + bits as usize;
        if end > self.data.len() * 8 {
            return Err(Truncated);
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        // Up to 5 bytes hold 32 + 7 bits; load 8 when available, pad with zeros otherwise.
        let mut word = [0u8; 8];
        let avail = (self.data.len() - byte).min(8);
        word[..avail].copy_from_slice(&self.data[byte..byte + avail]);
        let w = u64::from_be_bytes(word);
        self.pos = end;
        Ok((w << off) >> (64 - bits))
    }

    /// Reads one bit.
    #[inline]
    pub fn bit(&mut self) -> Result<bool, Truncated> {
        Ok(self.read_small(1)? == 1)
    }

    /// Reads leading one bits, at most `max`, consuming the terminating zero if one is found
    /// before `max`. Returns how many ones were read.
    #[inline]
    pub fn unary(&mut self, max: u32) -> Result<u32, Truncated> {
        let mut n = 0;
        while n < max {
            if !self.bit()? {
                return Ok(n);
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint from the start of `data`; returns it and its length.
pub fn get_varint(data: &[u8]) -> Result<(u64, usize), Truncated> {
    let mut v: u64 = 0;
    for (i, b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i as u32);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let fields: [(u64, u32); 9] = [
            (1, 1),
            (0, 1),
            (5, 3),
            (0xdead_beef, 32),
            (u64::MAX, 64),
            (0x1_2345_6789, 33),
            (0, 0),
            (77, 7),
            (1 << 63, 64),
        ];
        let mut w = BitWriter::new();
        for (v, b) in fields {
            w.write(v, b);
        }
        let bits = w.len_bits();
        let mut bytes = Vec::new();
        w.copy_to(&mut bytes);
        assert_eq!(bytes.len(), bits.div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for (v, b) in fields {
            assert_eq!(r.read(b), Ok(v), "{b} bits");
        }
        assert!(r.read(9).is_err(), "past the end");
    }

    #[test]
    fn varints() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&out), Ok((v, out.len())));
            assert!(get_varint(&out[..out.len() - 1]).is_err());
        }
    }
}
