//! `meshmon alerts`: acknowledge alerts, add, list and remove silences and one-off maintenance
//! windows, and show the notification outbox, in a dashboard node's store. The running node
//! picks the change up within a second and tells the other dashboard nodes (PROTOCOL.md
//! section 10). A maintenance window is stored and exchanged as a silence marked
//! `maintenance`.

use super::{Failure, config_failure};
use crate::config::Config;
use meshmon_dashboard::alert::maintenance::Recurring;
use meshmon_dashboard::alertdb::{AlertDb, NewSilence, SilenceRow};
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
    /// Maintenance windows: add a one-off window, list windows, or end one early
    #[command(
        after_help = "While a window holds, matching alerts are recorded (marked \
                      'maintenance' in 'meshmon query alerts') but not notified, and host-down \
                      does not fire for matching hosts; an alert still firing when it ends is \
                      notified once. Recurring windows are [[maintenance]] in the config.\n\n\
                      Globs: * matches any run of characters, ? one character.\n\n\
                      Examples:\n  meshmon alerts maintenance --host 'db*' --for 2h --comment 'kernel upgrade'\n  \
                      meshmon alerts maintenance --host web01 --rule disk-full --for 30m\n  \
                      meshmon alerts maintenance --list\n  meshmon alerts maintenance --end 4"
    )]
    Maintenance {
        /// Host name glob (adds a one-off window)
        #[arg(long, required_unless_present_any = ["list", "end"], conflicts_with_all = ["list", "end"])]
        host: Option<String>,
        /// Rule name glob
        #[arg(long, default_value = "*", requires = "host")]
        rule: String,
        /// How long, e.g. 2h
        #[arg(long = "for", required_unless_present_any = ["list", "end"], requires = "host")]
        duration: Option<String>,
        /// Why (shown in the list and the TUI)
        #[arg(long, default_value = "", requires = "host")]
        comment: String,
        /// List the windows in force: one-off (from the store) and recurring (from the config)
        #[arg(long, conflicts_with = "end")]
        list: bool,
        /// With --list: also one-off windows that ended or were ended
        #[arg(long, requires = "list")]
        all: bool,
        /// End the one-off window with this id now
        #[arg(long, value_name = "ID")]
        end: Option<i64>,
        #[command(flatten)]
        src: AlertSource,
    },
    /// Send a marked test notification to every target (or one); exit 1 if any failed
    #[command(
        after_help = "Examples:\n  meshmon alerts test\n  meshmon alerts test --target ops-telegram"
    )]
    Test {
        /// Only this target (its `name`; `slack`, `webhook-<hash>` for the shorthands)
        #[arg(long)]
        target: Option<String>,
        /// Config whose targets are tested (default: as for `agent`)
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Notifications and their delivery state (queued, sent, sent_elsewhere, silenced, expired)
    #[command(after_help = "Examples:\n  meshmon alerts outbox")]
    Outbox {
        #[command(flatten)]
        src: AlertSource,
    },
}

/// A store, this node's name and the config's recurring maintenance windows (none with `--db`).
struct Opened {
    db: AlertDb,
    name: String,
    recurring: Vec<Recurring>,
}

fn open(src: &AlertSource) -> Result<(AlertDb, String), Failure> {
    open_all(src).map(|o| (o.db, o.name))
}

