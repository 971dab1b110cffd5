//! Config parsing and validation: defaults, error texts, key rules.

use super::*;
use std::time::Duration;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("t.toml"))
}

#[test]
fn defaults_are_a_loopback_node() {
    let c = parse("").expect("empty file is valid");
    assert_eq!(c.agent.node.listen, "127.0.0.1:6130".parse().expect("addr"));
    assert!(c.agent.node.keyring.is_null());
    assert_eq!(c.agent.node.max_hops, 32);
    assert_eq!(c.agent.collect.interval, Duration::from_secs(1));
    assert!(!c.agent.node.dashboard);
    assert!(c.agent.prometheus_listen.is_none());
}

#[test]
fn prometheus_listen_is_an_address() {
    let c = parse("[export]\nprometheus_listen = \"127.0.0.1:9464\"\n").expect("valid");
    assert_eq!(
        c.agent.prometheus_listen,
        Some("127.0.0.1:9464".parse().expect("addr"))
    );
    let e = parse("[export]\nprometheus_listen = \"localhost\"\n").expect_err("bad");
    assert_eq!(
        e.to_string(),
        "t.toml: export.prometheus_listen: 'localhost' is not an address (expected host:port)"
    );
}

#[test]
fn errors_name_file_key_and_value() {
    let e = parse("[node]\nlisten = \"abc\"\n").expect_err("bad listen");
    assert_eq!(
        e.to_string(),
        "t.toml: node.listen: 'abc' is not an address (expected host:port)"
    );
    let e = parse("[node]\nlisen = \"x\"\n").expect_err("unknown key");
    assert!(
        e.to_string()
            .starts_with("t.toml: node.lisen: unknown field"),
        "{e}"
    );
    let e = parse("[collect]\ninterval = \"1 sec\"\n").expect_err("bad duration");
    assert!(
        e.to_string()
            .starts_with("t.toml: collect.interval: '1 sec'"),
        "{e}"
    );
    let e = parse("[node]\nneighbours = [\"nohost\"]\n").expect_err("bad neighbour");
    assert!(e.to_string().contains("node.neighbours: 'nohost'"), "{e}");
}

#[test]
fn public_listen_needs_a_key() {
    let e = parse("[node]\nlisten = \"0.0.0.0:6130\"\n").expect_err("no key");
    assert!(e.to_string().contains("meshmon keygen"), "{e}");
}

#[cfg(feature = "dashboard")]
#[test]
fn alert_rules_are_checked() {
    let ok = "[[alert]]\nname = \"x\"\nmetric = \"cpu.usage_pct\"\nop = \">\"\nthreshold = 90.0\n";
    assert!(parse(ok).is_ok());
    let e = parse(&ok.replace("\">\"", "\"=>\"")).expect_err("bad op");
    assert!(e.to_string().contains("alert[0].op: '=>'"), "{e}");
}

#[test]
fn gpu_docker_and_smart_keys() {
    let c = parse("").expect("valid");
    assert!(
        c.agent.collect.gpu,
        "on by default (off by itself without a driver)"
    );
    assert_eq!(
        c.agent.collect.docker_dir,
        Some(PathBuf::from("/var/lib/docker"))
    );
    assert_eq!(c.agent.collect.smartctl.as_deref(), Some("smartctl"));
    let c = parse("[collect]\ngpu = false\ndocker_dir = \"\"\nsmartctl = \"\"\n").expect("valid");
    assert!(!c.agent.collect.gpu);
    assert!(c.agent.collect.docker_dir.is_none() && c.agent.collect.smartctl.is_none());
    let e = parse("[collect]\ndocker_interval = \"500ms\"\n").expect_err("too short");
    assert_eq!(
        e.to_string(),
        "t.toml: collect.docker_interval: '500ms' is below the minimum of 1s"
    );
}

