//! `meshmon query`: its arguments and the call into the store's queries. On a node without
//! the dashboard role (and without `--db`), `query hosts` answers from the node's live view:
//! the host table `meshmon status` gets over the node's port.

use super::{Failure, config_failure};
use crate::config::Config;
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;

/// Which store a query reads, and how it prints.
#[derive(clap::Args)]
pub struct QuerySource {
    /// Config whose store.path is read (default: as for `agent`)
    #[arg(short, long, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// Store file to read instead of the config's
    #[arg(long)]
    db: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum QueryFormat {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
pub enum QueryCmd {
    /// One row per host: host, status, last_seen, hops, version, os, uptime_s, tags
    #[command(
        after_help = "Examples:\n  meshmon query hosts\n  meshmon query hosts --format json\n  meshmon query hosts --db /var/lib/meshmon/meshmon.db --format csv"
    )]
    Hosts {
        #[command(flatten)]
        src: QuerySource,
    },
    /// Rows ts, value of one series (default: the last hour)
    #[command(
        after_help = "Examples:\n  meshmon query series --host srv01 --metric cpu.usage_pct --since 15m\n  meshmon query series --host srv01 --metric 'disk.used_pct{mount=\"/\"}' --since 7d --step 1h --format csv"
    )]
    Series {
        #[arg(long)]
        host: String,
        /// Metric selector, e.g. 'disk.used_pct{mount="/"}'
        #[arg(long)]
        metric: String,
        /// RFC 3339 time or a duration ago (1h)
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Average per step, e.g. 5m (long ranges read rollups)
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        src: QuerySource,
    },
    /// Rows metric, count, min, max, avg, p95, last (every metric of the host without --metric)
    #[command(
        after_help = "Examples:\n  meshmon query stats --host srv01\n  meshmon query stats --host srv01 --metric cpu.usage_pct --metric mem.used_pct --since 24h"
    )]
    Stats {
        #[arg(long)]
        host: String,
        #[arg(long)]
        metric: Vec<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        src: QuerySource,
    },
    /// Rows id, rule, host, state, severity, started, ended, value, acked, maintenance
    #[command(
        after_help = "Examples:\n  meshmon query alerts\n  meshmon query alerts --all --since 7d --format json"
    )]
    Alerts {
        /// Resolved alerts too
        #[arg(long)]
        all: bool,
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        src: QuerySource,
    },
    /// HTTP checks per vantage host: check, host, up, status, latency_ms, cert_days_left,
    /// uptime_pct, down_from, vantages (default: the last hour)
    #[command(
        after_help = "Examples:\n  meshmon query checks\n  meshmon query checks --since 7d\n  meshmon query checks --since 30d --format json"
    )]
    Checks {
        /// RFC 3339 time or a duration ago (1h); uptime_pct is over [since, until]
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        src: QuerySource,
    },
    /// Every metric of a host: rows metric, ts, value (csv or json)
    #[command(
        after_help = "Examples:\n  meshmon query export --host srv01 --since 1h --format csv > srv01.csv\n  meshmon query export --host srv01 --since 2026-11-01T00:00:00Z --format json"
    )]
    Export {
        #[arg(long)]
        host: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        src: QuerySource,
    },
}

pub fn query(what: QueryCmd) -> Result<(), Failure> {
    use meshmon_dashboard::StoreError;
    use meshmon_dashboard::cli::{Format as F, Query};
    let src = match &what {
        QueryCmd::Hosts { src }
        | QueryCmd::Series { src, .. }
        | QueryCmd::Stats { src, .. }
        | QueryCmd::Alerts { src, .. }
        | QueryCmd::Checks { src, .. }
        | QueryCmd::Export { src, .. } => src,
    };
    let format = match src.format {
        QueryFormat::Table => F::Table,
        QueryFormat::Json => F::Json,
        QueryFormat::Csv => F::Csv,
    };
    let db = match &src.db {
        Some(p) => p.clone(),
        None => {
            let cfg = Config::load(src.config.as_deref()).map_err(config_failure)?;
            if !cfg.agent.node.dashboard && matches!(what, QueryCmd::Hosts { .. }) {
                print!("{}", live_hosts(&cfg, format)?);
                return Ok(());
            }
            cfg.dashboard.store.path
        }
    };
    let q = Query {
        db: &db,
        format,
        now_ms: meshmon_dashboard::time::now_ms(),
    };
    let fail = |e: StoreError| {
        let code = if matches!(e, StoreError::BadArgument(_)) {
            2
        } else {
            1
        };
        Failure(code, anyhow::Error::new(e))
    };
    let out = match &what {
        QueryCmd::Hosts { .. } => q.hosts(),
        QueryCmd::Series {
            host,
            metric,
            since,
            until,
            step,
            ..
        } => q.series(
            host,
            metric,
            since.as_deref(),
            until.as_deref(),
            step.as_deref(),
        ),
        QueryCmd::Stats {
            host,
            metric,
            since,
            until,
            ..
        } => q.stats(host, metric, since.as_deref(), until.as_deref()),
        QueryCmd::Alerts { all, since, .. } => q.alerts(*all, since.as_deref()),
        QueryCmd::Checks { since, until, .. } => q.checks(since.as_deref(), until.as_deref()),
        QueryCmd::Export {
            host, since, until, ..
        } => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let warning = q
                .export(host, since.as_deref(), until.as_deref(), &mut lock)
                .map_err(fail)?;
            lock.flush().context("cannot write the export")?;
            if let Some(w) = warning {
                eprintln!("meshmon: {w}");
            }
            return Ok(());
        }
    }
    .map_err(fail)?;
    if let Some(w) = &out.warning {
        eprintln!("meshmon: {w}");
    }
    print!("{}", out.text);
    Ok(())
}

/// How long `query hosts` waits for a node without the dashboard role.
const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `query hosts` of a node without a store: its live host table, as `meshmon status` gets it
/// (`uptime_s` is unknown there: null).
fn live_hosts(cfg: &Config, format: meshmon_dashboard::cli::Format) -> Result<String, Failure> {
    use meshmon_dashboard::cli::{Cell, render};
    let target = crate::viewer::local_target(cfg.agent.node.listen);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = rt.block_on(crate::viewer::fetch_status(
        &target,
        cfg.agent.node.keyring.clone(),
        LIVE_TIMEOUT,
    ))?;
    let now = crate::net::mesh::wall_ms();
    let mut hosts = status.hosts;
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Vec<Cell>> = hosts
        .iter()
        .map(|h| {
            let text = |s: &str| {
                if s.is_empty() {
                    Cell::Null
                } else {
                    Cell::Str(s.to_owned())
                }
            };
            vec![
                Cell::Str(h.name.clone()),
                Cell::Str(super::status::host_state(h, now).into()),
                Cell::Time(i64::try_from(h.last_seen_ms).unwrap_or(i64::MAX)),
                Cell::Int(i64::from(h.hops)),
                text(&h.version),
                text(&h.os),
                Cell::Null,
                Cell::List(h.tags.clone()),
                h.clock_offset_ms.map_or(Cell::Null, Cell::Int),
            ]
        })
        .collect();
    Ok(render(format, &meshmon_dashboard::cli::HOST_COLUMNS, &rows))
}
