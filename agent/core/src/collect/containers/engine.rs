//! The Docker Engine API (Docker, and Podman's Docker-compatible API) over a Unix socket: a
//! minimal, bounded HTTP/1.1 client (one `GET` per connection, `Connection: close`; a deadline
//! for the whole exchange; a cap on the response size; chunked or `Content-Length` bodies) and
//! the two calls the container collector uses: `GET /containers/json?all=true` (id, name, image,
//! state) and `GET /containers/{id}/json` (init pid, health, restart count).
//!
//! A hand-written client rather than hyper: the plain agent must not pull in an HTTP stack,
//! and these two calls need nothing more. Not here: cgroups (`cgroup.rs`), scheduling and
//! series (`mod.rs`).

use serde::Deserialize;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest a whole request may take (connect, write, read).
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// The largest response accepted (headers and body): a list of 500 containers is ~1 MiB.
pub const MAX_RESPONSE: usize = 8 << 20;

/// Why a call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The socket could not be reached, or the exchange failed or timed out.
    #[error("{socket}: {source}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The answer was not HTTP the client understands, or too large.
    #[error("{socket}: bad response: {what}")]
    Http {
        /// The socket.
        socket: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// The engine answered with an error status.
    #[error("{socket}: GET {path}: HTTP {status}")]
    Status {
        /// The socket.
        socket: PathBuf,
        /// The request path.
        path: String,
        /// The status code.
        status: u16,
    },
    /// The body was not the JSON expected.
    #[error("{socket}: GET {path}: {source}")]
    Json {
        /// The socket.
        socket: PathBuf,
        /// The request path.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// One container as the collector needs it (from the list and the inspect call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineContainer {
    /// Full id (64 hex digits).
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image as the container was created from (`nginx:1.25`).
    pub image: String,
    /// `running`, `exited`, `restarting`, `paused`, `created`, `dead`.
    pub state: String,
    /// The engine's status text (`Up 2 hours (healthy)`); a change triggers an inspect.
    pub status: String,
}

/// What `GET /containers/{id}/json` says (the fields used).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspect {
    /// The init process on the host (0 when not running).
    pub pid: u32,
    /// `Some(true)` healthy, `Some(false)` unhealthy, `None` no healthcheck or still starting.
    pub healthy: Option<bool>,
    /// Times the engine restarted the container (its restart policy).
    pub restarts: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InspectJson {
    #[serde(default)]
    state: InspectState,
    #[serde(default)]
    restart_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    health: Option<Health>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Health {
    #[serde(default)]
    status: String,
}

/// A Docker-compatible engine at a Unix socket.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The socket path.
    pub socket: PathBuf,
}

impl Engine {
    /// The engine at `socket`.
    pub fn new(socket: &Path) -> Engine {
        Engine {
            socket: socket.to_owned(),
        }
    }

    /// Every container, running or not.
    pub fn list(&self) -> Result<Vec<EngineContainer>, EngineError> {
        let entries: Vec<ListEntry> = self.get_json("/containers/json?all=true")?;
        Ok(entries
            .into_iter()
            .filter(|e| !e.id.is_empty())
            .map(|e| EngineContainer {
                name: e
                    .names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| short_id(&e.id).to_owned()),
                id: e.id,
                image: e.image,
                state: e.state,
                status: e.status,
            })
            .collect())
    }

    /// One container's pid, health and restart count.
    pub fn inspect(&self, id: &str) -> Result<Inspect, EngineError> {
        if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(EngineError::Http {
                socket: self.socket.clone(),
                what: format!("refusing container id '{id}'"),
            });
        }
        let j: InspectJson = self.get_json(&format!("/containers/{id}/json"))?;
        let healthy = match j.state.health.map(|h| h.status) {
            Some(s) if s == "healthy" => Some(true),
            Some(s) if s == "unhealthy" => Some(false),
            _ => None,
        };
        Ok(Inspect {
            pid: u32::try_from(j.state.pid).unwrap_or(0),
            healthy,
            restarts: j.restart_count,
        })
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, EngineError> {
        let (status, body) = self.get(path)?;
        if status != 200 {
            return Err(EngineError::Status {
                socket: self.socket.clone(),
                path: path.to_owned(),
                status,
            });
        }
        serde_json::from_slice(&body).map_err(|source| EngineError::Json {
            socket: self.socket.clone(),
            path: path.to_owned(),
            source,
        })
    }

    /// One `GET`: the status and the (de-chunked) body.
    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>), EngineError> {
        let io = |source| EngineError::Io {
            socket: self.socket.clone(),
            source,
        };
        let raw = exchange(&self.socket, path).map_err(io)?;
        parse_response(&raw).map_err(|what| EngineError::Http {
            socket: self.socket.clone(),
            what,
        })
    }
}

