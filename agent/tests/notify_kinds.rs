//! Every kind of notification target, sent for real: targets come from a config file (as
//! `meshmon agent` reads it), their URLs point at a real HTTP server on 127.0.0.1, and email
//! goes to a real SMTP server (Debian's python3-aiosmtpd). Each receives the firing and the
//! resolved notice of one alert and a group of 200 hosts, and the bodies are checked against
//! what each service documents: required fields and limits, a long host list cut cleanly.

mod common;
mod tls_util;

use common::webhook::{Received, Webhook};
use meshmon_agent::config::Config;
use meshmon_dashboard::alert::engine::EventKind;
use meshmon_dashboard::alert::notify::{self, Notice};
use meshmon_dashboard::alertdb::AlertRecord;
use meshmon_dashboard::config::Target;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const AT: i64 = 1_790_000_000_000;

fn alert(ident: &str, host: &str, resolved: bool) -> AlertRecord {
    AlertRecord {
        id: 1,
        ident: ident.into(),
        rule: "host-down".into(),
        host: host.into(),
        series: String::new(),
        state: if resolved { "resolved" } else { "firing" }.into(),
        severity: "critical".into(),
        started_ms: AT - 60_000,
        fired_ms: Some(AT - 55_000),
        ended_ms: resolved.then_some(AT + 60_000),
        value: None,
        threshold: None,
        reminders: 0,
        acked: false,
        maintenance: false,
    }
}

fn notice(ident: &str, host: &str, event: EventKind, target: &str) -> Notice {
    let resolved = event == EventKind::Resolved;
    let id = format!("{ident}:{}#{target}", event.tag());
    Notice::new(event, alert(ident, host, resolved), None, "dash-a", AT, id)
}

/// The firing and resolved notice of one alert (a host name HTML must escape), and 200
/// hosts' firing notices as one group.
/// An HTTP client as the node makes one (the TLS provider installed); email targets do not
/// use it, but `notify::send` takes one.
fn client() -> reqwest::Client {
    meshmon_agent::http::builder(None).build().expect("client")
}

fn sets(target: &str) -> [Vec<Notice>; 3] {
    let one = "00aa11bb22cc33dd";
    [
        vec![notice(one, "db<01>&", EventKind::Firing, target)],
        vec![notice(one, "db<01>&", EventKind::Resolved, target)],
        (0..200)
            .map(|i| {
                let h = format!("web{i:03}-with-a-rather-long-name.example.org");
                notice(&format!("{i:016x}"), &h, EventKind::Firing, target)
            })
            .collect(),
    ]
}

