//! The `meshmon` commands' implementations, called by the thin binary (`main.rs`), which only
//! parses arguments. Each returns a [`Failure`] carrying the exit code on error.
//!
//! # Layout
//! - [`alerts`]: `meshmon alerts` (acknowledge, silence, outbox); `alerts_test`: `meshmon
//!   alerts test`.
//! - [`demo`]: `meshmon demo`.
//! - [`query`]: `meshmon query` and its arguments.
//! - [`status`]: `meshmon status` output.
//! - [`keygen`]: `meshmon keygen`.
//! - [`web_password`]: `meshmon web-password` (feature `web`).

#[cfg(feature = "dashboard")]
pub mod alerts;
#[cfg(feature = "dashboard")]
mod alerts_test;
#[cfg(feature = "tui")]
pub mod demo;
pub mod keygen;
#[cfg(feature = "dashboard")]
pub mod query;
pub mod status;
#[cfg(feature = "web")]
pub mod web_password;

use tokio_util::sync::CancellationToken;

/// A failure with its exit code (1 runtime failure, 2 bad usage or config).
pub struct Failure(pub u8, pub anyhow::Error);

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(1, e)
    }
}

/// The answer of a build without `feature` to a command that needs it (exit code 2).
pub fn not_built(what: &str, feature: &str) -> Failure {
    Failure(
        2,
        anyhow::anyhow!(
            "{what} needs the '{feature}' feature, which this meshmon was built without \
             (cargo build --no-default-features); the default build (cargo build --release) has it"
        ),
    )
}

pub fn config_failure(e: crate::config::ConfigError) -> Failure {
    Failure(2, anyhow::Error::new(e))
}

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn stop_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    token.cancel();
}
