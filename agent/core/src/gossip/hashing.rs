//! The hash maps of the gossip machine: foldhash, seeded at random per map, or with one
//! fixed seed in a process that asked for it ([`use_fixed_hashing`]).
//!
//! The seed decides the order in which a map is iterated (announcements, grafts, the
//! descriptors sent to a newcomer), so the simulator fixes it: then one seed of its random
//! graph gives one run, and two runs can be compared. Agents keep random seeds: keys come
//! from authenticated frames, and a random seed keeps their layout unpredictable.

use foldhash::fast::{FoldHasher, SeedableRandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

static FIXED: AtomicBool = AtomicBool::new(false);

/// Makes every gossip map created from now on in this process use one fixed seed.
pub fn use_fixed_hashing() {
    FIXED.store(true, Ordering::Relaxed);
}

/// The hasher of the gossip machine's maps.
#[derive(Debug, Clone)]
pub struct Hashing(SeedableRandomState);

impl Default for Hashing {
    fn default() -> Self {
        Hashing(if FIXED.load(Ordering::Relaxed) {
            SeedableRandomState::fixed()
        } else {
            SeedableRandomState::random()
        })
    }
}

impl BuildHasher for Hashing {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A hash map of the gossip machine.
pub type Map<K, V> = HashMap<K, V, Hashing>;
