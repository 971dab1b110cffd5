//! The `meshmon` binary: parses arguments, loads the config, starts what was asked for.
//! Everything else lives in the library. Exit codes: 0 success, 1 runtime failure,
//! 2 bad usage or bad config.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use meshmon_agent::config::Config;
use meshmon_agent::{node, tui, viewer};
use meshmon_proto::Key;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "meshmon",
    version,
    about = "Server monitoring mesh: tiny agents, no central server, the whole fleet from any node",
    after_help = "Examples:\n  meshmon agent --config /etc/meshmon/meshmon.toml\n  meshmon keygen --out /etc/meshmon/mesh.key\n  meshmon check-config --config ./meshmon.toml\n  meshmon status --format json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node in the foreground (systemd runs this)
    #[command(
        after_help = "Examples:\n  meshmon agent\n  meshmon agent --config /etc/meshmon/meshmon.toml\n  MESHMON_LOG=debug meshmon agent -c ./node.toml"
    )]
    Agent {
        /// Config file (default: $MESHMON_CONFIG, else /etc/meshmon/meshmon.toml, else built-in defaults)
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Print a new mesh key (32 random bytes, base64)
    #[command(
        after_help = "Examples:\n  meshmon keygen\n  meshmon keygen --out /etc/meshmon/mesh.key"
    )]
    Keygen {
        /// Write the key to this file (mode 0600) instead of printing it; never overwrites
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate a config and print the effective one
    #[command(
        name = "check-config",
        after_help = "Examples:\n  meshmon check-config --config /etc/meshmon/meshmon.toml"
    )]
    CheckConfig {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Start N agents of this machine in a ring with a chord and open the TUI on node 1
    #[command(
        after_help = "Examples:\n  meshmon demo\n  meshmon demo --nodes 8\n  meshmon demo --headless --nodes 5 --duration 15s"
    )]
    Demo {
        /// Number of agents
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// No live view: run for --duration, print what every node saw, exit 0 only if every
        /// node saw every host
        #[arg(long)]
        headless: bool,
        /// How long a headless demo runs
        #[arg(long, default_value = "20s", value_parser = parse_dur)]
        duration: Duration,
    },
    /// Keyboard-driven terminal UI attached to the local node: fleet, hosts, services, disks,
    /// alerts and the mesh
    #[command(
        after_help = "Keys: Tab or 1-6 switch views, arrows/hjkl move, Enter opens a host, / filters, \
                      s sorts, t changes the time window, ? lists every key, q quits.\n\n\
                      Examples:\n  meshmon tui\n  meshmon tui --config ./node.toml\n  NO_COLOR=1 meshmon tui"
    )]
    Tui {
        /// Config of the node to attach to (default: $MESHMON_CONFIG, else /etc/meshmon/meshmon.toml, else built-in defaults)
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Query a dashboard node's store: hosts, series, stats, alerts, export
    #[command(
        after_help = "Examples:\n  meshmon query hosts --format json\n  meshmon query series --host srv01 --metric 'disk.used_pct{mount=\"/\"}' --since 24h --step 5m\n  meshmon query stats --host srv01 --metric cpu.usage_pct --since 7d\n  meshmon query alerts --all --since 7d\n  meshmon query export --host srv01 --since 1h --format csv > srv01.csv"
    )]
    Query {
        #[command(subcommand)]
        what: QueryCmd,
    },
    /// Show what the local node sees: hosts of the mesh and its links
    #[command(
        after_help = "Examples:\n  meshmon status\n  meshmon status --config ./node.toml --format json"
    )]
    Status {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// How long to wait for the node
        #[arg(long, default_value = "5s", value_parser = parse_dur)]
        timeout: Duration,
    },
    /// Replace this binary with the latest release if it is newer (off unless a URL is set;
    /// never under Nix)
    #[command(
        name = "self-update",
        after_help = "Reads a GitHub-style releases/latest JSON, downloads the asset meshmon-<arch>-<os>, \
                      verifies it against the release's SHA256SUMS and renames it over this binary.\n\n\
                      Examples:\n  meshmon self-update --check\n  meshmon self-update --config /etc/meshmon/meshmon.toml\n  \
                      meshmon self-update --url https://api.github.com/repos/OWNER/meshmon/releases/latest"
    )]
    SelfUpdate {
        /// Only report the current and latest versions; change nothing
        #[arg(long)]
        check: bool,
        /// releases/latest URL (default: update.url of the config)
        #[arg(long)]
        url: Option<String>,
        /// Config whose update.url is used (default: as for `agent`)
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Replace this file instead of the running binary (for tests)
        #[arg(long, hide = true)]
        target: Option<PathBuf>,
    },
}

