//! Which gossip frames are new: per origin, the newest boot seen and a sliding window of the
//! sequence numbers seen in it (like IPsec's anti-replay window). Frames of an older boot, or
//! below the window, or already in it, are duplicates or replays.
//!
//! Bounded: at most `max_origins` origins are tracked; the least recently heard is forgotten.

use super::hashing::Map;

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

    /// A seq at or below `top`: stale below the window, else whether its bit is set.
    fn classify(&self, seq: u64) -> Seen {
        let off = self.top.saturating_sub(seq);
        if off >= WINDOW {
            Seen::Stale
        } else if self.get(off) {
            Seen::Duplicate
        } else {
            Seen::New
        }
    }

    fn record(&mut self, seq: u64) {
        if seq > self.top {
            self.shift(seq - self.top);
            self.top = seq;
            self.set(0);
        } else if self.top - seq < WINDOW {
            self.set(self.top - seq);
        }
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
    origins: Map<String, OriginWindow>,
    max_origins: usize,
    clock: u64,
    /// Per origin, the window of the boot a newer one replaced (or of an older boot heard
    /// after it): frames of a second live host with the same name are checked here (`names`),
    /// so a recorded frame of a past boot is still a duplicate. Bounded like `origins`.
    rivals: Map<String, OriginWindow>,
}

impl Dedup {
    /// Tracks at most `max_origins` origins.
    pub fn new(max_origins: usize) -> Dedup {
        Dedup {
            origins: Map::default(),
            max_origins: max_origins.max(1),
            clock: 0,
            rivals: Map::default(),
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
        w.classify(seq)
    }

    /// The oldest seq in `range` of `origin`'s boot `boot_id` not seen yet: the gap a graft
    /// asks for.
    pub fn first_new(
        &self,
        origin: &str,
        boot_id: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        range
            .into_iter()
            .find(|s| self.check(origin, boot_id, *s) == Seen::New)
    }

    /// The newest seq seen of `origin` in boot `boot_id` (0: none).
    pub fn top(&self, origin: &str, boot_id: u64) -> u64 {
        self.origins
            .get(origin)
            .filter(|w| w.boot_id == boot_id)
            .map_or(0, |w| w.top)
    }

    /// Records an authenticated frame as seen. Call only after [`Dedup::check`] said `New`.
    /// Returns the newest seq seen of that boot before it (0: none), as [`Dedup::top`] would
    /// have, without a second look-up on the receive path.
    pub fn mark(&mut self, origin: &str, boot_id: u64, seq: u64) -> u64 {
        self.clock += 1;
        let clock = self.clock;
        // A known origin (every frame but its first) costs one look-up and no allocation.
        let w = match self.origins.get_mut(origin) {
            Some(w) => w,
            None => {
                if self.origins.len() >= self.max_origins {
                    evict(&mut self.origins);
                }
                self.origins
                    .entry(origin.to_owned())
                    .or_insert_with(|| OriginWindow::new(boot_id))
            }
        };
        if boot_id > w.boot_id {
            let old = std::mem::replace(w, OriginWindow::new(boot_id));
            if !self.rivals.contains_key(origin) && self.rivals.len() >= self.max_origins {
                evict(&mut self.rivals);
            }
            self.rivals.insert(origin.to_owned(), old);
        }
        w.used = clock;
        let before = if w.boot_id == boot_id { w.top } else { 0 };
        w.record(seq);
        before
    }

    /// Classifies a frame of an older boot than `origin`'s newest (a rival host with the same
    /// name, or a late or recorded frame of a past boot) against the rivals' window.
    pub fn check_rival(&self, origin: &str, boot_id: u64, seq: u64) -> Seen {
        match self.rivals.get(origin) {
            None => Seen::New,
            Some(w) if boot_id < w.boot_id => Seen::Stale,
            Some(w) if boot_id > w.boot_id || seq > w.top => Seen::New,
            Some(w) => w.classify(seq),
        }
    }

    /// Records a rival frame as seen. Call only after [`Dedup::check_rival`] said `New`.
    pub fn mark_rival(&mut self, origin: &str, boot_id: u64, seq: u64) {
        self.clock += 1;
        let clock = self.clock;
        if !self.rivals.contains_key(origin) && self.rivals.len() >= self.max_origins {
            evict(&mut self.rivals);
        }
        let w = self
            .rivals
            .entry(origin.to_owned())
            .or_insert_with(|| OriginWindow::new(boot_id));
        if boot_id > w.boot_id {
            *w = OriginWindow::new(boot_id);
        }
        w.used = clock;
        w.record(seq);
    }

    /// The newest boot seen of `origin`, if it is tracked.
    pub fn boot(&self, origin: &str) -> Option<u64> {
        self.origins.get(origin).map(|w| w.boot_id)
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
}

/// Forgets the least recently used window.
fn evict(map: &mut Map<String, OriginWindow>) {
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, w)| w.used)
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mark_returns_the_newest_before_it_and_first_new_finds_gaps() {
        let mut d = Dedup::new(10);
        assert_eq!(d.mark("a", 1, 3), 0, "nothing of the boot before");
        assert_eq!(d.mark("a", 1, 6), 3);
        assert_eq!(d.mark("a", 1, 4), 6, "an older frame: the newest stays");
        assert_eq!(d.first_new("a", 1, 3..=6), Some(5));
        assert_eq!(d.first_new("a", 1, 3..=4), None);
        assert_eq!(d.mark("a", 2, 1), 0, "a newer boot starts over");
    }

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
    fn a_replaced_boot_keeps_its_window_for_rival_frames() {
        let mut d = Dedup::new(10);
        d.mark("a", 1, 7);
        d.mark("a", 1, 8);
        d.mark("a", 2, 1);
        assert_eq!(d.check("a", 1, 9), Seen::Stale, "older boot, as before");
        assert_eq!(d.check_rival("a", 1, 8), Seen::Duplicate, "recorded frame");
        assert_eq!(d.check_rival("a", 1, 6), Seen::New);
        assert_eq!(d.check_rival("a", 1, 9), Seen::New, "the old boot lives on");
        d.mark_rival("a", 1, 9);
        assert_eq!(d.check_rival("a", 1, 9), Seen::Duplicate);
        assert_eq!(d.check_rival("a", 0, 1), Seen::Stale);
        assert_eq!(d.check_rival("b", 3, 1), Seen::New, "never seen");
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
