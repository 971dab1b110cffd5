//! Delivering notifications: one task per target sends jobs in order (each kind's requests,
//! or an email: `notify`), retrying failures with exponential backoff (1 s doubling to 10 s)
//! and honouring `Retry-After` on HTTP 429 and 503. A job is reported back once: sent, or given
//! up (`notify.give_up_after` after it was queued, or at once on HTTP 400, a payload the
//! receiver will never take). The alert thread keeps the job in the persisted outbox until
//! then, so a restart re-sends what was not confirmed.
//!
//! Not here: what is sent (notify) or the outbox (the alert thread).

use super::notify::{self, Notice, SendError};
use crate::config::NotifyConfig;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use crate::config::Target;

/// The targets of `[notify]` (the shorthands' and `[[notify.target]]`).
pub fn targets(cfg: &NotifyConfig) -> Vec<Target> {
    cfg.targets.clone()
}

/// One message to send: the notices of one alert, or of a group of one rule's alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The outbox rows it settles, each reported on.
    pub notifications: Vec<String>,
    /// Their bodies ([`Notice`] JSON, or a document an older build rendered).
    pub bodies: Vec<String>,
    /// When the oldest was queued (ms since the epoch): the give-up clock starts there.
    pub created_ms: i64,
}

/// How a job ended, or a failed attempt on the way.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// An attempt failed; the job is retried.
    Failed(String),
    /// Given up; the job is not retried.
    GaveUp(String),
}

/// Reports go back to the alert thread through this queue. It is unbounded so that a delivery
/// task never waits on the alert thread (which may be stuck on a locked store) and no report
/// is lost (exactly-once depends on them); it is bounded in practice by the jobs in flight:
/// one final report per job, and at most one `Failed` per attempt, attempts at least a
/// second apart per target.
pub type Reports = mpsc::UnboundedSender<(String, Outcome)>;

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);
/// Jobs waiting per target.
pub const QUEUE: usize = 256;

/// The webhook settings of an HTTP client (the caller's builder carries the TLS provider and
/// the user agent).
pub fn configure(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    builder
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
}

/// Starts one task per target; returns their job queues in the order of `targets`.
pub fn start(
    targets: &[Target],
    client: &reqwest::Client,
    give_up_after: Duration,
    report: Reports,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Vec<mpsc::Sender<Job>> {
    targets
        .iter()
        .map(|t| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tracker.spawn(run_target(
                t.clone(),
                client.clone(),
                give_up_after,
                rx,
                report.clone(),
                shutdown.clone(),
            ));
            tx
        })
        .collect()
}

async fn run_target(
    target: Target,
    client: reqwest::Client,
    give_up_after: Duration,
    mut jobs: mpsc::Receiver<Job>,
    report: Reports,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            () = shutdown.cancelled() => return,
            j = jobs.recv() => match j { Some(j) => j, None => return },
        };
        let mut backoff = BACKOFF_FIRST;
        let mut attempts = 0u32;
        let each = |outcome: Outcome| {
            for n in &job.notifications {
                let _ = report.send((n.clone(), outcome.clone()));
            }
        };
        let first = job.notifications.first().cloned().unwrap_or_default();
        loop {
            attempts += 1;
            match send_job(&client, &target, &job).await {
                Ok(_) => {
                    if attempts > 1 {
                        info!(target = %target.label, notification = %first, attempts,
                            "notification delivered after retries");
                    }
                    each(Outcome::Sent);
                    break;
                }
                Err(SendError {
                    message: error,
                    permanent,
                    retry_after,
                }) => {
                    let age = crate::time::now_ms() - job.created_ms;
                    let too_old =
                        age > i64::try_from(give_up_after.as_millis()).unwrap_or(i64::MAX);
                    if permanent || too_old {
                        warn!(target = %target.label, notification = %first, %error,
                            attempts, "notification given up");
                        each(Outcome::GaveUp(error));
                        break;
                    }
                    if attempts == 1 {
                        warn!(target = %target.label, notification = %first, %error,
                            "notification not delivered; retrying with backoff");
                    }
                    each(Outcome::Failed(error));
                    let wait = retry_after.map_or(backoff, |r| r.min(RETRY_AFTER_MAX));
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// Sends a job: its notices rendered for the target's kind; a body an older build rendered
/// goes out as it is.
async fn send_job(
    client: &reqwest::Client,
    target: &Target,
    job: &Job,
) -> Result<notify::Delivered, SendError> {
    let notices: Result<Vec<Notice>, _> = job
        .bodies
        .iter()
        .map(|b| serde_json::from_str::<Notice>(b))
        .collect();
    match notices {
        Ok(ns) => notify::send(client, target, &ns).await,
        Err(_) => {
            let mut last = Err(SendError::permanent("nothing to send".into()));
            for body in &job.bodies {
                last = Ok(notify::send_raw(client, target, body).await?);
            }
            last
        }
    }
}
