//! `meshmon alerts`: acknowledge alerts, add, list and remove silences, and show the
//! notification outbox, in a dashboard node's store. The running node picks the change up
//! within a second and tells the other dashboard nodes (PROTOCOL.md section 10).

use super::{Failure, config_failure};
use crate::config::Config;
use meshmon_dashboard::alertdb::{AlertDb, SilenceRow};
use meshmon_dashboard::time::{format_rfc3339, now_ms};
use meshmon_proto::units::parse_duration;
use std::path::PathBuf;

/// Which store to change.
#[derive(clap::Args)]
pub struct AlertSource {
    /// Config whose store.path is used (default: as for `agent`)
    #[arg(short, long, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// Store file to use instead of the config's
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum AlertsCmd {
    /// Acknowledge an alert (by the id `meshmon query alerts` shows): no more reminders
    #[command(after_help = "Examples:\n  meshmon alerts ack 42")]
    Ack {
        id: i64,
        #[command(flatten)]
        src: AlertSource,
    },
    /// Stop notifications of matching alerts for a while (they are still recorded)
    #[command(
        after_help = "Globs: * matches any run of characters, ? one character.\n\n\
                      Examples:\n  meshmon alerts silence --rule disk-full --host web01 --for 2h\n  \
                      meshmon alerts silence --host 'gpu-*' --for 30m --comment 'driver upgrade'"
    )]
    Silence {
        /// Rule name glob
        #[arg(long, default_value = "*")]
        rule: String,
        /// Host name glob
        #[arg(long, default_value = "*")]
        host: String,
        /// How long, e.g. 2h
        #[arg(long = "for")]
        duration: String,
        /// Who or why (shown in the list)
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        src: AlertSource,
    },
    /// List silences in force (all, including ended and removed, with --all)
    #[command(after_help = "Examples:\n  meshmon alerts silences\n  meshmon alerts silences --all")]
    Silences {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        src: AlertSource,
    },
    /// End a silence now (by the id `meshmon alerts silences` shows)
    #[command(after_help = "Examples:\n  meshmon alerts unsilence 3")]
    Unsilence {
        id: i64,
        #[command(flatten)]
        src: AlertSource,
    },
    /// Notifications and their delivery state (queued, sent, sent_elsewhere, silenced, expired)
    #[command(after_help = "Examples:\n  meshmon alerts outbox")]
    Outbox {
        #[command(flatten)]
        src: AlertSource,
    },
}

fn open(src: &AlertSource) -> Result<(AlertDb, String), Failure> {
    let (db, name) = match &src.db {
        Some(p) => (p.clone(), crate::config::default_node_name()),
        None => {
            let cfg = Config::load(src.config.as_deref()).map_err(config_failure)?;
            (cfg.dashboard.store.path, cfg.agent.node.name)
        }
    };
    if !db.exists() {
        return Err(Failure(
            1,
            anyhow::anyhow!(
                "no store at '{}' (alerts live on dashboard nodes)",
                db.display()
            ),
        ));
    }
    let db = AlertDb::open(&db).map_err(|e| Failure(1, e.into()))?;
    Ok((db, name))
}

fn fail(e: meshmon_dashboard::StoreError) -> Failure {
    Failure(1, e.into())
}

pub fn alerts(cmd: AlertsCmd) -> Result<(), Failure> {
    let now = now_ms();
    match cmd {
        AlertsCmd::Ack { id, src } => {
            let (db, _) = open(&src)?;
            match db.ack(id).map_err(fail)? {
                Some(a) => println!(
                    "acknowledged alert {id}: {} on {} ({})",
                    a.rule, a.host, a.state
                ),
                None => {
                    return Err(Failure(
                        2,
                        anyhow::anyhow!("no alert with id {id} (see 'meshmon query alerts')"),
                    ));
                }
            }
        }
        AlertsCmd::Silence {
            rule,
            host,
            duration,
            comment,
            src,
        } => {
            let d =
                parse_duration(&duration).map_err(|m| Failure(2, anyhow::anyhow!("--for: {m}")))?;
            if d.is_zero() {
                return Err(Failure(2, anyhow::anyhow!("--for: must be more than 0s")));
            }
            let (db, name) = open(&src)?;
            let until = now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let s = SilenceRow {
                id: 0,
                ident: format!("{name}-{now}-{:08x}", rand::random::<u32>()),
                rule,
                host,
                created_ms: now,
                until_ms: until,
                by: comment,
                removed: false,
                updated_ms: now,
            };
            db.merge_silence(&s).map_err(fail)?;
            let id = db
                .silences(true, now)
                .map_err(fail)?
                .into_iter()
                .find(|r| r.ident == s.ident)
                .map_or(0, |r| r.id);
            println!(
                "silence {id}: rule '{}' host '{}' until {}",
                s.rule,
                s.host,
                format_rfc3339(until)
            );
        }
        AlertsCmd::Silences { all, src } => {
            let (db, _) = open(&src)?;
            let rows = db.silences(all, now).map_err(fail)?;
            println!(
                "{:<4} {:<20} {:<20} {:<24} {:<8} comment",
                "id", "rule", "host", "until", "state"
            );
            for s in rows {
                let state = if s.removed {
                    "removed"
                } else if s.until_ms <= now {
                    "ended"
                } else {
                    "active"
                };
                println!(
                    "{:<4} {:<20} {:<20} {:<24} {:<8} {}",
                    s.id,
                    s.rule,
                    s.host,
                    format_rfc3339(s.until_ms),
                    state,
                    s.by
                );
            }
        }
        AlertsCmd::Unsilence { id, src } => {
            let (db, _) = open(&src)?;
            match db.remove_silence(id, now).map_err(fail)? {
                Some(s) => println!("silence {id} removed (rule '{}' host '{}')", s.rule, s.host),
                None => {
                    return Err(Failure(
                        2,
                        anyhow::anyhow!("no silence with id {id} (see 'meshmon alerts silences')"),
                    ));
                }
            }
        }
        AlertsCmd::Outbox { src } => {
            let (db, _) = open(&src)?;
            println!(
                "{:<5} {:<24} {:<15} {:<9} {:<40}",
                "id", "created", "state", "attempts", "notification"
            );
            for r in db.outbox().map_err(fail)? {
                println!(
                    "{:<5} {:<24} {:<15} {:<9} {:<40}",
                    r.id,
                    format_rfc3339(r.created_ms),
                    r.state,
                    r.attempts,
                    r.notification
                );
            }
        }
    }
    Ok(())
}