fn open_all(src: &AlertSource) -> Result<Opened, Failure> {
    let (db, name, recurring) = match &src.db {
        Some(p) => (p.clone(), crate::config::default_node_name(), Vec::new()),
        None => {
            let cfg = Config::load(src.config.as_deref()).map_err(config_failure)?;
            let d = cfg.dashboard;
            (d.store.path, cfg.agent.node.name, d.maintenance)
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
    Ok(Opened {
        db,
        name,
        recurring,
    })
}

/// Whether silence row `id` is a one-off maintenance window.
fn is_window(db: &AlertDb, id: i64, now: i64) -> Result<bool, Failure> {
    let rows = db.silences(true, now).map_err(fail)?;
    Ok(rows.iter().any(|s| s.id == id && s.maintenance))
}

/// `--for` as milliseconds, more than zero.
fn for_ms(duration: &str) -> Result<i64, Failure> {
    let d = parse_duration(duration).map_err(|m| Failure(2, anyhow::anyhow!("--for: {m}")))?;
    if d.is_zero() {
        return Err(Failure(2, anyhow::anyhow!("--for: must be more than 0s")));
    }
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A silence (or, with `maintenance`, a one-off window) from now for `ms`; returns it with
/// its local id.
fn add_silence(
    db: &AlertDb,
    name: &str,
    (rule, host): (String, String),
    ms: i64,
    comment: String,
    maintenance: bool,
) -> Result<SilenceRow, Failure> {
    let now = now_ms();
    let new = NewSilence {
        node: name,
        nonce: rand::random::<u32>(),
        rule: &rule,
        host: &host,
        until_ms: now.saturating_add(ms),
        by: &comment,
        maintenance,
    };
    let s = db.add_silence(new, now).map_err(fail)?;
    Ok(s)
}

/// Prints silences (or one-off windows) as `meshmon alerts silences` does.
fn print_silences(rows: &[SilenceRow], now: i64) {
    println!(
        "{:<6} {:<20} {:<20} {:<24} {:<8} comment",
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
            "{:<6} {:<20} {:<20} {:<24} {:<8} {}",
            s.id,
            s.rule,
            s.host,
            format_rfc3339(s.until_ms),
            state,
            s.by
        );
    }
}

/// `meshmon alerts maintenance`.
fn maintenance_cmd(
    host: Option<String>,
    rule: String,
    duration: Option<String>,
    comment: String,
    (list, all, end): (bool, bool, Option<i64>),
    src: &AlertSource,
) -> Result<(), Failure> {
    let now = now_ms();
    if let Some(id) = end {
        let (db, _) = open(src)?;
        let none = || {
            Failure(
                2,
                anyhow::anyhow!(
                    "no maintenance window with id {id} (see 'meshmon alerts maintenance --list')"
                ),
            )
        };
        if !is_window(&db, id, now)? {
            return Err(none());
        }
        let s = db.remove_silence(id, now).map_err(fail)?.ok_or_else(none)?;
        println!(
            "maintenance window {id} ended (rule '{}' host '{}')",
            s.rule, s.host
        );
        return Ok(());
    }
    if list {
        let o = open_all(src)?;
        let rows: Vec<SilenceRow> =
            o.db.silences(all, now)
                .map_err(fail)?
                .into_iter()
                .filter(|s| s.maintenance)
                .collect();
        print_silences(&rows, now);
        if !o.recurring.is_empty() {
            println!("\nrecurring (config):");
            for w in &o.recurring {
                println!(
                    "  hosts '{}' rules '{}' {}{}",
                    w.hosts.join(","),
                    w.rules.join(","),
                    w.schedule.describe(),
                    if w.schedule.covers(now) {
                        " (active)"
                    } else {
                        ""
                    }
                );
            }
        }
        return Ok(());
    }
    let (Some(host), Some(duration)) = (host, duration) else {
        return Err(Failure(
            2,
            anyhow::anyhow!("--host and --for are needed to add a window"),
        ));
    };
    let ms = for_ms(&duration)?;
    let (db, name) = open(src)?;
    let s = add_silence(&db, &name, (rule, host), ms, comment, true)?;
    println!(
        "maintenance window {}: rule '{}' host '{}' until {}",
        s.id,
        s.rule,
        s.host,
        format_rfc3339(s.until_ms)
    );
    Ok(())
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
            let ms = for_ms(&duration)?;
            let (db, name) = open(&src)?;
            let s = add_silence(&db, &name, (rule, host), ms, comment, false)?;
            println!(
                "silence {}: rule '{}' host '{}' until {}",
                s.id,
                s.rule,
                s.host,
                format_rfc3339(s.until_ms)
            );
        }
        AlertsCmd::Silences { all, src } => {
            let (db, _) = open(&src)?;
            let rows: Vec<SilenceRow> = db
                .silences(all, now)
                .map_err(fail)?
                .into_iter()
                .filter(|s| !s.maintenance)
                .collect();
            print_silences(&rows, now);
        }
        AlertsCmd::Maintenance {
            host,
            rule,
            duration,
            comment,
            list,
            all,
            end,
            src,
        } => maintenance_cmd(host, rule, duration, comment, (list, all, end), &src)?,
        AlertsCmd::Unsilence { id, src } => {
            let (db, _) = open(&src)?;
            if is_window(&db, id, now)? {
                return Err(Failure(
                    2,
                    anyhow::anyhow!(
                        "{id} is a maintenance window, not a silence: end it with \
                         'meshmon alerts maintenance --end {id}'"
                    ),
                ));
            }
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
        AlertsCmd::Test { target, config } => {
            super::alerts_test::run(config.as_deref(), target.as_deref())?;
        }
        AlertsCmd::Outbox { src } => {
            let (db, _) = open(&src)?;
            let rows = db.outbox().map_err(fail)?;
            let mut sizes = std::collections::HashMap::new();
            for g in rows.iter().filter_map(|r| r.group.as_deref()) {
                *sizes.entry(g).or_insert(0usize) += 1;
            }
            println!(
                "{:<5} {:<24} {:<15} {:<9} {:<40} group",
                "id", "created", "state", "attempts", "notification"
            );
            for r in &rows {
                // "grouped with N": the others of its message, named by the first's row.
                let group = match r.group.as_deref() {
                    Some(g) => {
                        let first = rows
                            .iter()
                            .find(|o| o.notification == g)
                            .map_or(0, |o| o.id);
                        format!(
                            "#{first}, grouped with {}",
                            sizes.get(g).map_or(0, |n| n - 1)
                        )
                    }
                    None => "-".into(),
                };
                println!(
                    "{:<5} {:<24} {:<15} {:<9} {:<40} {group}",
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