#[test]
fn checks_are_validated() {
    let ok = "[[check]]\nname = \"web\"\nurl = \"https://example.org/\"\n";
    let c = parse(ok).expect("valid");
    assert_eq!(c.agent.checks.len(), 1);
    let ch = &c.agent.checks[0];
    assert_eq!(ch.interval, Duration::from_secs(30));
    assert_eq!(ch.timeout, Duration::from_secs(5));
    assert_eq!(ch.expect_status, 200);
    assert!(!ch.insecure && ch.ca_file.is_none() && ch.body_contains.is_none());
    let e = parse(&format!("{ok}{ok}")).expect_err("duplicate");
    assert_eq!(
        e.to_string(),
        "t.toml: check[1].name: 'web' is used by another check"
    );
    let e = parse(&format!("{ok}interval = \"50ms\"\n")).expect_err("too fast");
    assert_eq!(
        e.to_string(),
        "t.toml: check[0].interval: '50ms' is below 100ms"
    );
    let e = parse(&format!("{ok}ca_file = \"/nonexistent/ca.pem\"\n")).expect_err("no ca");
    assert!(
        e.to_string()
            .starts_with("t.toml: check[0].ca_file: '/nonexistent/ca.pem': "),
        "{e}"
    );
}

#[test]
fn systemd_units_and_cgroup_root() {
    let c = parse("[collect]\nsystemd_units = [\"nginx.service\"]\n").expect("valid");
    assert_eq!(c.agent.collect.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
    let e = parse("[collect]\nsystemd_units = [\"../x\"]\n").expect_err("bad unit");
    assert_eq!(
        e.to_string(),
        "t.toml: collect.systemd_units: '../x' is not a unit name (expected e.g. 'nginx.service')"
    );
}

#[cfg(feature = "dashboard")]
/// `[notify]` text naming `key = "<file holding body>"`; the tempdir must outlive the parse.
fn notify_with_file(key: &str, body: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("urls");
    std::fs::write(&file, body).expect("write");
    let toml = format!("[notify]\n{key} = \"{}\"\n", file.display());
    (dir, file, toml)
}

#[cfg(feature = "dashboard")]
#[test]
fn webhook_urls_are_read_from_files() {
    let slack = "https://hooks.slack.com/services/T0/B0/SECRET";
    let (_d, _, toml) = notify_with_file("slack_webhook_file", &format!("\n  {slack}\n"));
    let c = parse(&toml).expect("valid");
    assert_eq!(c.dashboard.notify.slack_webhook.as_deref(), Some(slack));

    let body = "# ops\nhttps://a.example.org/x\n\nhttp://b.example.org/y?t=1\n";
    let (_d, _, toml) = notify_with_file("webhooks_file", body);
    let c = parse(&format!(
        "{toml}webhooks = [\"https://c.example.org/\", \"https://a.example.org/x\"]\n"
    ))
    .expect("valid");
    assert_eq!(
        c.dashboard.notify.webhooks,
        [
            "https://c.example.org/",
            "https://a.example.org/x",
            "http://b.example.org/y?t=1"
        ],
        "the file's URLs follow the inline ones, duplicates dropped"
    );
    let c = parse("[notify]\nslack_webhook_file = \"\"\nwebhooks_file = \"\"\n").expect("valid");
    assert!(c.dashboard.notify.slack_webhook.is_none() && c.dashboard.notify.webhooks.is_empty());
}

#[cfg(feature = "dashboard")]
#[test]
fn webhook_file_errors_name_key_and_path() {
    let e = parse("[notify]\nslack_webhook_file = \"/nonexistent/slack\"\n").expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("t.toml: notify.slack_webhook_file: '/nonexistent/slack': "),
        "{e}"
    );
    let (_d, file, toml) = notify_with_file(
        "webhooks_file",
        "https://ok.example.org/\nhooks.example.org/SECRET\n",
    );
    let e = parse(&toml).expect_err("bad URL");
    assert_eq!(
        e.to_string(),
        format!(
            "t.toml: notify.webhooks_file: '{}': line 2 is not an http:// or https:// URL",
            file.display()
        ),
        "names the line, never prints the (secret) text"
    );
    let (_d, file, toml) = notify_with_file("slack_webhook_file", "# nothing yet\n\n");
    let e = parse(&toml).expect_err("empty");
    assert_eq!(
        e.to_string(),
        format!(
            "t.toml: notify.slack_webhook_file: '{}': holds no URL",
            file.display()
        )
    );
    let (_d, _, toml) = notify_with_file("slack_webhook_file", "https://hooks.slack.com/x\n");
    let e = parse(&format!(
        "{toml}slack_webhook = \"https://hooks.slack.com/y\"\n"
    ))
    .expect_err("both");
    assert_eq!(
        e.to_string(),
        "t.toml: notify.slack_webhook_file: is set together with notify.slack_webhook; keep only one"
    );
}

