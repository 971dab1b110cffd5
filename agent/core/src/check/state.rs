//! The up/down decision of one HTTP check, without I/O: fed one probe result at a time, it
//! says whether the check is up, down or not yet known, and when that changes.
//!
//! Rules (like Gatus' failure/success thresholds and Uptime Kuma's retries):
//! - At start the state is unknown (no `check.up` is sent). The first success makes it up
//!   at once; [`DOWN_AFTER`] consecutive failures make it down.
//! - Up goes down after [`DOWN_AFTER`] consecutive failures; one blip changes nothing.
//! - Down goes up after [`UP_AFTER`] consecutive successes.

/// Consecutive failures that take a check down (also from the unknown start).
pub const DOWN_AFTER: u32 = 3;
/// Consecutive successes that bring a down check back up.
pub const UP_AFTER: u32 = 2;

/// What the check is, as far as the probes so far tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No decision yet (start, before a success or [`DOWN_AFTER`] failures).
    Unknown,
    Up,
    Down,
}

/// One check's state: its health and the current run of equal results.
#[derive(Debug, Clone)]
pub struct State {
    health: Health,
    fails: u32,
    oks: u32,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// The unknown start.
    pub fn new() -> State {
        State {
            health: Health::Unknown,
            fails: 0,
            oks: 0,
        }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Takes one probe result; returns the new health when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<Health> {
        if ok {
            self.oks = self.oks.saturating_add(1);
            self.fails = 0;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.oks = 0;
        }
        let next = match self.health {
            Health::Unknown if ok => Health::Up,
            Health::Down if self.oks >= UP_AFTER => Health::Up,
            Health::Unknown | Health::Up if self.fails >= DOWN_AFTER => Health::Down,
            h => h,
        };
        (next != self.health).then(|| {
            self.health = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut State, results: &[bool]) -> Vec<Option<Health>> {
        results.iter().map(|ok| s.observe(*ok)).collect()
    }

    #[test]
    fn first_success_is_up_and_three_failures_are_down() {
        let mut s = State::new();
        assert_eq!(s.health(), Health::Unknown);
        assert_eq!(feed(&mut s, &[true]), [Some(Health::Up)]);
        assert_eq!(
            feed(&mut s, &[false, false, false, false]),
            [None, None, Some(Health::Down), None]
        );
        assert_eq!(s.health(), Health::Down);
    }

    #[test]
    fn one_blip_changes_nothing() {
        let mut s = State::new();
        s.observe(true);
        assert_eq!(
            feed(&mut s, &[false, false, true, false, false, true]),
            [None; 6]
        );
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn down_needs_two_successes_in_a_row_to_come_back() {
        let mut s = State::new();
        feed(&mut s, &[false, false, false]);
        assert_eq!(s.health(), Health::Down);
        assert_eq!(
            feed(&mut s, &[true, false, true, true, true]),
            [None, None, None, Some(Health::Up), None]
        );
    }

    #[test]
    fn unknown_start_goes_down_after_three_failures() {
        let mut s = State::new();
        assert_eq!(feed(&mut s, &[false, false]), [None, None]);
        assert_eq!(s.health(), Health::Unknown);
        assert_eq!(s.observe(false), Some(Health::Down));
    }
}
