//! Prometheus remote write (1.0) from a dashboard node: every host's live samples, as the
//! ingest task decodes them, go through a bounded queue ([`Feed`], then [`outbox::Outbox`])
//! to one task that every `export.remote_write_interval` POSTs them in batches to
//! `export.remote_write_url`, retrying with backoff (1 s doubling to 30 s) while the
//! receiver fails (connection errors, 5xx, 429). Samples the receiver refuses (other 4xx)
//! are counted and not sent again. When the queue overflows during a long outage, the
//! oldest samples are dropped (counted) and read back from the store once the receiver is
//! back, up to [`outbox::MAX_CATCH_UP_MS`] old, before anything newer is sent.
//!
//! The task publishes its counters in [`Stats`]; the node adds them to its own samples
//! (`remote_write.*`).
//!
//! Not here: names and units ([`meshmon_proto::prometheus`]), the bytes ([`wire`]), the
//! decision of what to send ([`outbox`]), config validation (the agent's `[export]`).

pub mod outbox;
pub mod wire;

use crate::{Reader, Sample};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use outbox::{MAX_BATCH, Next, Outbox};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Frames' worth of samples waiting between the ingest task and the remote-write task.
pub const FEED_QUEUE: usize = 4096;
/// The longest a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff between failed attempts: from 1 s, doubling, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Catch-up reads the store in windows of this many ms.
const CATCH_UP_STEP_MS: i64 = 60_000;
/// The store is read only this long after its flush interval has surely passed.
const FLUSH_MARGIN_MS: i64 = 2_000;

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(..)",
            Auth::Basic { .. } => "Basic(..)",
        })
    }
}

/// What the remote-write task needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The receiver's URL (`.../api/v1/write` for Prometheus).
    pub url: String,
    /// Authentication.
    pub auth: Auth,
    /// How often queued samples are sent.
    pub interval: Duration,
    /// Bound of the queue, in samples.
    pub queue: usize,
    /// The store file, for catch-up.
    pub store: PathBuf,
    /// The store's flush interval: catch-up reads only what is surely flushed.
    pub flush_interval: Duration,
}

/// The task's counters, for the node's own metrics.
#[derive(Debug)]
pub struct Stats {
    /// Samples the receiver accepted.
    pub sent: AtomicU64,
    /// Samples dropped from the full queue (read back from the store within the bound).
    pub dropped: AtomicU64,
    /// Samples the receiver refused for good.
    pub rejected: AtomicU64,
    /// Samples waiting in the queue.
    pub queued: AtomicU64,
    /// Timestamp (ms) of the newest sample the receiver accepted; 0 before the first.
    pub newest_ms: AtomicI64,
    /// Failed attempts (each retried).
    pub failures: AtomicU64,
    /// Oldest timestamp of samples the feed could not take (`i64::MAX`: none).
    feed_hole: AtomicI64,
    /// How many.
    feed_dropped: AtomicU64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            newest_ms: AtomicI64::new(0),
            failures: AtomicU64::new(0),
            feed_hole: AtomicI64::new(i64::MAX),
            feed_dropped: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Seconds between `now_ms` and the newest sample the receiver has (`None` before the
    /// first was accepted).
    pub fn lag_s(&self, now_ms: i64) -> Option<f64> {
        let newest = self.newest_ms.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)] // ms differences far below 2^53
        (newest > 0).then(|| (now_ms.saturating_sub(newest)).max(0) as f64 / 1000.0)
    }
}

impl Stats {
    /// The node's own `remote_write.*` values at `now_ms`.
    pub fn values(&self, now_ms: i64) -> Vec<(SeriesKey, f64)> {
        #[allow(clippy::cast_precision_loss)] // counters far below 2^53
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut out = vec![
            (
                SeriesKey::new(Metric::RemoteWriteQueueSamples),
                n(&self.queued),
            ),
            (
                SeriesKey::new(Metric::RemoteWriteSamplesSent),
                n(&self.sent),
            ),
            (
                SeriesKey::new(Metric::RemoteWriteSamplesDropped),
                n(&self.dropped),
            ),
            (
                SeriesKey::new(Metric::RemoteWriteSamplesRejected),
                n(&self.rejected),
            ),
            (
                SeriesKey::new(Metric::RemoteWriteFailures),
                n(&self.failures),
            ),
        ];
        if let Some(lag) = self.lag_s(now_ms) {
            out.push((SeriesKey::new(Metric::RemoteWriteLagS), lag));
        }
        out
    }
}

