//! `meshmon alerts test [--target NAME]`: sends a clearly marked test notification to each
//! target of the config (or the one named) and prints, per target, the HTTP status or SMTP
//! reply and the latency. Exit 0 only if every one was delivered.
//!
//! Not here: what a notification looks like or how it is sent (`alert::notify`).

use super::{Failure, config_failure};
use crate::config::Config;
use meshmon_dashboard::alert::notify;
use std::path::Path;
use std::time::Instant;

/// Runs the test against the targets of the config at `config`.
pub fn run(config: Option<&Path>, only: Option<&str>) -> Result<(), Failure> {
    let cfg = Config::load(config).map_err(config_failure)?;
    let targets: Vec<_> = cfg
        .dashboard
        .notify
        .targets
        .iter()
        .filter(|t| only.is_none_or(|n| n == t.label))
        .cloned()
        .collect();
    if targets.is_empty() {
        let what = match only {
            Some(n) => {
                let known: Vec<&str> = cfg
                    .dashboard
                    .notify
                    .targets
                    .iter()
                    .map(|t| t.label.as_str())
                    .collect();
                format!("no target named '{n}' (targets: {})", known.join(", "))
            }
            None => "the config has no notification targets ([[notify.target]])".to_owned(),
        };
        return Err(Failure(2, anyhow::anyhow!(what)));
    }
    let client = meshmon_dashboard::alert::deliver::configure(crate::http::builder(None))
        .build()
        .map_err(|e| Failure(1, anyhow::anyhow!("cannot build the HTTP client: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(1, e.into()))?;
    let notice = notify::test_notice(&cfg.agent.node.name, meshmon_dashboard::time::now_ms());
    let width = targets
        .iter()
        .map(|t| t.label.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$} {:<10} {:>10}  result",
        "target", "kind", "latency"
    );
    let mut failed = 0;
    for t in &targets {
        let start = Instant::now();
        let r = rt.block_on(notify::send(&client, t, std::slice::from_ref(&notice)));
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let result = match r {
            Ok(notify::Delivered(answer)) => format!("delivered: {answer}"),
            Err(e) => {
                failed += 1;
                format!("FAILED: {}", e.message)
            }
        };
        println!(
            "{:<width$} {:<10} {:>8.0}ms  {result}",
            t.label,
            t.kind.as_str(),
            ms
        );
    }
    if failed > 0 {
        return Err(Failure(
            1,
            anyhow::anyhow!("{failed} of {} targets failed", targets.len()),
        ));
    }
    Ok(())
}
