//! Delivering notifications: one task per target (the Slack webhook, each generic webhook)
//! POSTs jobs in order, retrying failures with exponential backoff (1 s doubling to 10 s)
//! and honouring `Retry-After` on HTTP 429 and 503. A job is reported back once: sent, or given
//! up (`notify.give_up_after` after it was queued, or at once on HTTP 400, a payload the
//! receiver will never take). The alert thread keeps the job in the persisted outbox until
//! then, so a restart re-sends what was not confirmed.
//!
//! Not here: what is sent (notify) or the outbox (the alert thread).

use crate::config::NotifyConfig;
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// A place notifications go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `slack` or `webhook-<8 hex digits of the URL's SHA-256>`: the same on every dashboard
    /// node with the same config, so notification ids agree across nodes.
    pub label: String,
    pub url: String,
    /// Slack message (Block Kit) rather than the generic document.
    pub slack: bool,
}

/// The targets of `[notify]`.
pub fn targets(cfg: &NotifyConfig) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(url) = &cfg.slack_webhook {
        out.push(Target {
            label: "slack".into(),
            url: url.clone(),
            slack: true,
        });
    }
    for url in &cfg.webhooks {
        let h = Sha256::digest(url.as_bytes());
        let hex: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
        out.push(Target {
            label: format!("webhook-{hex}"),
            url: url.clone(),
            slack: false,
        });
    }
    out
}

/// One POST to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub notification: String,
    pub body: String,
    /// When it was queued (ms since the epoch): the give-up clock starts there.
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
        loop {
            attempts += 1;
            let (outcome, retry_after) = post(&client, &target, &job.body).await;
            match outcome {
                Ok(()) => {
                    if attempts > 1 {
                        info!(target = %target.label, notification = %job.notification, attempts,
                            "notification delivered after retries");
                    }
                    let _ = report.send((job.notification.clone(), Outcome::Sent));
                    break;
                }
                Err((error, permanent)) => {
                    let age = crate::time::now_ms() - job.created_ms;
                    let too_old =
                        age > i64::try_from(give_up_after.as_millis()).unwrap_or(i64::MAX);
                    if permanent || too_old {
                        warn!(target = %target.label, notification = %job.notification, %error,
                            attempts, "notification given up");
                        let _ = report.send((job.notification.clone(), Outcome::GaveUp(error)));
                        break;
                    }
                    if attempts == 1 {
                        warn!(target = %target.label, notification = %job.notification, %error,
                            "notification not delivered; retrying with backoff");
                    }
                    let _ = report.send((job.notification.clone(), Outcome::Failed(error)));
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

/// One POST. Errors carry whether retrying is pointless, and a `Retry-After` to honour.
async fn post(
    client: &reqwest::Client,
    target: &Target,
    body: &str,
) -> (Result<(), (String, bool)>, Option<Duration>) {
    let resp = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return (Err((format!("request failed: {e}"), false)), None),
    };
    let status = resp.status();
    if status.is_success() {
        return (Ok(()), None);
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    let permanent = status == reqwest::StatusCode::BAD_REQUEST;
    (
        Err((format!("HTTP {status}: {}", text.trim()), permanent)),
        retry_after.filter(|_| status.as_u16() == 429 || status.as_u16() == 503),
    )
}