/// Which store a query reads, and how it prints.
#[derive(clap::Args)]
struct QuerySource {
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
enum QueryFormat {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum QueryCmd {
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
    /// Rows id, rule, host, state, severity, started, ended, value, acked
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

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    meshmon_proto::units::parse_duration(s)
}

/// A failure with its exit code.
struct Failure(u8, anyhow::Error);

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(1, e)
    }
}

fn config_failure(e: meshmon_agent::config::ConfigError) -> Failure {
    Failure(2, anyhow::Error::new(e))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The agent logs its life; client commands only warnings (their viewer's links are noise);
    // the TUI nothing, since stderr is the screen it draws on.
    init_logging(match cli.command {
        Command::Agent { .. } => "info",
        Command::Tui { .. }
        | Command::Demo {
            headless: false, ..
        } => "off",
        _ => "warn",
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, e)) => {
            eprintln!("meshmon: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESHMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::from)
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Agent { config } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let rt = runtime()?;
            rt.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                node::run(cfg, shutdown).await
            })?;
            Ok(())
        }
        Command::Keygen { out } => keygen(out),
        Command::Query { what } => query(what),
        Command::Tui { config } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let start_hint = match &cfg.source {
                Some(p) => format!("meshmon agent --config {}", p.display()),
                None => "meshmon agent".to_owned(),
            };
            let target = tui::Target {
                addr: viewer::local_target(cfg.node.listen),
                keyring: cfg.node.keyring.clone(),
                start_hint,
                store: cfg.node.dashboard.then(|| cfg.store.path.clone()),
            };
            let rt = runtime()?;
            rt.block_on(tui::run(target))?;
            Ok(())
        }
        Command::Demo {
            nodes,
            headless,
            duration,
        } => {
            let rt = runtime()?;
            rt.block_on(demo(nodes, headless, duration))
        }
        Command::CheckConfig { config } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let source = cfg.source.as_ref().map_or_else(
                || "built-in defaults".to_owned(),
                |p| p.display().to_string(),
            );
            println!("# {source}: ok");
            print!("{}", cfg.effective_toml());
            Ok(())
        }
        Command::SelfUpdate {
            check,
            url,
            config,
            target,
        } => self_update(check, url, config, target),
        Command::Status {
            config,
            format,
            timeout,
        } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let target = viewer::local_target(cfg.node.listen);
            let rt = runtime()?;
            let status = rt.block_on(viewer::fetch_status(
                &target,
                cfg.node.keyring.clone(),
                timeout,
            ))?;
            match format {
                Format::Json => {
                    let json = serde_json::to_string_pretty(&status_json(&status))
                        .context("cannot render JSON")?;
                    println!("{json}");
                }
                Format::Table => print_status(&status),
            }
            Ok(())
        }
    }
}

