//! One HTTP(S) request of a check and what it found: success or the reason of the failure, the
//! HTTP status, the latency and the days left on the server's leaf certificate.
//!
//! Each check has its own client (its timeout, extra roots and `insecure` differ) that keeps no
//! idle connection, so every probe opens a fresh connection: latency includes connect and TLS
//! handshake, a server that went away is noticed at once, and the certificate is read every
//! time. Redirects are followed (up to 10); the status is that of the final response.
//!
//! Not here: scheduling and the up/down decision (the parent, [`super::state`]).

use crate::config::CheckConfig;
use anyhow::Context as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// At most this much of the body is searched for `body_contains`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What one request found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `None` on success, else why it failed (connect error, timeout, wrong status, missing
    /// text).
    pub failure: Option<String>,
    /// The HTTP status; `None` when no response arrived.
    pub status: Option<u16>,
    /// Time until the response headers arrived; `None` when no response arrived.
    pub latency_ms: Option<f64>,
    /// Days until the leaf certificate's `notAfter` (negative once expired); https only.
    pub cert_days_left: Option<f64>,
}

/// The client of one check: its timeout, extra roots (`ca_file`) and `insecure`.
pub fn client(check: &CheckConfig) -> anyhow::Result<reqwest::Client> {
    let mut b = crate::http::builder(Some("check"))
        .timeout(check.timeout)
        .pool_max_idle_per_host(0)
        .tls_info(true);
    if let Some(ca) = &check.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read '{}'", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("'{}' is not a PEM certificate bundle", ca.display()))?;
        if certs.is_empty() {
            anyhow::bail!("'{}' holds no PEM certificate", ca.display());
        }
        b = b.tls_certs_merge(certs);
    }
    if check.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().context("cannot build the HTTP client")
}

/// Runs one request of `check`.
pub async fn probe(client: &reqwest::Client, check: &CheckConfig) -> Probe {
    let start = Instant::now();
    let mut p = Probe {
        failure: None,
        status: None,
        latency_ms: None,
        cert_days_left: None,
    };
    let resp = match client.get(&check.url).send().await {
        Ok(r) => r,
        Err(e) => {
            p.failure = Some(reason(&e, check.timeout));
            return p;
        }
    };
    p.latency_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
    let status = resp.status().as_u16();
    p.status = Some(status);
    p.cert_days_left = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .and_then(|der| cert_days_left(der, SystemTime::now()));
    if status != check.expect_status {
        p.failure = Some(format!(
            "HTTP status {status}, expected {}",
            check.expect_status
        ));
        return p;
    }
    if let Some(needle) = &check.body_contains {
        match read_body(resp).await {
            Ok(body) if String::from_utf8_lossy(&body).contains(needle.as_str()) => {}
            Ok(body) => {
                p.failure = Some(format!(
                    "body ({} bytes searched) does not contain '{needle}'",
                    body.len()
                ));
            }
            Err(e) => p.failure = Some(reason(&e, check.timeout)),
        }
    }
    p
}

/// The first [`MAX_BODY_BYTES`] of the body.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// A short reason: the innermost cause (`Connection refused (os error 111)`, a TLS error),
/// prefixed with what failed.
fn reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {timeout:?}");
    }
    let mut cause = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if e.is_connect() {
        format!("connect: {cause}")
    } else if e.is_body() || e.is_decode() {
        format!("reading the body: {cause}")
    } else {
        cause
    }
}

/// Days from `now` until the `notAfter` of the DER certificate `der`; `None` if it does not
/// parse.
pub fn cert_days_left(der: &[u8], now: SystemTime) -> Option<f64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp() as f64;
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Some((not_after - now) / 86_400.0)
}
