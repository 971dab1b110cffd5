//! The `meshmon` binary: parses arguments, loads the config, starts what was asked for.
//! Everything else lives in the library. Exit codes: 0 success, 1 runtime failure,
//! 2 bad usage or bad config.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
#[cfg(feature = "tui")]
use meshmon_agent::cmd::demo::demo;
use meshmon_agent::cmd::keygen::keygen;
#[cfg(feature = "dashboard")]
use meshmon_agent::cmd::query::{QueryCmd, query};
use meshmon_agent::cmd::status::{print_status, status_json};
use meshmon_agent::cmd::{Failure, config_failure, stop_on_signal};
use meshmon_agent::config::Config;
#[cfg(feature = "tui")]
use meshmon_agent::tui;
use meshmon_agent::{node, viewer};
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
    /// Print the argon2 hash of a password for the web dashboard's web.password_file
    #[command(
        name = "web-password",
        after_help = "Reads the password from stdin (or asks for it twice on a terminal) and prints\n\
                      the hash line to put in the file web.password_file names.\n\n\
                      Examples:\n  meshmon web-password > /etc/meshmon/web.pass\n  \
                      printf '%s' \"$PASSWORD\" | meshmon web-password > /etc/meshmon/web.pass"
    )]
    WebPassword,
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
    /// Query a dashboard node's store: hosts, series, stats, alerts, checks, export
    #[command(
        after_help = "Examples:\n  meshmon query hosts --format json\n  meshmon query series --host srv01 --metric 'disk.used_pct{mount=\"/\"}' --since 24h --step 5m\n  meshmon query stats --host srv01 --metric cpu.usage_pct --since 7d\n  meshmon query alerts --all --since 7d\n  meshmon query checks --since 24h\n  meshmon query export --host srv01 --since 1h --format csv > srv01.csv"
    )]
    #[cfg(feature = "dashboard")]
    Query {
        #[command(subcommand)]
        what: QueryCmd,
    },
    /// Query a dashboard node's store (not in this build: it has no dashboard)
    #[cfg(not(feature = "dashboard"))]
    Query {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Acknowledge alerts and silence notifications on a dashboard node
    #[command(
        after_help = "Examples:\n  meshmon alerts ack 42\n  meshmon alerts silence --rule disk-full --host web01 --for 2h\n  meshmon alerts silences\n  meshmon alerts unsilence 3\n  meshmon alerts maintenance --host 'db*' --for 2h --comment 'kernel upgrade'\n  meshmon alerts outbox\n  meshmon alerts test"
    )]
    #[cfg(feature = "dashboard")]
    Alerts {
        #[command(subcommand)]
        what: meshmon_agent::cmd::alerts::AlertsCmd,
    },
    /// Acknowledge alerts and silence notifications (not in this build: it has no dashboard)
    #[cfg(not(feature = "dashboard"))]
    Alerts {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
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

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    meshmon_proto::units::parse_duration(s)
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
        #[cfg(feature = "web")]
        Command::WebPassword => meshmon_agent::cmd::web_password::web_password(),
        #[cfg(not(feature = "web"))]
        Command::WebPassword => Err(meshmon_agent::cmd::not_built("meshmon web-password", "web")),
        #[cfg(feature = "dashboard")]
        Command::Query { what } => query(what),
        #[cfg(not(feature = "dashboard"))]
        Command::Query { .. } => Err(meshmon_agent::cmd::not_built("meshmon query", "dashboard")),
        #[cfg(feature = "dashboard")]
        Command::Alerts { what } => meshmon_agent::cmd::alerts::alerts(what),
        #[cfg(not(feature = "dashboard"))]
        Command::Alerts { .. } => Err(meshmon_agent::cmd::not_built("meshmon alerts", "dashboard")),
        #[cfg(not(feature = "tui"))]
        Command::Tui { .. } => Err(meshmon_agent::cmd::not_built("meshmon tui", "tui")),
        #[cfg(not(feature = "tui"))]
        Command::Demo { .. } => Err(meshmon_agent::cmd::not_built("meshmon demo", "tui")),
        #[cfg(feature = "tui")]
        Command::Tui { config } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let start_hint = match &cfg.source {
                Some(p) => format!("meshmon agent --config {}", p.display()),
                None => "meshmon agent".to_owned(),
            };
            let target = tui::Target {
                addr: viewer::local_target(cfg.agent.node.listen),
                keyring: cfg.agent.node.keyring.clone(),
                start_hint,
                store: cfg
                    .agent
                    .node
                    .dashboard
                    .then(|| cfg.dashboard.store.path.clone()),
                maintenance: cfg.dashboard.maintenance.clone(),
            };
            let rt = runtime()?;
            rt.block_on(tui::run(target))?;
            Ok(())
        }
        #[cfg(feature = "tui")]
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
        #[cfg(feature = "self-update")]
        Command::SelfUpdate {
            check,
            url,
            config,
            target,
        } => self_update(check, url, config, target),
        #[cfg(not(feature = "self-update"))]
        Command::SelfUpdate { .. } => Err(meshmon_agent::cmd::not_built(
            "meshmon self-update",
            "self-update",
        )),
        Command::Status {
            config,
            format,
            timeout,
        } => {
            let cfg = Config::load(config.as_deref()).map_err(config_failure)?;
            let target = viewer::local_target(cfg.agent.node.listen);
            let rt = runtime()?;
            let status = rt.block_on(viewer::fetch_status(
                &target,
                cfg.agent.node.keyring.clone(),
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

#[cfg(feature = "self-update")]
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
            .agent
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