fn targets(dir: &Path, base: &str) -> Vec<Target> {
    let secret = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{text}\n")).expect("write secret");
        p.display().to_string()
    };
    let mut toml = String::new();
    for kind in [
        "slack",
        "discord",
        "teams",
        "ntfy",
        "webhook",
        "telegram",
        "gotify",
        "pushover",
        "pagerduty",
        "opsgenie",
    ] {
        let url = secret(&format!("{kind}.url"), &format!("{base}/{kind}"));
        let extra = match kind {
            "telegram" => format!(
                "bot_token_file = \"{}\"\nchat_id = \"-100123\"\n",
                secret("tg", "123:ABC")
            ),
            "gotify" => format!("token_file = \"{}\"\n", secret("gotify", "AppTok")),
            "pushover" => format!(
                "token_file = \"{}\"\nuser_key_file = \"{}\"\n",
                secret("po", "apptoken"),
                secret("pu", "userkey")
            ),
            "pagerduty" => format!("routing_key_file = \"{}\"\n", secret("pd", "R0UT1NG")),
            "opsgenie" => format!("api_key_file = \"{}\"\n", secret("og", "g3n1e")),
            _ => String::new(),
        };
        toml.push_str(&format!(
            "[[notify.target]]\nname = \"{kind}\"\nkind = \"{kind}\"\nurl_file = \"{url}\"\n{extra}\n"
        ));
    }
    let path = dir.join("notify.toml");
    let cfg = Config::parse(&toml, &path).expect("valid config");
    cfg.dashboard.notify.targets
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Checks one kind's requests for the three sets.
fn check(kind: &str, got: &[Received]) {
    let bodies: Vec<&Value> = got.iter().map(|r| &r.body).collect();
    match kind {
        "slack" => {
            for b in &bodies {
                assert!(chars(&b["text"]) > 0, "{b}");
                assert_eq!(b["blocks"][0]["type"], "header");
                assert!(chars(&b["blocks"][0]["text"]["text"]) <= 150);
            }
            // mrkdwn's control characters escaped.
            assert_eq!(
                bodies[0]["blocks"][1]["fields"][0]["text"],
                "*Host*\ndb&lt;01&gt;&amp;"
            );
            let section = &bodies[2]["blocks"][1]["text"]["text"];
            assert!(
                chars(section) <= 3000 && section.as_str().is_some_and(|s| s.ends_with("more"))
            );
        }
        "discord" => {
            for b in &bodies {
                let e = &b["embeds"][0];
                let fields = e["fields"].as_array().expect("fields");
                assert!(fields.len() <= 25);
                let total = chars(&e["title"])
                    + chars(&e["description"])
                    + chars(&e["footer"]["text"])
                    + fields
                        .iter()
                        .map(|f| chars(&f["name"]) + chars(&f["value"]))
                        .sum::<usize>();
                assert!(chars(&e["title"]) <= 256 && chars(&e["description"]) <= 4096);
                assert!(total <= 6000, "embed total {total}");
                assert!(e["color"].is_u64());
            }
            // One alert's notices share a title: one thread.
            assert_eq!(
                bodies[0]["embeds"][0]["title"],
                bodies[1]["embeds"][0]["title"]
            );
            let d = bodies[2]["embeds"][0]["description"].as_str().expect("d");
            assert!(d.ends_with("more"), "{d}");
            assert_eq!(bodies[2]["embeds"][0]["title"], "host-down: 200 hosts");
        }
        "teams" => {
            for b in &bodies {
                assert_eq!(b["type"], "message");
                let a = &b["attachments"][0];
                assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
                assert_eq!(a["content"]["type"], "AdaptiveCard");
                assert_eq!(a["content"]["version"], "1.4");
                assert!(
                    a["content"]["body"]
                        .as_array()
                        .is_some_and(|v| !v.is_empty())
                );
            }
        }
        "telegram" => {
            for (r, b) in got.iter().zip(&bodies) {
                assert_eq!(r.path, "/telegram/bot123:ABC/sendMessage");
                assert_eq!(b["chat_id"], "-100123");
                assert_eq!(b["parse_mode"], "HTML");
                assert!(chars(&b["text"]) <= 4096, "{}", chars(&b["text"]));
            }
            let t = bodies[0]["text"].as_str().expect("text");
            assert!(
                t.contains("db&lt;01&gt;&amp;") && !t.contains("db<01>"),
                "{t}"
            );
            assert!(t.contains("#alert_00aa11bb22cc33dd"));
            assert!(
                bodies[2]["text"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("more"))
            );
        }
        "ntfy" => {
            assert_eq!(got[0].header("priority"), Some("5"));
            assert_eq!(got[1].header("priority"), Some("3"));
            assert!(
                got[0]
                    .header("tags")
                    .is_some_and(|t| t.contains("rotating_light"))
            );
            assert!(
                got[1]
                    .header("tags")
                    .is_some_and(|t| t.contains("white_check_mark"))
            );
            for r in got {
                assert!(r.header("title").is_some_and(|t| !t.is_empty()));
                assert!(r.raw.len() <= 4096, "{}", r.raw.len());
            }
            assert!(got[2].raw.ends_with("more"));
        }
        "gotify" => {
            for (r, b) in got.iter().zip(&bodies) {
                assert_eq!(r.path, "/gotify/message");
                assert_eq!(r.header("x-gotify-key"), Some("AppTok"));
                assert!(b["title"].is_string() && b["message"].is_string());
                assert!(b["priority"].is_u64());
            }
        }
        "pushover" => {
            for (r, b) in got.iter().zip(&bodies) {
                assert_eq!(r.path, "/pushover/1/messages.json");
                assert_eq!(b["token"], "apptoken");
                assert_eq!(b["user"], "userkey");
                assert!(chars(&b["title"]) <= 250 && chars(&b["message"]) <= 1024);
            }
        }
        "pagerduty" => {
            // One event per alert: trigger, resolve, then 200 triggers.
            assert_eq!(got.len(), 202);
            for (r, b) in got.iter().zip(&bodies) {
                assert_eq!(r.path, "/pagerduty/v2/enqueue");
                assert_eq!(b["routing_key"], "R0UT1NG");
            }
            assert_eq!(bodies[0]["event_action"], "trigger");
            assert_eq!(bodies[1]["event_action"], "resolve");
            assert_eq!(bodies[0]["dedup_key"], bodies[1]["dedup_key"]);
            let p = &bodies[0]["payload"];
            assert!(chars(&p["summary"]) <= 1024 && chars(&p["summary"]) > 0);
            assert_eq!(p["source"], "db<01>&");
            assert_eq!(p["severity"], "critical");
        }
        "opsgenie" => {
            assert_eq!(got.len(), 202);
            assert_eq!(got[0].path, "/opsgenie/v2/alerts");
            assert_eq!(got[0].header("authorization"), Some("GenieKey g3n1e"));
            assert_eq!(bodies[0]["alias"], "00aa11bb22cc33dd");
            assert!(chars(&bodies[0]["message"]) <= 130);
            assert_eq!(
                got[1].path,
                "/opsgenie/v2/alerts/00aa11bb22cc33dd/close?identifierType=alias"
            );
        }
        "webhook" => {
            assert_eq!(bodies[0]["event"], "firing");
            assert_eq!(bodies[1]["event"], "resolved");
            assert_eq!(bodies[0]["alert_id"], bodies[1]["alert_id"]);
            assert_eq!(bodies[2]["group"], true);
            assert_eq!(bodies[2]["count"], 200);
            assert_eq!(bodies[2]["hosts"].as_array().map(Vec::len), Some(200));
            let text = bodies[2]["text"].as_str().expect("text");
            assert!(
                text.contains("host-down: 200 hosts: web000") && text.ends_with("and 195 more")
            );
        }
        k => panic!("unchecked kind {k}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_http_kind_sends_its_documented_format_within_its_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Webhook::start();
    let base = server.url.trim_end_matches("/hook").to_owned();
    let client = meshmon_agent::http::builder(None).build().expect("client");
    for t in targets(dir.path(), &base) {
        let kind = t.kind.as_str();
        let before = server.received().len();
        for set in sets(&t.label) {
            notify::send(&client, &t, &set).await.expect(kind);
        }
        let got: Vec<Received> = server.received()[before..].to_vec();
        eprintln!("{kind}: {} requests; first: {}", got.len(), got[0].raw);
        check(kind, &got);
    }
}

/// `python3 -m aiosmtpd`-style server that saves every message into a directory.
struct Smtp {
    child: Child,
    port: u16,
}

const SMTP_SERVER: &str = r#"
import os, sys
from aiosmtpd.controller import Controller
out = sys.argv[2]
class Save:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(out))
        with open(os.path.join(out, "%04d.eml" % n), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        return "250 2.0.0 saved"
kw = {}
if len(sys.argv) > 4:
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    kw = dict(tls_context=ctx, require_starttls=True)
c = Controller(Save(), hostname="127.0.0.1", port=int(sys.argv[1]), **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        Smtp::start_with(dir, &[])
    }

    /// A server that requires STARTTLS with this certificate chain and key.
    fn start_tls(dir: &Path, cert: &Path, key: &Path) -> Smtp {
        Smtp::start_with(dir, &[cert, key])
    }

    fn start_with(dir: &Path, tls: &[&Path]) -> Smtp {
        let port = common::free_port();
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .arg(dir)
            .args(tls)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start (python3-aiosmtpd installed?)"
        );
        Smtp { child, port }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, as PEM files:
/// `(ca.pem, server.pem, server.key)` in `dir`.
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let pki = tls_util::test_pki(&["127.0.0.1"], 2);
    let files = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&files.0, pki.ca_pem).expect("ca.pem");
    std::fs::write(&files.1, pki.leaf_pem).expect("server.pem");
    std::fs::write(&files.2, pki.key_pem).expect("server.key");
    files
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim())
}

