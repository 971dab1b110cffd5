//! Target validation with made-up raw targets and secret files in a temporary directory.

use super::*;

fn err(key: &str, m: String) -> ConfigError {
    ConfigError(format!("t.toml: {key}: {m}"))
}

fn raw(kind: &str) -> RawTarget {
    RawTarget {
        name: "t".into(),
        kind: kind.into(),
        url: "https://example.org/x".into(),
        ..RawTarget::default()
    }
}

fn check(t: &RawTarget) -> Result<Target, String> {
    validate_all(std::slice::from_ref(t), &[], &err)
        .map(|mut v| v.remove(0))
        .map_err(|e| e.0)
}

#[test]
fn secrets_come_from_files_and_api_kinds_default_to_the_public_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("pd");
    std::fs::write(&key, "# routing key\n\n  R0UT1NG  \n").expect("write");
    let t = check(&RawTarget {
        url: String::new(),
        routing_key_file: key.display().to_string(),
        severity: "critical".into(),
        group: "30s".into(),
        ..raw("pagerduty")
    })
    .expect("valid");
    assert_eq!(t.token.as_deref(), Some("R0UT1NG"));
    assert_eq!(t.url, "https://events.pagerduty.com");
    assert_eq!(t.filter.min_severity, Severity::Critical);
    assert_eq!(t.group, Duration::from_secs(30));
    let t = check(&raw("discord")).expect("valid");
    assert_eq!((t.group, t.token), (Duration::ZERO, None));
}

#[test]
fn each_kind_names_what_it_lacks() {
    let e = |t: RawTarget| check(&t).expect_err("invalid");
    assert_eq!(
        e(RawTarget {
            url: String::new(),
            ..raw("slack")
        }),
        "t.toml: notify.target[0].url_file: is missing (kind 'slack' needs url_file or url)"
    );
    assert_eq!(
        e(raw("telegram")),
        "t.toml: notify.target[0].bot_token_file: is missing (kind 'telegram' needs it)"
    );
    assert_eq!(
        e(RawTarget {
            api_key_file: "/x".into(),
            ..raw("slack")
        }),
        "t.toml: notify.target[0].api_key_file: is not used by kind 'slack'"
    );
    assert_eq!(
        e(RawTarget {
            url: "ftp://x".into(),
            ..raw("webhook")
        }),
        "t.toml: notify.target[0].url: is not an http:// or https:// URL"
    );
    assert_eq!(
        e(RawTarget {
            severity: "loud".into(),
            ..raw("webhook")
        }),
        "t.toml: notify.target[0].severity: 'loud' is not a severity (info, warning, critical)"
    );
    let mail = RawTarget {
        url: String::new(),
        smtp_host: "smtp.example.org".into(),
        from: "meshmon <alerts@example.org>".into(),
        to: vec!["not an address".into()],
        ..raw("email")
    };
    assert_eq!(
        e(mail.clone()),
        "t.toml: notify.target[0].to: 'not an address' is not a mail address"
    );
    let ok = check(&RawTarget {
        to: vec!["ops@example.org".into()],
        ..mail
    })
    .expect("valid");
    let smtp = ok.smtp.expect("smtp");
    assert_eq!(
        (smtp.port, smtp.starttls, smtp.credentials),
        (587, true, None)
    );
}

#[test]
fn names_are_unique_among_targets_and_shorthands() {
    let both = [raw("slack"), raw("webhook")];
    let e = validate_all(&both, &[], &err).expect_err("twice");
    assert_eq!(e.0, "t.toml: notify.target[1].name: 't' is used twice");
    let slack = RawTarget {
        name: "slack".into(),
        ..raw("slack")
    };
    assert!(validate_all(&[slack], &["slack".into()], &err).is_err());
}
