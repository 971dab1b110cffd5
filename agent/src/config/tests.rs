//! Config parsing and validation: defaults, error texts, key rules.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("t.toml"))
}

#[test]
fn defaults_are_a_loopback_node() {
    let c = parse("").expect("empty file is valid");
    assert_eq!(c.node.listen, "127.0.0.1:6130".parse().expect("addr"));
    assert!(c.node.keyring.is_null());
    assert_eq!(c.node.max_hops, 8);
    assert_eq!(c.collect.interval, Duration::from_secs(1));
    assert!(!c.node.dashboard);
    assert!(c.prometheus_listen.is_none());
}

#[test]
fn prometheus_listen_is_an_address() {
    let c = parse("[export]\nprometheus_listen = \"127.0.0.1:9464\"\n").expect("valid");
    assert_eq!(
        c.prometheus_listen,
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
        c.collect.gpu,
        "on by default (off by itself without a driver)"
    );
    assert_eq!(c.collect.docker_dir, Some(PathBuf::from("/var/lib/docker")));
    assert_eq!(c.collect.smartctl.as_deref(), Some("smartctl"));
    let c = parse("[collect]\ngpu = false\ndocker_dir = \"\"\nsmartctl = \"\"\n").expect("valid");
    assert!(!c.collect.gpu);
    assert!(c.collect.docker_dir.is_none() && c.collect.smartctl.is_none());
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
    assert_eq!(c.checks.len(), 1);
    let ch = &c.checks[0];
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
    assert_eq!(c.collect.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
    let e = parse("[collect]\nsystemd_units = [\"../x\"]\n").expect_err("bad unit");
    assert_eq!(
        e.to_string(),
        "t.toml: collect.systemd_units: '../x' is not a unit name (expected e.g. 'nginx.service')"
    );
}