#[tokio::test(flavor = "current_thread")]
async fn email_goes_out_as_threaded_multipart_over_real_smtp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).expect("mkdir");
    let server = Smtp::start(&mails);
    let toml = |starttls: bool| {
        format!(
            "[[notify.target]]\nname = \"mail\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nport = {}\nstarttls = {starttls}\nfrom = \"meshmon <alerts@example.org>\"\nto = [\"ops@example.org\", \"Oncall <oncall@example.org>\"]\n",
            server.port
        )
    };
    let cfg = Config::parse(&toml(false), &dir.path().join("m.toml")).expect("config");
    let t = &cfg.dashboard.notify.targets[0];
    let [firing, resolved, group] = sets("mail");
    for set in [&firing, &resolved, &group] {
        let r = notify::send(&client(), t, set).await.expect("sent");
        assert!(r.0.starts_with("SMTP 250"), "{}", r.0);
    }
    let mut files: Vec<_> = std::fs::read_dir(&mails)
        .expect("mails")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    let msgs: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    for m in &msgs {
        assert!(
            header(m, "Content-Type").is_some_and(|c| c.starts_with("multipart/alternative")),
            "{m}"
        );
        assert!(m.contains("Content-Type: text/plain") && m.contains("Content-Type: text/html"));
        assert_eq!(header(m, "From"), Some("meshmon <alerts@example.org>"));
        assert!(header(m, "To").is_some_and(|t| t.contains("oncall@example.org")));
    }
    let first_id = header(&msgs[0], "Message-ID").expect("Message-ID");
    assert_eq!(first_id, "<00aa11bb22cc33dd.firing@meshmon>");
    assert_eq!(header(&msgs[1], "In-Reply-To"), Some(first_id));
    assert_eq!(header(&msgs[1], "References"), Some(first_id));
    assert!(header(&msgs[0], "Subject").is_some_and(|s| s.contains("FIRING")));
    assert!(header(&msgs[2], "Subject").is_some_and(|s| s.contains("200 hosts")));
    eprintln!("{}", msgs[1]);

    // A server without STARTTLS: a target that requires it fails, and says why.
    let cfg = Config::parse(&toml(true), &dir.path().join("m.toml")).expect("config");
    let t = &cfg.dashboard.notify.targets[0];
    let e = notify::send(&client(), t, &firing)
        .await
        .expect_err("no STARTTLS");
    eprintln!("starttls = true against a plain server: {}", e.message);
    assert!(
        e.message.contains("127.0.0.1") && e.message.contains("STARTTLS"),
        "{}",
        e.message
    );
    assert_eq!(std::fs::read_dir(&mails).expect("mails").count(), 3);
    std::thread::sleep(Duration::from_millis(10));
}