/// Where the ingest task hands live samples; never waits.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Vec<Sample>>,
    stats: Arc<Stats>,
}

impl Feed {
    /// Offers one frame's live samples; when the queue is full they are dropped, counted,
    /// and read back from the store later.
    pub fn offer(&self, samples: Vec<Sample>) {
        if samples.is_empty() {
            return;
        }
        if let Err(e) = self.tx.try_send(samples) {
            let samples = e.into_inner();
            let oldest = samples.iter().map(|s| s.ts_ms).min().unwrap_or(i64::MAX);
            self.stats.feed_hole.fetch_min(oldest, Ordering::Relaxed);
            self.stats
                .feed_dropped
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Starts the remote-write task; it ends on `shutdown`.
pub fn start(
    settings: Settings,
    client: reqwest::Client,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> (Feed, Arc<Stats>) {
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(FEED_QUEUE);
    info!(
        url = %redact(&settings.url),
        interval = ?settings.interval,
        queue = settings.queue,
        "remote write on"
    );
    let task = Task {
        outbox: Outbox::new(settings.queue),
        settings,
        client,
        rx,
        stats: Arc::clone(&stats),
        shutdown,
        failing_since: None,
    };
    tracker.spawn(task.run());
    (
        Feed {
            tx,
            stats: Arc::clone(&stats),
        },
        stats,
    )
}

/// Scheme and host of a URL, for logs (a URL may hold credentials or a token).
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/...")
}

/// How one attempt ended.
enum Attempt {
    Ok,
    /// Worth retrying (connection error, timeout, 5xx, 429).
    Retry(String),
    /// Refused for good (other 4xx).
    Refused(String),
}

/// How sending a batch ended.
enum Sent {
    Done,
    Shutdown,
}

struct Task {
    settings: Settings,
    client: reqwest::Client,
    rx: mpsc::Receiver<Vec<Sample>>,
    outbox: Outbox,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    /// When the receiver started failing (for one log line per outage).
    failing_since: Option<std::time::Instant>,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                v = self.rx.recv() => match v {
                    Some(v) => self.outbox.offer(v),
                    None => break,
                },
                _ = tick.tick() => {
                    if let Sent::Shutdown = self.ship().await {
                        break;
                    }
                }
            }
            self.publish();
        }
    }

