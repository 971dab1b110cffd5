//! Helpers for the alerting process tests: a dashboard node's config with notification
//! targets and rules, notification fields, and `meshmon alerts` on a store.

use super::Spec;
use serde_json::Value;
use std::path::Path;

/// A dashboard node's extra config: store in `dir`, notifications to `slack` and/or `hooks`,
/// plus `rules` (TOML `[[alert]]` tables).
pub fn dashboard(name: &str, dir: &Path, slack: Option<&str>, hooks: &[&str], rules: &str) -> Spec {
    let mut s = Spec::new(name);
    let hooks: Vec<String> = hooks.iter().map(|h| format!("\"{h}\"")).collect();
    s.extra = format!(
        "dashboard = true\n\n[store]\npath = \"{}\"\n\n[notify]\nslack_webhook = \"{}\"\nwebhooks = [{}]\n\n{rules}",
        dir.join(format!("{name}.db")).display(),
        slack.unwrap_or(""),
        hooks.join(", ")
    );
    s
}

/// Built-ins that could fire on a busy or full CI machine are switched off, so counts only
/// see the rules under test.
pub const QUIET: &str = "[[alert]]\nname = \"disk-full\"\nenabled = false\n\n[[alert]]\nname = \"inodes-full\"\nenabled = false\n\n";

pub fn rule(v: &Value) -> &str {
    v["rule"].as_str().unwrap_or("")
}

pub fn event(v: &Value) -> &str {
    v["event"].as_str().unwrap_or("")
}

/// Runs `meshmon ARGS --db DB`, which must succeed, and returns its stdout.
fn meshmon_on(db: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshmon"))
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("run meshmon");
    assert!(
        out.status.success(),
        "meshmon {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `meshmon alerts ARGS --db DB` and returns its stdout.
pub fn alerts_cli(db: &Path, args: &[&str]) -> String {
    let args: Vec<&str> = std::iter::once("alerts")
        .chain(args.iter().copied())
        .collect();
    meshmon_on(db, &args)
}

/// `meshmon query alerts --all --format json --db DB`: the rows.
pub fn query_alerts(db: &Path) -> Vec<Value> {
    let out = meshmon_on(db, &["query", "alerts", "--all", "--format", "json"]);
    let rows: Value = serde_json::from_str(&out).expect("json");
    rows.as_array().cloned().unwrap_or_default()
}

/// Two dashboard nodes notifying `hook` with `rules` (`dash-a` notifies: the lower name;
/// `dash-b` dials it) and a host `web1` linked to both.
pub fn two_dashboards(dir: &Path, hook: &str, rules: &str) -> (Spec, Spec, Spec) {
    let mut d1 = dashboard("dash-a", dir, None, &[hook], rules);
    let mut d2 = dashboard("dash-b", dir, None, &[hook], rules);
    let mut w = Spec::new("web1");
    d2.neighbours = vec![d1.port];
    w.neighbours = vec![d1.port, d2.port];
    d1.neighbours = vec![];
    (d1, d2, w)
}