/// STARTTLS for real: a server that refuses mail before STARTTLS, with a certificate from a
/// private CA. Trusted through `ca_file`, the mail goes out encrypted; without it, the
/// certificate is refused and nothing is sent.
#[tokio::test(flavor = "current_thread")]
async fn email_over_starttls_checks_the_servers_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).expect("mkdir");
    let (ca, cert, key) = test_ca(dir.path());
    let server = Smtp::start_tls(&mails, &cert, &key);
    let toml = |ca: &str| {
        format!(
            "[[notify.target]]\nname = \"mail\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nport = {}\n{ca}from = \"meshmon <alerts@example.org>\"\nto = [\"ops@example.org\"]\n",
            server.port
        )
    };
    let [firing, _, _] = sets("mail");

    let with_ca = format!("ca_file = \"{}\"\n", ca.display());
    let cfg = Config::parse(&toml(&with_ca), &dir.path().join("m.toml")).expect("config");
    let t = &cfg.dashboard.notify.targets[0];
    let r = notify::send(&client(), t, &firing)
        .await
        .expect("sent over STARTTLS");
    assert!(r.0.starts_with("SMTP 250"), "{}", r.0);
    let files: Vec<_> = std::fs::read_dir(&mails).expect("mails").collect();
    assert_eq!(
        files.len(),
        1,
        "the server took the mail only after STARTTLS"
    );

    let cfg = Config::parse(&toml(""), &dir.path().join("m.toml")).expect("config");
    let t = &cfg.dashboard.notify.targets[0];
    let e = notify::send(&client(), t, &firing)
        .await
        .expect_err("a certificate of an unknown CA");
    eprintln!("STARTTLS without ca_file: {}", e.message);
    assert!(
        e.message.contains("127.0.0.1") && e.message.contains("certificate"),
        "{}",
        e.message
    );
    assert_eq!(std::fs::read_dir(&mails).expect("mails").count(), 1);

    // A ca_file that is not a certificate is a config error naming the key.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("junk");
    let bad = format!("ca_file = \"{}\"\n", junk.display());
    let e = Config::parse(&toml(&bad), &dir.path().join("m.toml")).expect_err("bad ca_file");
    let e = e.to_string();
    assert!(
        e.contains("notify.target[0].ca_file") && e.contains("no PEM certificate"),
        "{e}"
    );
}