fn self_update(
    check: bool,
    url: Option<String>,
    config: Option<PathBuf>,
    target: Option<PathBuf>,
) -> Result<(), Failure> {
    use meshmon_agent::update::{self, Outcome};
    let url = match url {
        Some(u) => u,
        None => Config::load(config.as_deref())
            .map_err(config_failure)?
            .update
            .url
            .ok_or_else(|| {
                Failure(
                    2,
                    anyhow::anyhow!(
                        "self-update is off: set update.url in the config or pass --url"
                    ),
                )
            })?,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure(
            2,
            anyhow::anyhow!("'{url}' is not an http:// or https:// URL"),
        ));
    }
    let rt = runtime()?;
    match rt.block_on(update::run(&url, target.as_deref(), check))? {
        Outcome::UpToDate { current, latest } => {
            println!("meshmon {current} is up to date (latest release: {latest})");
        }
        Outcome::Available { current, latest } => {
            println!("meshmon {current}: update available: {latest} (run 'meshmon self-update')");
        }
        Outcome::Updated {
            current,
            latest,
            path,
        } => {
            println!(
                "meshmon updated {current} -> {latest} at {}; restart the agent (systemd: systemctl restart meshmon)",
                path.display()
            );
        }
    }
    Ok(())
}

async fn demo(nodes: usize, headless: bool, duration: Duration) -> Result<(), Failure> {
    use meshmon_agent::demo::{DemoMesh, fresh};
    let exe = std::env::current_exe().context("cannot find the meshmon binary")?;
    let mut mesh = DemoMesh::start(&exe, nodes).map_err(|e| Failure(2, e))?;
    println!(
        "demo: {nodes} agents on 127.0.0.1 in a ring with a chord; {} has the dashboard role; files in {}",
        mesh.names[0],
        mesh.dir.display()
    );
    for ((name, target), pid) in mesh.names.iter().zip(&mesh.targets).zip(mesh.pids()) {
        println!("demo: started {name} (pid {pid}) on {target}");
    }
    if headless {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        tokio::select! {
            _ = stop.cancelled() => return Err(Failure(1, anyhow::anyhow!("interrupted"))),
            _ = tokio::time::sleep(duration) => {}
        }
        if let Some(name) = mesh.exited().first() {
            return Err(Failure(
                1,
                anyhow::anyhow!("agent {name} exited early:\n{}", mesh.log_tail(name)),
            ));
        }
        let mut all = true;
        for (i, name) in mesh.names.iter().enumerate() {
            match mesh.status(i).await {
                Ok(s) => {
                    let seen = fresh(&s);
                    let ok = seen.len() == nodes;
                    all &= ok;
                    println!(
                        "{name}: saw {}/{nodes} hosts{}",
                        seen.len(),
                        if ok { "" } else { "  <- incomplete" }
                    );
                }
                Err(e) => {
                    all = false;
                    println!("{name}: no answer ({e:#})");
                }
            }
        }
        println!();
        // The dashboard's store, as `meshmon query hosts` shows it.
        let store = mesh.dir.join("store.db");
        let q = meshmon_dashboard::cli::Query {
            db: &store,
            format: meshmon_dashboard::cli::Format::Table,
            now_ms: meshmon_dashboard::time::now_ms(),
        };
        match q.hosts() {
            Ok(out) => {
                println!("store of {} ({}):", mesh.names[0], store.display());
                print!("{}", out.text);
            }
            Err(e) => println!("store of {}: {e}", mesh.names[0]),
        }
        drop(mesh);
        if all {
            println!("demo: ok, every node saw every host");
            Ok(())
        } else {
            Err(Failure(1, anyhow::anyhow!("not every node saw every host")))
        }
    } else {
        // The agents need a moment to bind; the UI says "connecting" until node 1 answers.
        let target = tui::Target {
            addr: mesh.targets[0].clone(),
            keyring: mesh.keyring.clone(),
            start_hint: format!("meshmon demo (its agents log to {})", mesh.dir.display()),
            store: Some(mesh.dir.join("store.db")),
        };
        let result = tui::run(target).await;
        drop(mesh);
        result?;
        println!("demo: stopped every agent and removed the temporary files");
        Ok(())
    }
}