#[cfg(feature = "dashboard")]
#[test]
fn effective_config_never_prints_webhook_urls() {
    let (_d, file, toml) = notify_with_file("webhooks_file", "https://file.example.org/SECRET3\n");
    let c = parse(&format!(
        "{toml}slack_webhook = \"https://hooks.slack.com/services/T0/B0/SECRET1\"\n\
         webhooks = [\"http://user:SECRET2@hooks.example.org:8080?token=SECRET4\", \"https://bare.example.org\"]\n"
    ))
    .expect("valid");
    let out = c.effective_toml();
    assert!(!out.contains("SECRET"), "{out}");
    assert!(
        out.contains("slack_webhook = \"https://hooks.slack.com/…\""),
        "{out}"
    );
    assert!(
        out.contains("\"http://hooks.example.org:8080/…\"")
            && out.contains("\"https://bare.example.org\""),
        "{out}"
    );
    assert!(
        out.contains(&format!("webhooks_file = \"{}\"", file.display())),
        "{out}"
    );
    assert_eq!(redact_url(""), "");
    assert_eq!(
        redact_url("https://h.example.org/"),
        "https://h.example.org/…"
    );
    assert_eq!(
        redact_url("https://h.example.org#frag"),
        "https://h.example.org/…"
    );
}

#[test]
fn an_unknown_table_is_named_as_a_table_not_as_a_key_of_the_one_before() {
    let e = parse("[node]\nname = \"a\"\n[graphs]\nport = 1\n").expect_err("unknown table");
    assert!(
        e.to_string().starts_with("t.toml: 'graphs': unknown table"),
        "{e}"
    );
    assert!(!e.to_string().contains("node.graphs"), "{e}");
}

#[test]
fn every_section_reports_its_error() {
    let text = "[node]\nlisen = \"x\"\n[collect]\ninterval = \"1 sec\"\n[update]\nauto = true\n";
    let e = parse(text).expect_err("bad");
    let lines: Vec<&str> = e.0.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t.toml: node.lisen: unknown field")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t.toml: collect.interval: '1 sec'")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t.toml: update.auto: is true")),
        "{e}"
    );
}

#[test]
fn neighbors_is_an_alias_of_neighbours() {
    let c = parse("[node]\nneighbors = [\"127.0.0.1:7001\"]\n").expect("valid");
    assert_eq!(c.agent.node.neighbours, ["127.0.0.1:7001"]);
}

#[test]
fn a_key_file_others_can_read_is_refused_with_the_chmod() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("mesh.key");
    let k = meshmon_proto::Key::generate().expect("rng");
    std::fs::write(&key, format!("{}\n", k.to_base64())).expect("write");
    let text = format!("[node]\nkey_file = \"{}\"\n", key.display());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = parse(&text).expect_err("0644");
    assert!(
        e.to_string().contains("permissions 0644 are too open")
            && e.to_string()
                .contains(&format!("run 'chmod 600 {}'", key.display())),
        "{e}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let c = parse(&text).expect("0600 is fine");
    assert!(!c.agent.node.keyring.is_null());
}

#[cfg(not(feature = "dashboard"))]
#[test]
fn a_build_without_the_dashboard_refuses_the_role_and_keeps_its_sections() {
    let e = parse("[node]\ndashboard = true\n").expect_err("no dashboard");
    assert!(
        e.to_string()
            .contains("node.dashboard: is true but this meshmon was built without the dashboard"),
        "{e}"
    );
    parse("[store]\nretention = \"3d\"\n[[alert]]\nname = \"x\"\n").expect("kept, unused");
}

