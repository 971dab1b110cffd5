//! A real HTTP server on 127.0.0.1 standing in for Slack and webhook receivers: it records
//! every POST (time, path, JSON body) and answers with a status the test controls (500 to
//! play a broken receiver, 429 with `Retry-After` to play Slack's rate limit).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
    pub body: serde_json::Value,
    /// The body as text (for receivers that take plain text, such as ntfy).
    pub raw: String,
    /// Request headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    retry_after: AtomicU32,
    stop: AtomicBool,
}

/// The server; stops when dropped.
pub struct Webhook {
    pub url: String,
    shared: Arc<Shared>,
}

impl Webhook {
    /// Starts a server answering 200.
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        shared.status.store(200, Ordering::SeqCst);
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Webhook {
            url: format!("http://{addr}/hook"),
            shared,
        }
    }

    /// Answers every later request with `status` (and `Retry-After: secs` if not 0).
    pub fn respond(&self, status: u16, retry_after_s: u32) {
        self.shared.status.store(status, Ordering::SeqCst);
        self.shared
            .retry_after
            .store(retry_after_s, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Bodies answered with 2xx, for which `pred` holds.
    pub fn delivered(&self, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status) && pred(&r.body))
            .collect()
    }

    /// Waits up to `timeout` until `pred` holds for at least `n` delivered bodies.
    pub fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.delivered(&pred);
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .trim_end_matches("/hook"),
        );
    }
}

/// HTTP/1.1 with keep-alive: requests with Content-Length bodies, one after another.
fn serve(conn: TcpStream, s: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut len = 0usize;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let status = s.status.load(Ordering::SeqCst);
        let retry = s.retry_after.load(Ordering::SeqCst);
        s.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Received {
                at: Instant::now(),
                path,
                status,
                body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                raw: String::from_utf8_lossy(&body).into_owned(),
                headers,
            });
        let text = if status == 200 { "ok" } else { "error" };
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            text.len()
        );
        if retry > 0 {
            resp.push_str(&format!("Retry-After: {retry}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(text);
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
