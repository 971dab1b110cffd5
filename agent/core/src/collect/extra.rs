//! The optional collectors' side of the fast frame: each optional collector (GPU, Docker,
//! SMART, systemd, textfile, HTTP checks) runs on its own thread or task and publishes its
//! latest values into [`Extras`] under its own source name; the 1 s core loop appends every
//! source's latest values to each frame it sends. A slow or stuck optional collector therefore
//! never delays a core frame: the core loop only takes a short lock to copy values.
//!
//! Re-sending the latest value every interval is cheap on the wire: the compact sample encoding
//! sends only values that changed, plus periodic key frames.
//!
//! [`Stop`] is the shutdown signal for optional collector threads: a sleep that ends early when
//! the node stops.

use super::Sample;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Latest values per optional source.
#[derive(Debug, Clone, Default)]
pub struct Extras(
    Arc<Mutex<BTreeMap<String, Vec<Sample>>>>,
    /// When the core loop sends its next frame (see [`Extras::next_frame`]).
    Arc<Mutex<Option<Instant>>>,
);

impl Extras {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Sample>>> {
        // A panicking collector must not stop the others: the map is always consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The core loop says when its next frame is due, so a collector whose values should be
    /// fresh in it (processes) can read just before.
    pub fn set_next_frame(&self, at: Instant) {
        *self.1.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    /// When the core loop sends its next frame, if it has said.
    pub fn next_frame(&self) -> Option<Instant> {
        *self.1.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces `source`'s values (all of them: a series no longer present is no longer sent).
    pub fn set(&self, source: &str, samples: Vec<Sample>) {
        self.lock().insert(source.to_owned(), samples);
    }

    /// Removes `source`'s values (the source went away, e.g. the Docker directory was removed).
    pub fn clear(&self, source: &str) {
        self.lock().remove(source);
    }

    /// Appends every source's latest values to `out`.
    pub fn append_to(&self, out: &mut Vec<Sample>) {
        for samples in self.lock().values() {
            out.extend(samples.iter().cloned());
        }
    }

    /// The latest values of `source` (tests and diagnostics).
    pub fn get(&self, source: &str) -> Option<Vec<Sample>> {
        self.lock().get(source).cloned()
    }
}

/// Tells optional collector threads to stop; [`Stop::sleep`] wakes at once when it does.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    /// Signals every holder.
    pub fn stop(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }

    /// Whether [`Stop::stop`] was called.
    pub fn stopped(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A `Stop` that fires when `token` is cancelled: how threads honour the node's one
    /// shutdown mechanism, the [`CancellationToken`](tokio_util::sync::CancellationToken).
    /// The bridge is a task on `tracker`'s runtime.
    pub fn on_cancel(
        token: &tokio_util::sync::CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Stop {
        let stop = Stop::default();
        let (s, token) = (stop.clone(), token.clone());
        tracker.spawn(async move {
            token.cancelled().await;
            s.stop();
        });
        stop
    }

    /// Sleeps up to `d`; returns `true` if the node is stopping (at once when it is).
    pub fn sleep(&self, d: Duration) -> bool {
        let (m, cv) = &*self.0;
        let guard = m.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = cv
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Starts an optional collector's thread named `name`, running `body` with clones of `extras`
/// and `stop`. A thread that cannot be started logs `<what> collector off: ...` and gives
/// `None`: the node goes on without that collector.
pub fn spawn(
    name: &str,
    what: &str,
    extras: &Extras,
    stop: &Stop,
    body: impl FnOnce(&Extras, &Stop) + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    let (extras, stop) = (extras.clone(), stop.clone());
    match std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(&extras, &stop))
    {
        Ok(t) => Some(t),
        Err(error) => {
            tracing::warn!(%error, "{what} collector off: cannot start its thread");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::SeriesKey;
    use meshmon_proto::metrics::Metric;

    #[test]
    fn latest_values_replace_and_clear() {
        let e = Extras::default();
        e.set(
            "docker",
            vec![(SeriesKey::new(Metric::DockerDirBytes), 1.0)],
        );
        e.set(
            "docker",
            vec![(SeriesKey::new(Metric::DockerDirBytes), 2.0)],
        );
        let mut out = Vec::new();
        e.append_to(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, 2.0);
        e.clear("docker");
        out.clear();
        e.append_to(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn stop_wakes_a_sleeper() {
        let s = Stop::default();
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let stopped = s2.sleep(Duration::from_secs(30));
            (stopped, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        s.stop();
        let (stopped, took) = t.join().expect("thread");
        assert!(stopped);
        assert!(took < Duration::from_secs(5));
        assert!(s.sleep(Duration::from_secs(30)), "already stopped: no wait");
    }
}