fn query(what: QueryCmd) -> Result<(), Failure> {
    use meshmon_dashboard::StoreError;
    use meshmon_dashboard::cli::{Format as F, Query};
    let src = match &what {
        QueryCmd::Hosts { src }
        | QueryCmd::Series { src, .. }
        | QueryCmd::Stats { src, .. }
        | QueryCmd::Alerts { src, .. }
        | QueryCmd::Export { src, .. } => src,
    };
    let db = match &src.db {
        Some(p) => p.clone(),
        None => {
            Config::load(src.config.as_deref())
                .map_err(config_failure)?
                .store
                .path
        }
    };
    let q = Query {
        db: &db,
        format: match src.format {
            QueryFormat::Table => F::Table,
            QueryFormat::Json => F::Json,
            QueryFormat::Csv => F::Csv,
        },
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

async fn stop_on_signal(token: CancellationToken) {
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

fn keygen(out: Option<PathBuf>) -> Result<(), Failure> {
    let key = Key::generate()
        .context("cannot generate a key")?
        .to_base64();
    match out {
        None => {
            println!("{key}");
            Ok(())
        }
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| {
                    format!(
                        "cannot create '{}' (an existing key is never overwritten)",
                        path.display()
                    )
                })?;
            writeln!(f, "{key}").with_context(|| format!("cannot write '{}'", path.display()))?;
            f.sync_all()
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            eprintln!("wrote a new mesh key to {}", path.display());
            Ok(())
        }
    }
}

fn status_json(s: &meshmon_proto::payload::Status) -> serde_json::Value {
    let now = meshmon_agent::net::mesh::wall_ms();
    serde_json::json!({
        "node": s.node,
        "dashboard": s.dashboard,
        "frames_dropped": s.frames_dropped,
        "auth_failures": s.auth_failures,
        "hosts": s.hosts.iter().map(|h| serde_json::json!({
            "host": h.name,
            "status": host_state(h, now),
            "last_seen_ms_ago": now.saturating_sub(h.last_seen_ms),
            "hops": h.hops,
            "frames": h.frames,
            "version": h.version,
            "os": h.os,
            "tags": h.tags,
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| serde_json::json!({
            "peer": l.peer, "addr": l.addr, "direction": l.direction, "state": l.state,
            "role": l.role, "rtt_us": l.rtt_us, "frames_in": l.frames_in,
            "frames_out": l.frames_out, "dropped": l.dropped, "auth_failures": l.auth_failures,
        })).collect::<Vec<_>>(),
    })
}

/// `up` when the host was heard within 3 of its intervals (at least 5 s), else `down`.
fn host_state(h: &meshmon_proto::payload::HostStatus, now_ms: u64) -> &'static str {
    let limit = (h.interval_ms.max(1000) * 3).max(5000);
    if now_ms.saturating_sub(h.last_seen_ms) <= limit {
        "up"
    } else {
        "down"
    }
}

fn print_status(s: &meshmon_proto::payload::Status) {
    let now = meshmon_agent::net::mesh::wall_ms();
    println!(
        "node {}  ({} hosts, {} links)",
        s.node,
        s.hosts.len(),
        s.links.len()
    );
    println!(
        "{:<24} {:<6} {:>10} {:>4} {:>8}  OS",
        "HOST", "STATUS", "LAST SEEN", "HOPS", "FRAMES"
    );
    for h in &s.hosts {
        let ago = now.saturating_sub(h.last_seen_ms) as f64 / 1000.0;
        println!(
            "{:<24} {:<6} {:>9.1}s {:>4} {:>8}  {}",
            h.name,
            host_state(h, now),
            ago,
            h.hops,
            h.frames,
            h.os
        );
    }
    println!();
    println!(
        "{:<20} {:<22} {:<4} {:<10} {:>9} {:>9} {:>9} {:>7} {:>5}",
        "PEER", "ADDR", "DIR", "STATE", "RTT", "IN", "OUT", "DROPPED", "AUTH!"
    );
    for l in &s.links {
        let rtt = l
            .rtt_us
            .map_or_else(|| "-".to_owned(), |r| format!("{:.2}ms", r as f64 / 1000.0));
        println!(
            "{:<20} {:<22} {:<4} {:<10} {:>9} {:>9} {:>9} {:>7} {:>5}",
            l.peer,
            l.addr,
            l.direction,
            l.state,
            rtt,
            l.frames_in,
            l.frames_out,
            l.dropped,
            l.auth_failures
        );
    }
}