/// The first 12 digits of an id, as `docker ps` shows it.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Sends the request and reads the whole response (the engine closes the connection), within
/// [`TIMEOUT`] and [`MAX_RESPONSE`].
fn exchange(socket: &Path, path: &str) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now() + TIMEOUT;
    let mut s = UnixStream::connect(socket)?;
    s.set_write_timeout(Some(TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: meshmon\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::with_capacity(16 << 10);
    let mut buf = [0u8; 16 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no complete answer within {TIMEOUT:?}"),
            ));
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(std::io::Error::other(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
        // A body with a known end need not wait for the close.
        if let Ok(Some(_)) = complete(&raw) {
            return Ok(raw);
        }
    }
}

/// Whether `raw` holds a whole response: `Ok(Some(len))` when the headers say how long the
/// body is and it has all arrived, or a chunked body's last chunk has.
fn complete(raw: &[u8]) -> Result<Option<usize>, String> {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let body = &raw[end + 4..];
    if is_chunked(head) {
        return Ok(dechunk(body)?.map(|_| raw.len()));
    }
    Ok(content_length(head)?
        .filter(|n| body.len() >= *n)
        .map(|n| end + 4 + n))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn is_chunked(head: &str) -> bool {
    header(head, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(head: &str) -> Result<Option<usize>, String> {
    header(head, "content-length")
        .map(|v| v.parse().map_err(|_| format!("bad Content-Length '{v}'")))
        .transpose()
}

/// The status code and body of a whole response.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad status line '{status_line}'"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line '{status_line}'"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("bad status line '{status_line}'"))?;
    let body = &raw[end + 4..];
    if is_chunked(head) {
        return dechunk(body)?
            .ok_or_else(|| "chunked body cut short".to_owned())
            .map(|b| (status, b));
    }
    match content_length(head)? {
        Some(n) if body.len() < n => Err(format!("body cut short ({} of {n} bytes)", body.len())),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

/// Decodes a chunked body; `Ok(None)` while the last (zero-size) chunk has not arrived.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let Some(eol) = find(body, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&body[..eol]).map_err(|_| "chunk size is not UTF-8")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size '{size_text}'"))?;
        if size > MAX_RESPONSE {
            return Err(format!("chunk of {size} bytes"));
        }
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        if &body[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_chunked_and_truncated_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(parse_response(plain), Ok((200, b"[]".to_vec())));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[{}\r\n1;x=y\r\n]\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok((200, b"[{}]".to_vec())));
        assert_eq!(complete(chunked), Ok(Some(chunked.len())));
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[{";
        assert_eq!(complete(cut), Ok(None));
        assert!(parse_response(cut).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n[]").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"SSH-2.0 x\r\n\r\n").is_err());
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(bad).is_err());
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(not_found), Ok((404, Vec::new())));
        // No length, no chunking: the body runs to the close.
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\n\r\nabc"),
            Ok((200, b"abc".to_vec()))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let n = rng.random_range(0..200);
            let mut raw: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) {
                let mut head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                head.append(&mut raw);
                raw = head;
            }
            let _ = parse_response(&raw);
            let _ = complete(&raw);
        }
    }
}