#[cfg(feature = "dashboard")]
#[test]
fn remote_write_is_validated_and_reads_its_secret_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let c = parse("").expect("valid");
    assert!(c.agent.remote_write.is_none(), "off by default");
    let dash = "[node]\ndashboard = true\n[export]\n";
    let c = parse(&format!(
        "{dash}remote_write_url = \"http://127.0.0.1:9090/api/v1/write\"\n"
    ))
    .expect("valid");
    let r = c.agent.remote_write.expect("on");
    assert_eq!(r.interval, Duration::from_secs(10));
    assert_eq!(r.auth, RemoteAuth::None);
    assert_eq!(r.queue, 200_000);

    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "\n s3cret \n").expect("write");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let basic = dir.path().join("basic");
    std::fs::write(&basic, "meshmon:pa:ss\n").expect("write");
    std::fs::set_permissions(&basic, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let url = "remote_write_url = \"https://prom.example/api/v1/write\"\n";
    let c = parse(&format!(
        "{dash}{url}remote_write_bearer_file = \"{}\"\nremote_write_interval = \"2s\"\n",
        token.display()
    ))
    .expect("valid");
    let r = c.agent.remote_write.expect("on");
    assert_eq!(r.auth, RemoteAuth::Bearer("s3cret".into()));
    assert_eq!(r.interval, Duration::from_secs(2));
    assert!(
        !format!("{r:?}").contains("s3cret"),
        "Debug hides the token"
    );

    let e = parse(&format!(
        "{dash}{url}remote_write_basic_auth_file = \"{}\"\n",
        basic.display()
    ))
    .expect_err("0640");
    assert!(
        e.to_string()
            .starts_with("t.toml: export.remote_write_basic_auth_file: ")
            && e.to_string().contains("permissions 0640 are too open"),
        "{e}"
    );
    std::fs::set_permissions(&basic, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let c = parse(&format!(
        "{dash}{url}remote_write_basic_auth_file = \"{}\"\n",
        basic.display()
    ))
    .expect("valid");
    assert_eq!(
        c.agent.remote_write.expect("on").auth,
        RemoteAuth::Basic {
            user: "meshmon".into(),
            password: "pa:ss".into()
        }
    );

    for (text, want) in [
        (
            format!("{dash}remote_write_url = \"prom:9090\"\n"),
            "t.toml: export.remote_write_url: 'prom:9090' is not an http:// or https:// URL",
        ),
        (
            format!("{dash}{url}remote_write_interval = \"100ms\"\n"),
            "t.toml: export.remote_write_interval: '100ms' is out of range (1s to 5m)",
        ),
        (
            format!("{dash}{url}remote_write_interval = \"often\"\n"),
            "t.toml: export.remote_write_interval: 'often' is not a duration (expected e.g. '500ms', '30s', '5m', '12h', '7d')",
        ),
        (
            format!("{dash}remote_write_bearer_file = \"{}\"\n", token.display()),
            "t.toml: export.remote_write_bearer_file: is set but export.remote_write_url is empty",
        ),
        (
            format!(
                "{dash}{url}remote_write_bearer_file = \"{}\"\nremote_write_basic_auth_file = \"{}\"\n",
                token.display(),
                basic.display()
            ),
            "t.toml: export.remote_write_basic_auth_file: is set together with export.remote_write_bearer_file; keep only one",
        ),
        (
            format!("[export]\n{url}"),
            "t.toml: export.remote_write_url: is set but node.dashboard is false (remote write runs on dashboard nodes, from their store)",
        ),
        (
            format!("{dash}{url}remote_write_queue = 10\n"),
            "t.toml: export.remote_write_queue: 10 is too small (at least 1000 samples)",
        ),
    ] {
        let e = parse(&text).expect_err(want);
        assert_eq!(e.to_string(), want);
    }
    let missing = format!(
        "{dash}{url}remote_write_bearer_file = \"{}\"\n",
        dir.path().join("nope").display()
    );
    let e = parse(&missing).expect_err("missing file");
    assert!(
        e.to_string()
            .starts_with("t.toml: export.remote_write_bearer_file: '"),
        "{e}"
    );
}
