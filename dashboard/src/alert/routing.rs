//! Which targets take an alert (a target's `severity`, `rules`, `hosts` and `tags` filters),
//! and the key that groups queued notifications: one target, one rule, one kind of event
//! (firing, reminder, resolved). Without I/O; the machine uses both.
//!
//! Not here: the grouping window's timing (the machine's dispatch) or rendering (`notify`).

use super::rules::{Severity, glob};
use crate::alertdb::AlertRecord;
use crate::config::Filter;

/// Notices in one grouped message at most; more wait for the next.
pub const GROUP_MAX: usize = 500;

/// Whether a target with `filter` takes `alert` of a host with `tags`.
pub fn takes(filter: &Filter, alert: &AlertRecord, tags: &[String]) -> bool {
    let severity = Severity::parse(&alert.severity).unwrap_or(Severity::Info);
    severity >= filter.min_severity
        && (filter.rules.is_empty() || filter.rules.iter().any(|g| glob(g, &alert.rule)))
        && (filter.hosts.is_empty() || filter.hosts.iter().any(|g| glob(g, &alert.host)))
        && filter.tags.iter().all(|t| tags.contains(t))
}

/// The kind of event of a notification id (`<ident>:<event>#<target>`): `firing`,
/// `reminder` (any of them) or `resolved`.
pub fn event_class(notification: &str) -> &str {
    let tag = notification
        .split_once(':')
        .map_or("", |(_, rest)| rest.split('#').next().unwrap_or(""));
    if tag.starts_with("reminder") {
        "reminder"
    } else {
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rule: &str, host: &str, severity: &str) -> AlertRecord {
        AlertRecord {
            id: 1,
            ident: "x".into(),
            rule: rule.into(),
            host: host.into(),
            series: String::new(),
            state: "firing".into(),
            severity: severity.into(),
            started_ms: 0,
            fired_ms: None,
            ended_ms: None,
            value: None,
            threshold: None,
            reminders: 0,
            acked: false,
            maintenance: false,
        }
    }

    #[test]
    fn filters_by_severity_rule_host_and_tags() {
        let f = Filter {
            min_severity: Severity::Warning,
            rules: vec!["disk-*".into()],
            hosts: vec!["web*".into(), "db01".into()],
            tags: vec!["prod".into()],
        };
        let prod = ["prod".to_owned(), "gpu".to_owned()];
        assert!(takes(&f, &rec("disk-full", "web03", "critical"), &prod));
        assert!(takes(&f, &rec("disk-full", "db01", "warning"), &prod));
        assert!(!takes(&f, &rec("disk-full", "web03", "info"), &prod));
        assert!(!takes(&f, &rec("cpu-hot", "web03", "critical"), &prod));
        assert!(!takes(&f, &rec("disk-full", "db02", "critical"), &prod));
        assert!(!takes(&f, &rec("disk-full", "web03", "critical"), &[]));
        assert!(takes(&Filter::default(), &rec("a", "b", "info"), &[]));
    }

    #[test]
    fn event_classes() {
        assert_eq!(event_class("abc:firing#slack"), "firing");
        assert_eq!(event_class("abc:reminder-3#ops"), "reminder");
        assert_eq!(event_class("abc:resolved#webhook-0011"), "resolved");
    }
}
