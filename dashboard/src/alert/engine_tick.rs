//! The engine's 1 s tick: host-down (timed by this node's clock, since it is about frames
//! that do not arrive) and the firings that maintenance windows held, sent once their window
//! is over.
//!
//! Not here: frames and the threshold and increase rules (the parent).

use super::{Change, Engine, Episode, EventKind, Key, State, ident, ms};
use meshmon_proto::payload::down_after_ms;

impl Engine {
    /// The 1 s tick: host-down and its reminders, and the firings maintenance windows held
    /// once their window is over.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<Change>) {
        self.now_ms = now_ms;
        self.host_down(now_ms, out);
        self.release_held(out);
    }

    /// Episodes whose firing a window held and whose window is over fire now (once: the
    /// reminders counted meanwhile are not sent).
    fn release_held(&mut self, out: &mut Vec<Change>) {
        let mut due: Vec<Key> = self
            .episodes
            .iter()
            .filter(|(k, e)| {
                e.state == State::Firing && e.maintenance && !self.in_window(k.0, &k.1)
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.sort();
        for key in due {
            let repeat = ms(self.rules[key.0].repeat);
            let now = self.now_ms;
            if let Some(ep) = self.episodes.get_mut(&key) {
                ep.maintenance = false;
                // Reminders due in the window count as done, and so does the one due next:
                // the next reminder comes at least a whole repeat interval after this firing
                // (the next one due could be a few milliseconds away).
                if repeat > 0
                    && let Some(fired) = ep.fired_ms
                {
                    ep.reminders = ep.reminders.max(now.saturating_sub(fired) / repeat + 1);
                }
                let ep = ep.clone();
                tracing::info!(rule = %self.rules[key.0].name, host = %key.1,
                    "maintenance window over: the alert still fires");
                out.push(Change::Upsert(
                    self.record(&key, &ep, None),
                    Some(EventKind::Firing),
                ));
            }
        }
    }

    fn host_down(&mut self, now_ms: i64, out: &mut Vec<Change>) {
        let Some(ri) = self.host_down else {
            return;
        };
        let hold = ms(self.rules[ri].hold);
        let rule_name = self.rules[ri].name.clone();
        let mut silent: Vec<(String, i64, i64, u64)> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.applies.get(ri).copied().unwrap_or(false))
            .map(|(n, h)| {
                (
                    n.clone(),
                    now_ms.saturating_sub(h.last_seen_ms),
                    h.last_ts_ms,
                    h.interval_ms,
                )
            })
            .collect();
        silent.sort();
        for (host, quiet, last_ts, interval) in silent {
            let down_after = i64::try_from(down_after_ms(interval)).unwrap_or(i64::MAX);
            let three = i64::try_from(interval.saturating_mul(3)).unwrap_or(i64::MAX);
            let fire_after = three.max(hold).max(down_after);
            let key = (ri, host.clone(), String::new());
            if quiet < down_after {
                continue;
            }
            // A host in maintenance is not down: its episode stays pending (marked) until the
            // window is over.
            let held = self.in_window(ri, &host);
            match self.episodes.get(&key).map(|e| e.state) {
                None => {
                    let mut ep = Episode::new(ident(&rule_name, &host, "", last_ts), last_ts, None);
                    if quiet >= fire_after && !held {
                        self.fire(key, ep, now_ms, None, out);
                    } else {
                        ep.maintenance = held;
                        out.push(Change::Upsert(self.record(&key, &ep, None), None));
                        self.episodes.insert(key, ep);
                    }
                }
                Some(State::Pending) if held => {
                    if let Some(ep) = self.episodes.get_mut(&key)
                        && !ep.maintenance
                    {
                        ep.maintenance = true;
                        let ep = ep.clone();
                        out.push(Change::Upsert(self.record(&key, &ep, None), None));
                    }
                }
                Some(State::Pending) if quiet >= fire_after => {
                    if let Some(ep) = self.episodes.remove(&key) {
                        self.fire(key, ep, now_ms, None, out);
                    }
                }
                Some(State::Pending) => {}
                Some(State::Firing) => self.remind(&key, now_ms, out),
            }
        }
    }
}