    fn publish(&self) {
        let o = &self.outbox;
        let s = &self.stats;
        s.sent.store(o.sent, Ordering::Relaxed);
        s.dropped.store(o.dropped, Ordering::Relaxed);
        s.rejected.store(o.rejected, Ordering::Relaxed);
        s.queued.store(o.queued() as u64, Ordering::Relaxed);
        s.newest_ms
            .store(o.newest_ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Sends everything there is to send now.
    async fn ship(&mut self) -> Sent {
        loop {
            let hole = self.stats.feed_hole.swap(i64::MAX, Ordering::Relaxed);
            if hole != i64::MAX {
                let n = self.stats.feed_dropped.swap(0, Ordering::Relaxed);
                self.outbox.lost(hole, n);
            }
            let now = now_ms();
            let flush = i64::try_from(self.settings.flush_interval.as_millis()).unwrap_or(0);
            let safe = now - flush - FLUSH_MARGIN_MS;
            let next = self.outbox.next(now, safe);
            self.publish();
            match next {
                Next::Idle | Next::Wait => {
                    self.outbox.forget_before(now - 2 * outbox::MAX_CATCH_UP_MS);
                    return Sent::Done;
                }
                Next::Send(batch) => {
                    if let Sent::Shutdown = self.send(batch).await {
                        return Sent::Shutdown;
                    }
                }
                Next::CatchUp { from, to } => {
                    info!(
                        from_ms = from,
                        to_ms = to,
                        "remote write: sending the outage from the store"
                    );
                    let mut start = from;
                    while start <= to {
                        let end = (start + CATCH_UP_STEP_MS - 1).min(to);
                        let path = self.settings.store.clone();
                        let read =
                            tokio::task::spawn_blocking(move || read_store(&path, start, end));
                        let Some(read) = self.drive(read).await else {
                            return Sent::Shutdown;
                        };
                        let samples = match read {
                            Ok(Ok(s)) => s,
                            Ok(Err(error)) => {
                                warn!(%error, "remote write: cannot read the store; that part of the outage is not sent");
                                Vec::new()
                            }
                            Err(error) => {
                                warn!(%error, "remote write: the store reader failed");
                                Vec::new()
                            }
                        };
                        let samples = self.outbox.fresh(samples);
                        for chunk in samples.chunks(MAX_BATCH) {
                            if let Sent::Shutdown = self.send(chunk.to_vec()).await {
                                return Sent::Shutdown;
                            }
                        }
                        start = end + 1;
                    }
                    self.outbox.caught_up();
                }
            }
        }
    }

    /// Sends one batch, retrying with backoff until it is accepted or refused.
    async fn send(&mut self, batch: Vec<Sample>) -> Sent {
        let body = match wire::body(&wire::request(&batch)) {
            Ok(b) => b,
            Err(error) => {
                warn!(%error, "remote write: cannot compress a request; its samples are dropped");
                self.outbox.refused(&batch);
                return Sent::Done;
            }
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let attempt = post(
                self.client.clone(),
                self.settings.url.clone(),
                self.settings.auth.clone(),
                body.clone(),
            );
            let Some(attempt) = self.drive(attempt).await else {
                return Sent::Shutdown;
            };
            match attempt {
                Attempt::Ok => {
                    if let Some(since) = self.failing_since.take() {
                        info!(
                            down_s = since.elapsed().as_secs(),
                            "remote write: the receiver takes samples again"
                        );
                    }
                    self.outbox.delivered(&batch);
                    return Sent::Done;
                }
                Attempt::Refused(error) => {
                    warn!(%error, samples = batch.len(), "remote write: the receiver refused a request; its samples are not sent again");
                    self.outbox.refused(&batch);
                    return Sent::Done;
                }
                Attempt::Retry(error) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    if self.failing_since.is_none() {
                        warn!(%error, "remote write: the receiver fails; retrying with backoff");
                        self.failing_since = Some(std::time::Instant::now());
                    }
                    if self.drive(tokio::time::sleep(backoff)).await.is_none() {
                        return Sent::Shutdown;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            self.publish();
        }
    }

    /// Awaits `fut` while still taking live samples into the queue; `None` on shutdown.
    async fn drive<F: std::future::Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                out = &mut fut => return Some(out),
                Some(v) = self.rx.recv() => self.outbox.offer(v),
            }
        }
    }
}

/// One POST of a remote-write body.
async fn post(client: reqwest::Client, url: String, auth: Auth, body: Vec<u8>) -> Attempt {
    let mut req = client
        .post(url)
        .timeout(REQUEST_TIMEOUT)
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(e.to_string()),
    };
    let status = resp.status();
    if status.is_success() {
        return Attempt::Ok;
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(300).collect();
    let error = format!("HTTP {status}: {text}");
    if status.is_server_error() || status.as_u16() == 429 {
        Attempt::Retry(error)
    } else {
        Attempt::Refused(error)
    }
}

/// Every host's samples in `[from, to]` from the store, as stored (raw).
fn read_store(
    path: &std::path::Path,
    from: i64,
    to: i64,
) -> Result<Vec<Sample>, crate::StoreError> {
    let reader = Reader::open(path)?;
    let mut out = Vec::new();
    for host in reader.hosts(now_ms())? {
        reader.export(&host.host, from, to, |key, points| {
            out.extend(points.iter().map(|(ts, v)| Sample {
                host: host.host.clone(),
                series: key.clone(),
                ts_ms: *ts,
                value: *v,
            }));
            Ok(())
        })?;
    }
    Ok(out)
}

fn now_ms() -> i64 {
    i64::try_from(meshmon_proto::clock::wall_ms()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_secrets_are_not_logged() {
        assert_eq!(
            redact("https://user:pw@prom.example:9090/api/v1/write?x=1"),
            "https://prom.example:9090/..."
        );
        assert_eq!(format!("{:?}", Auth::Bearer("t0ken".into())), "Bearer(..)");
    }

    #[test]
    fn lag_is_unknown_until_a_sample_was_taken() {
        let s = Stats::default();
        assert_eq!(s.lag_s(10_000), None);
        s.newest_ms.store(7_500, Ordering::Relaxed);
        assert_eq!(s.lag_s(10_000), Some(2.5));
    }
}
