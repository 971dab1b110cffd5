//! Alert rules: the built-in rules and the `[[alert]]` tables of the config, validated into
//! [`Rule`]s. A config rule named like a built-in changes only the keys it gives; `enabled =
//! false` switches a rule off.
//!
//! Not here: evaluating rules (the engine) or the `[notify]` targets.

use meshmon_proto::Selector;
use meshmon_proto::units::parse_duration;
use std::time::Duration;

use crate::config::RawAlert;

/// How bad an alert is.
/// Ordered from the least to the most severe (a target's `severity` is a minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The inverse of [`Severity::as_str`].
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    /// The magnitude is above the threshold (`abs>`): a value that may be off either way, such
    /// as `host.clock_offset_ms`.
    AbsGt,
}

impl Op {
    /// `>`, `>=`, `<`, `<=`, `abs>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::AbsGt => "abs>",
        }
    }

    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::AbsGt => value.abs() > threshold,
        }
    }

    /// Whether a firing alert may resolve at `value` given the clear threshold: the value is
    /// strictly on the good side of it.
    pub fn cleared(self, value: f64, clear: f64) -> bool {
        match self {
            Op::Gt | Op::Ge => value < clear,
            Op::Lt | Op::Le => value > clear,
            Op::AbsGt => value.abs() < clear,
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `metric op threshold`, optionally with a clear threshold (hysteresis).
    Threshold {
        metric: Selector,
        op: Op,
        threshold: f64,
        clear: Option<f64>,
    },
    /// The value rose since the previous reading (a counter such as `smart.media_errors`);
    /// resolves after `hold` without a further increase.
    Increase { metric: Selector },
    /// The value moved by more than `min` either way since the previous reading (a boot time);
    /// resolves after `hold` without a further change. The first reading of a series after the
    /// dashboard starts only sets the baseline.
    Changed { metric: Selector, min: f64 },
    /// No frames from the host for three intervals and at least `hold`.
    HostDown,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub condition: Condition,
    /// Glob on host names (`*` any run, `?` one character).
    pub hosts: String,
    /// Tags the host must all have.
    pub tags: Vec<String>,
    pub hold: Duration,
    pub severity: Severity,
    /// Reminder interval while firing; zero = never.
    pub repeat: Duration,
    /// Shipped with meshmon (possibly changed by the config).
    pub builtin: bool,
}

impl Rule {
    /// The metric name a rule's selector needs (`None` for host-down).
    pub fn metric_name(&self) -> Option<&str> {
        match &self.condition {
            Condition::Threshold { metric, .. }
            | Condition::Increase { metric }
            | Condition::Changed { metric, .. } => Some(&metric.name),
            Condition::HostDown => None,
        }
    }

    /// Whether the rule applies to `host` with `tags`.
    pub fn applies_to(&self, host: &str, tags: &[String]) -> bool {
        glob(&self.hosts, host) && self.tags.iter().all(|t| tags.contains(t))
    }
}

/// The built-in rules as raw tables (the same keys a user writes), in the order they are
/// listed in the README and the example configs.
pub fn builtins() -> Vec<RawAlert> {
    let r =
        |name: &str, metric: &str, op: &str, threshold: f64, hold: &str, severity: &str| RawAlert {
            name: name.into(),
            metric: (!metric.is_empty()).then(|| metric.into()),
            hosts: Some("*".into()),
            tags: Some(Vec::new()),
            op: (!op.is_empty()).then(|| op.into()),
            threshold: Some(threshold),
            clear_threshold: None,
            hold: Some(hold.into()),
            severity: Some(severity.into()),
            repeat: Some("4h".into()),
            enabled: true,
        };
    let mut disk = r("disk-full", "disk.used_pct", ">=", 90.0, "1m", "warning");
    disk.clear_threshold = Some(85.0);
    let mut inodes = r(
        "inodes-full",
        "disk.inodes_used_pct",
        ">=",
        90.0,
        "1m",
        "warning",
    );
    inodes.clear_threshold = Some(85.0);
    vec![
        r("host-down", "", "", 0.0, "15s", "critical"),
        r("check-down", "check.up", "<", 1.0, "0s", "critical"),
        r(
            "clock-skew",
            "host.clock_offset_ms",
            "abs>",
            2000.0,
            "30s",
            "warning",
        ),
        r(
            "duplicate-name",
            "mesh.name_conflicts",
            "increase",
            0.0,
            "30s",
            "critical",
        ),
        r("smart-failed", "smart.passed", "<", 1.0, "0s", "critical"),
        r(
            "smart-critical-warning",
            "smart.critical_warning",
            ">",
            0.0,
            "0s",
            "critical",
        ),
        r(
            "smart-media-errors",
            "smart.media_errors",
            "increase",
            0.0,
            "24h",
            "critical",
        ),
        r(
            "smart-worn",
            "smart.percentage_used",
            ">=",
            90.0,
            "0s",
            "warning",
        ),
        disk,
        inodes,
        // OOM kills (issue 16): fires on a kill, resolves after 10 minutes without another.
        r(
            "oom-kill",
            "mem.oom_kills",
            "increase",
            0.0,
            "10m",
            "warning",
        ),
        // Containers (collect.containers): a restart fires at once and stays firing until
        // 10 minutes pass without another; a failing healthcheck for 30 s.
        r(
            "container-restarting",
            "container.restarts",
            "increase",
            0.0,
            "10m",
            "warning",
        ),
        r(
            "container-unhealthy",
            "container.healthy",
            "<",
            1.0,
            "30s",
            "warning",
        ),
        // Processes and reboots (issue 16).
        r("process-missing", "proc.count", "<", 1.0, "0s", "warning"),
        {
            let mut reboot = r(
                "host-rebooted",
                "host.boot_time_s",
                "changed",
                30.0,
                "5m",
                "info",
            );
            reboot.repeat = Some("0s".into());
            reboot
        },
    ]
}

/// Merges the config's rules over the built-ins and validates them. `err(key, message)`
/// formats an error for `alert[i].key`.
pub fn compile(
    raw: &[RawAlert],
    err: &dyn Fn(&str, String) -> String,
) -> Result<Vec<Rule>, String> {
    let mut merged: Vec<(Option<usize>, RawAlert)> =
        builtins().into_iter().map(|b| (None, b)).collect();
    let mut seen = std::collections::HashSet::new();
    for (i, a) in raw.iter().enumerate() {
        if a.name.trim().is_empty() {
            return Err(err(&format!("alert[{i}].name"), "must not be empty".into()));
        }
        if !seen.insert(a.name.clone()) {
            return Err(err(
                &format!("alert[{i}].name"),
                format!("'{}' is used by an earlier rule", a.name),
            ));
        }
        match merged.iter_mut().find(|(_, b)| b.name == a.name) {
            Some((idx, b)) => {
                *idx = Some(i);
                overlay(b, a);
            }
            None => merged.push((Some(i), a.clone())),
        }
    }
    let names: Vec<String> = builtins().into_iter().map(|b| b.name).collect();
    let mut rules = Vec::new();
    for (idx, a) in merged {
        let key = |k: &str| match idx {
            Some(i) => format!("alert[{i}].{k}"),
            None => format!("built-in alert '{}'.{k}", a.name),
        };
        let rule = one(&a, names.contains(&a.name), &key, err)?;
        if a.enabled {
            rules.push(rule);
        }
    }
    Ok(rules)
}

/// The keys `a` gives replace `b`'s.
fn overlay(b: &mut RawAlert, a: &RawAlert) {
    macro_rules! take {
        ($($f:ident),*) => { $( if a.$f.is_some() { b.$f = a.$f.clone(); } )* };
    }
    take!(
        metric,
        hosts,
        tags,
        op,
        threshold,
        clear_threshold,
        hold,
        severity,
        repeat
    );
    b.enabled = a.enabled;
}

fn one(
    a: &RawAlert,
    builtin: bool,
    key: &dyn Fn(&str) -> String,
    err: &dyn Fn(&str, String) -> String,
) -> Result<Rule, String> {
    let dur = |k: &str, v: &Option<String>, default: &str| {
        parse_duration(v.as_deref().unwrap_or(default)).map_err(|m| err(&key(k), m))
    };
    let hold = dur("for", &a.hold, "0s")?;
    let repeat = dur("repeat", &a.repeat, "4h")?;
    let severity = match a.severity.as_deref().unwrap_or("warning") {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        other => {
            return Err(err(
                &key("severity"),
                format!("'{other}' is not one of info, warning, critical"),
            ));
        }
    };
    let condition = if builtin && a.name == "host-down" {
        if a.metric.is_some() {
            return Err(err(
                &key("metric"),
                "host-down watches frames, not a metric".into(),
            ));
        }
        Condition::HostDown
    } else {
        let Some(m) = &a.metric else {
            return Err(err(&key("metric"), "is required".into()));
        };
        let metric = Selector::parse(m).map_err(|e| err(&key("metric"), e))?;
        let Some(op) = a.op.as_deref() else {
            return Err(err(
                &key("op"),
                "is required (> >= < <= abs> increase changed)".into(),
            ));
        };
        if op == "increase" {
            Condition::Increase { metric }
        } else if op == "changed" {
            let min = a.threshold.unwrap_or(0.0);
            if !min.is_finite() || min < 0.0 {
                return Err(err(
                    &key("threshold"),
                    format!("'{min}' must be a finite number >= 0 for op 'changed'"),
                ));
            }
            Condition::Changed { metric, min }
        } else {
            let op = match op {
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                "<=" => Op::Le,
                "abs>" => Op::AbsGt,
                other => {
                    return Err(err(
                        &key("op"),
                        format!("'{other}' is not one of > >= < <= abs> increase changed"),
                    ));
                }
            };
            let Some(threshold) = a.threshold else {
                return Err(err(&key("threshold"), "is required".into()));
            };
            if !threshold.is_finite() {
                return Err(err(&key("threshold"), "must be a finite number".into()));
            }
            let clear = a.clear_threshold;
            if let Some(c) = clear {
                let ok = c.is_finite()
                    && match op {
                        Op::Gt | Op::Ge | Op::AbsGt => c <= threshold,
                        Op::Lt | Op::Le => c >= threshold,
                    };
                if !ok {
                    let side = if matches!(op, Op::Gt | Op::Ge | Op::AbsGt) {
                        "at or below"
                    } else {
                        "at or above"
                    };
                    return Err(err(
                        &key("clear_threshold"),
                        format!(
                            "'{c}' must be {side} the threshold ({threshold}) for op '{op}'",
                            op = op.as_str()
                        ),
                    ));
                }
            }
            Condition::Threshold {
                metric,
                op,
                threshold,
                clear,
            }
        }
    };
    Ok(Rule {
        name: a.name.clone(),
        condition,
        hosts: a.hosts.clone().unwrap_or_else(|| "*".into()),
        tags: a.tags.clone().unwrap_or_default(),
        hold,
        severity,
        repeat,
        builtin,
    })
}

/// Shell-style glob: `*` matches any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, m: String) -> String {
        format!("f: {key}: {m}")
    }

    fn raw(name: &str) -> RawAlert {
        RawAlert {
            name: name.into(),
            metric: None,
            hosts: None,
            tags: None,
            op: None,
            threshold: None,
            clear_threshold: None,
            hold: None,
            severity: None,
            repeat: None,
            enabled: true,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("web*", "web01"));
        assert!(!glob("web*", "db01"));
        assert!(glob("w?b-*-1", "web-x-1"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("*a*b", "xxaxxbxx"));
        assert!(glob("", ""));
    }

    #[test]
    fn builtins_are_on_by_default_and_can_be_changed_or_switched_off() {
        let rules = compile(&[], &e).expect("builtins");
        assert_eq!(rules.len(), 15);
        assert!(rules.iter().any(|r| r.condition == Condition::HostDown));
        let mut disk = raw("disk-full");
        disk.threshold = Some(95.0);
        let mut off = raw("smart-worn");
        off.enabled = false;
        let rules = compile(&[disk, off], &e).expect("changed");
        assert_eq!(rules.len(), 14);
        let d = rules.iter().find(|r| r.name == "disk-full").expect("disk");
        assert!(matches!(
            d.condition,
            Condition::Threshold {
                threshold: 95.0,
                clear: Some(85.0),
                ..
            }
        ));
        assert_eq!(d.hold, Duration::from_secs(60), "kept from the built-in");
    }

    #[test]
    fn clock_skew_fires_either_way_and_duplicate_name_on_a_rise() {
        let rules = compile(&[], &e).expect("builtins");
        let skew = rules.iter().find(|r| r.name == "clock-skew").expect("skew");
        let Condition::Threshold { op, threshold, .. } = &skew.condition else {
            panic!("threshold rule");
        };
        assert!(op.holds(-600_000.0, *threshold) && op.holds(2_001.0, *threshold));
        assert!(!op.holds(-1_999.0, *threshold) && !op.holds(2_000.0, *threshold));
        let dup = rules
            .iter()
            .find(|r| r.name == "duplicate-name")
            .expect("dup");
        assert!(
            matches!(&dup.condition, Condition::Increase { metric } if metric.name == "mesh.name_conflicts")
        );
    }

    #[test]
    fn user_rules_need_metric_op_threshold_and_a_sane_clear() {
        let r = compile(&[raw("x")], &e).expect_err("no metric");
        assert_eq!(r, "f: alert[0].metric: is required");
        let mut a = raw("x");
        a.metric = Some("cpu.usage_pct".into());
        a.op = Some(">".into());
        a.threshold = Some(90.0);
        a.clear_threshold = Some(95.0);
        let r = compile(&[a.clone()], &e).expect_err("clear above");
        assert!(
            r.starts_with("f: alert[0].clear_threshold: '95' must be at or below"),
            "{r}"
        );
        a.clear_threshold = Some(80.0);
        assert!(
            compile(&[a.clone(), a], &e)
                .expect_err("dup")
                .contains("earlier rule")
        );
    }
}
