//! Which gossip frames are new: per origin, the newest boot seen and a sliding window of the
//! sequence numbers seen in it (like IPsec's anti-replay window). Frames of an older boot, or
//! below the window, or already in it, are duplicates or replays.
//!
//! Bounded: at most `max_origins` origins are tracked; the least recently heard is forgotten.

use std::collections::HashMap;

/// Width of the per-origin window, in sequence numbers.
pub const WINDOW: u64 = 1024;

/// What the window says about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen: accept (after authentication, call [`Dedup::mark`]).
    New,
    /// Seen before in this boot.
    Duplicate,
    /// Older than the window, or from an older boot of the origin: a replay or very late.
    Stale,
}

#[derive(Debug, Clone)]
struct OriginWindow {
    boot_id: u64,
    /// Highest seq seen in this boot.
    top: u64,
    /// Bit i set = seq `top - i` seen.
    bits: [u64; (WINDOW / 64) as usize],
    /// Logical time of last use, for eviction.
    used: u64,
}

impl OriginWindow {
    fn new(boot_id: u64) -> Self {
        OriginWindow {
            boot_id,
            top: 0,
            bits: [0; (WINDOW / 64) as usize],
            used: 0,
        }
    }

    fn get(&self, off: u64) -> bool {
        self.bits[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    fn set(&mut self, off: u64) {
        self.bits[(off / 64) as usize] |= 1 << (off % 64);
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.bits = [0; (WINDOW / 64) as usize];
            return;
        }
        // Shift the whole bit array towards higher offsets by `by`.
        let words = (by / 64) as usize;
        let bits = by % 64;
        let n = self.bits.len();
        for i in (0..n).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.bits[s] << bits);
            let lo = if bits == 0 {
                0
            } else {
                src.and_then(|s| s.checked_sub(1))
                    .map_or(0, |s| self.bits[s] >> (64 - bits))
            };
            self.bits[i] = hi | lo;
        }
    }
}

/// The de-duplication and anti-replay state of all origins.
#[derive(Debug)]
pub struct Dedup {
    origins: HashMap<String, OriginWindow>,
    max_origins: usize,
    clock: u64,
}

impl Dedup {
    /// Tracks at most `max_origins` origins.
    pub fn new(max_origins: usize) -> Dedup {
        Dedup {
            origins: HashMap::new(),
            max_origins: max_origins.max(1),
            clock: 0,
        }
    }

    /// Classifies (origin, boot, seq) without changing anything.
    pub fn check(&self, origin: &str, boot_id: u64, seq: u64) -> Seen {
        let Some(w) = self.origins.get(origin) else {
            return Seen::New;
        };
        if boot_id < w.boot_id {
            return Seen::Stale;
        }
        if boot_id > w.boot_id || seq > w.top {
            return Seen::New;
        }
        let off = w.top - seq;
        if off >= WINDOW {
            Seen::Stale
        } else if w.get(off) {
            Seen::Duplicate
        } else {
            Seen::New
        }
    }

    /// Records an authenticated frame as seen. Call only after [`Dedup::check`] said `New`.
    pub fn mark(&mut self, origin: &str, boot_id: u64, seq: u64) {
        self.clock += 1;
        let clock = self.clock;
        if !self.origins.contains_key(origin) && self.origins.len() >= self.max_origins {
            self.evict();
        }
        let w = self
            .origins
            .entry(origin.to_owned())
            .or_insert_with(|| OriginWindow::new(boot_id));
        if boot_id > w.boot_id {
            *w = OriginWindow::new(boot_id);
        }
        w.used = clock;
        if seq > w.top {
            w.shift(seq - w.top);
            w.top = seq;
            w.set(0);
        } else if w.top - seq < WINDOW {
            w.set(w.top - seq);
        }
    }

    /// Number of origins tracked.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// An estimate of the bytes held: the table and the origin names.
    pub fn memory(&self) -> usize {
        super::memory::table_bytes(
            self.origins.capacity(),
            std::mem::size_of::<(String, OriginWindow)>(),
        ) + self.origins.keys().map(String::capacity).sum::<usize>()
    }

    /// Whether no origin is tracked.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    fn evict(&mut self) {
        if let Some(oldest) = self
            .origins
            .iter()
            .min_by_key(|(_, w)| w.used)
            .map(|(k, _)| k.clone())
        {
            self.origins.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_duplicate_stale() {
        let mut d = Dedup::new(10);
        assert_eq!(d.check("a", 1, 1), Seen::New);
        d.mark("a", 1, 1);
        assert_eq!(d.check("a", 1, 1), Seen::Duplicate);
        assert_eq!(d.check("a", 1, 2), Seen::New);
        d.mark("a", 1, 5000);
        assert_eq!(d.check("a", 1, 2), Seen::Stale, "below the window");
        assert_eq!(
            d.check("a", 1, 4999),
            Seen::New,
            "out of order inside the window"
        );
        assert_eq!(d.check("a", 0, 9999), Seen::Stale, "older boot");
        assert_eq!(d.check("a", 2, 1), Seen::New, "newer boot");
        d.mark("a", 2, 1);
        assert_eq!(d.check("a", 1, 5001), Seen::Stale, "old boot after restart");
    }

    #[test]
    fn bounded_origins_evict_least_recent() {
        let mut d = Dedup::new(2);
        d.mark("a", 1, 1);
        d.mark("b", 1, 1);
        d.mark("a", 1, 2);
        d.mark("c", 1, 1);
        assert_eq!(d.len(), 2);
        assert_eq!(d.check("b", 1, 1), Seen::New, "b was evicted");
        assert_eq!(d.check("a", 1, 2), Seen::Duplicate);
    }

    proptest! {
        /// The window agrees with an exact set for any order of arrivals within its width.
        #[test]
        fn window_matches_exact_set(seqs in proptest::collection::vec(1u64..3000, 1..400)) {
            let mut d = Dedup::new(4);
            let mut seen = std::collections::BTreeSet::new();
            let mut top = 0u64;
            for s in seqs {
                let got = d.check("o", 7, s);
                let want = if top >= WINDOW && s <= top - WINDOW {
                    Seen::Stale
                } else if seen.contains(&s) {
                    Seen::Duplicate
                } else {
                    Seen::New
                };
                prop_assert_eq!(got, want, "seq {} top {}", s, top);
                if got == Seen::New {
                    d.mark("o", 7, s);
                    seen.insert(s);
                    top = top.max(s);
                }
            }
        }
    }
}
