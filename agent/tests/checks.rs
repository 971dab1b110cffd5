//! HTTP(S) checks against real local servers: a plain HTTP server that is stopped and started
//! again (up, down after exactly 3 failures, up after 2 successes), the same through the
//! node's check task and its published metrics, and a TLS server with a 10-day certificate
//! signed by a test CA given in `ca_file` (days left, and refusal without the CA).

mod tls_util;

use meshmon_agent::check::{self, probe, state};
use meshmon_agent::collect::Extras;
use meshmon_agent::config::CheckConfig;
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A one-thread HTTP/1.1 server on 127.0.0.1 answering every request with 200 "ok" (or 500
/// while `fail` is set), counting each kind of answer; `stop` closes the listening socket.
struct Server {
    addr: SocketAddr,
    fail: Arc<AtomicBool>,
    oks: Arc<AtomicUsize>,
    fails: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(addr: &str) -> Server {
        let listener = TcpListener::bind(addr).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let fail = Arc::new(AtomicBool::new(false));
        let oks = Arc::new(AtomicUsize::new(0));
        let fails = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, ok_n, fail_n, s) = (fail.clone(), oks.clone(), fails.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let status = if f.load(Ordering::SeqCst) {
                            fail_n.fetch_add(1, Ordering::SeqCst);
                            "500 Internal Server Error"
                        } else {
                            ok_n.fetch_add(1, Ordering::SeqCst);
                            "200 OK"
                        };
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {status}\r\nContent-Length: 11\r\nConnection: close\r\n\r\nstatus: ok\n"
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            addr,
            fail,
            oks,
            fails,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(name: &str, url: String, interval: Duration) -> CheckConfig {
    CheckConfig {
        name: name.into(),
        url,
        interval,
        timeout: Duration::from_secs(2),
        expect_status: 200,
        body_contains: Some("ok".into()),
        ca_file: None,
        insecure: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_down_after_three_failures_and_up_after_two_successes() {
    let mut server = Server::start("127.0.0.1:0");
    let addr = server.addr;
    let c = check(
        "web",
        format!("http://{addr}/healthz"),
        Duration::from_secs(1),
    );
    let client = probe::client(&c).expect("client");
    let mut st = state::State::new();

    let p = probe::probe(&client, &c).await;
    assert_eq!(p.failure, None);
    assert_eq!(p.status, Some(200));
    assert!(p.latency_ms.is_some_and(|ms| ms > 0.0 && ms < 2000.0));
    assert_eq!(p.cert_days_left, None, "plain http has no certificate");
    assert_eq!(st.observe(true), Some(state::Health::Up));

    server.stop();
    for i in 1..=3 {
        let p = probe::probe(&client, &c).await;
        let reason = p.failure.clone().expect("a stopped server fails");
        assert!(reason.starts_with("connect: "), "{reason}");
        assert_eq!((p.status, p.latency_ms), (None, None));
        let change = st.observe(false);
        if i < 3 {
            assert_eq!(change, None, "failure {i} must not take it down");
        } else {
            assert_eq!(change, Some(state::Health::Down));
        }
    }

    let _server = Server::start(&addr.to_string());
    assert_eq!(probe::probe(&client, &c).await.failure, None);
    assert_eq!(st.observe(true), None, "one success is not enough");
    assert_eq!(probe::probe(&client, &c).await.failure, None);
    assert_eq!(st.observe(true), Some(state::Health::Up));

    // Wrong status and missing text are failures too.
    let mut wrong = c.clone();
    wrong.expect_status = 204;
    let p = probe::probe(&client, &wrong).await;
    assert_eq!(p.failure.as_deref(), Some("HTTP status 200, expected 204"));
    assert_eq!(p.status, Some(200));
    let mut text = c.clone();
    text.body_contains = Some("healthy".into());
    let p = probe::probe(&client, &text).await;
    assert!(
        p.failure
            .as_deref()
            .is_some_and(|f| f.contains("does not contain 'healthy'")),
        "{p:?}"
    );
}

fn up_value(extras: &Extras) -> Option<f64> {
    extras
        .get(&check::source("web"))?
        .into_iter()
        .find(|(k, _)| *k == SeriesKey::labelled(Metric::CheckUp, "web"))
        .map(|(_, v)| v)
}

/// Polls until `check.up` is `want`; returns the server's (200, 500) answer counts then.
async fn wait_up(extras: &Extras, server: &Server, want: f64) -> (usize, usize) {
    let start = Instant::now();
    loop {
        if up_value(extras) == Some(want) {
            return (
                server.oks.load(Ordering::SeqCst),
                server.fails.load(Ordering::SeqCst),
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "check.up never became {want}: {:?}",
            extras.get(&check::source("web"))
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_task_publishes_up_down_and_up_again() {
    let server = Server::start("127.0.0.1:0");
    let c = check(
        "web",
        format!("http://{}/", server.addr),
        Duration::from_millis(400),
    );
    let extras = Extras::default();
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    check::start(std::slice::from_ref(&c), &extras, &tracker, &shutdown);

    wait_up(&extras, &server, 1.0).await;
    let vals = extras.get(&check::source("web")).expect("published");
    let status = vals
        .iter()
        .find(|(k, _)| *k == SeriesKey::labelled(Metric::CheckStatus, "web"));
    assert_eq!(status.map(|s| s.1), Some(200.0));

    // Polled every 5 ms, far more often than the 400 ms between requests.
    server.fail.store(true, Ordering::SeqCst);
    let (_, fails) = wait_up(&extras, &server, 0.0).await;
    assert_eq!(fails, 3, "down after exactly 3 failed requests");

    let oks_before = server.oks.load(Ordering::SeqCst);
    server.fail.store(false, Ordering::SeqCst);
    let (oks, _) = wait_up(&extras, &server, 1.0).await;
    assert_eq!(oks - oks_before, 2, "up after exactly 2 good requests");

    shutdown.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(3), tracker.wait())
        .await
        .expect("check task stops on shutdown");
}

/// A CA and a leaf for `localhost`/127.0.0.1 valid for 10 days from now, signed by it.
/// Returns (CA PEM, leaf DER, leaf key DER).
fn test_pki() -> (String, Vec<u8>, Vec<u8>) {
    let pki = tls_util::test_pki(&["localhost", "127.0.0.1"], 10);
    (pki.ca_pem, pki.leaf_der, pki.key_der)
}

/// A TLS server on 127.0.0.1 answering 200 "ok" to every request.
async fn tls_server(cert: Vec<u8>, key: Vec<u8>) -> SocketAddr {
    use tokio_rustls::rustls;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_certificate_valid_for_ten_days_has_ten_days_left() {
    let (ca_pem, leaf, key) = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file: PathBuf = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    let addr = tls_server(leaf, key).await;

    let mut c = check(
        "tls",
        format!("https://localhost:{}/", addr.port()),
        Duration::from_secs(1),
    );
    // Without the CA the certificate is not trusted.
    let p = probe::probe(&probe::client(&c).expect("client"), &c).await;
    let reason = p.failure.clone().expect("an unknown CA must fail");
    assert!(reason.contains("certificate"), "{reason}");
    assert_eq!(p.status, None);

    c.ca_file = Some(ca_file);
    let p = probe::probe(&probe::client(&c).expect("client"), &c).await;
    assert_eq!(p.failure, None, "{p:?}");
    assert_eq!(p.status, Some(200));
    let days = p.cert_days_left.expect("days left");
    assert!((days - 10.0).abs() < 0.1, "{days}");

    // `insecure` accepts it without the CA and still reads the certificate.
    c.ca_file = None;
    c.insecure = true;
    let p = probe::probe(&probe::client(&c).expect("client"), &c).await;
    assert_eq!(p.failure, None, "{p:?}");
    assert!(p.cert_days_left.is_some_and(|d| (d - 10.0).abs() < 0.1));
}
