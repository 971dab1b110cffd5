//! Logins and the guard on writes: the argon2 hash check (on the blocking pool, at most two
//! at once: each takes ~19 MiB and tens of ms), in-memory sessions (random 256-bit tokens,
//! 12 h, at most 64), the `meshmon_session` cookie (`HttpOnly; SameSite=Strict; Path=/`,
//! `Secure` when a proxy on loopback says the request came over https), login rate limits
//! (5 failures a minute per client, 30 a minute in all, then 429 with `Retry-After`) and
//! the CSRF check of every write (session, `X-CSRF-Token`, `Origin`, `Sec-Fetch-Site`).
//!
//! Not here: what the writes do (`write`).

use super::AppState;
use super::reply::{ApiError, ApiResult, json};
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The session cookie's name.
pub const COOKIE: &str = "meshmon_session";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 64;
const WINDOW: Duration = Duration::from_secs(60);
/// Failed logins per client (IP) and in all, per [`WINDOW`].
const FAILS_PER_IP: usize = 5;
const FAILS_GLOBAL: usize = 30;
/// Clients whose failures are remembered (beyond: only the global limit counts).
const MAX_CLIENTS: usize = 10_000;

struct Session {
    csrf: String,
    expires: Instant,
}

#[derive(Default)]
struct Ledger {
    sessions: HashMap<String, Session>,
    fails: HashMap<IpAddr, VecDeque<Instant>>,
    global: VecDeque<Instant>,
}

/// Logins and sessions. One lock over small maps: held for a lookup or an insert, never
/// across an await or a hash check.
pub struct Auth {
    hash: Option<String>,
    state: Mutex<Ledger>,
    verifying: Arc<Semaphore>,
}

fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |x, (p, q)| x | (p ^ q)) == 0
}

fn prune(q: &mut VecDeque<Instant>, now: Instant) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        q.pop_front();
    }
}

impl Auth {
    pub fn new(hash: Option<String>) -> Auth {
        Auth {
            hash,
            state: Mutex::default(),
            verifying: Arc::new(Semaphore::new(2)),
        }
    }

    /// Whether a password is configured (logins and writes are possible at all).
    pub fn enabled(&self) -> bool {
        self.hash.is_some()
    }

    /// The session's CSRF token, when `headers` carry a live session cookie.
    pub fn session(&self, headers: &HeaderMap) -> Option<String> {
        let token = cookie(headers)?;
        let mut st = self.state.lock().ok()?;
        let now = Instant::now();
        st.sessions.retain(|_, s| s.expires > now);
        st.sessions.get(&token).map(|s| s.csrf.clone())
    }

    /// How long `ip` must wait before another try, when it (or everyone) failed too often.
    fn limited(&self, ip: IpAddr) -> Option<Duration> {
        let mut st = self.state.lock().ok()?;
        let now = Instant::now();
        prune(&mut st.global, now);
        let wait = |q: &VecDeque<Instant>, max: usize| {
            (q.len() >= max).then(|| {
                q.front()
                    .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)))
            })
        };
        let global = wait(&st.global, FAILS_GLOBAL);
        let mine = st.fails.get_mut(&ip).and_then(|q| {
            prune(q, now);
            wait(q, FAILS_PER_IP)
        });
        mine.or(global)
    }

    fn failed(&self, ip: IpAddr) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        st.global.push_back(now);
        if st.fails.len() >= MAX_CLIENTS {
            st.fails.retain(|_, q| {
                prune(q, now);
                !q.is_empty()
            });
        }
        if st.fails.len() < MAX_CLIENTS || st.fails.contains_key(&ip) {
            st.fails.entry(ip).or_default().push_back(now);
        }
    }

    /// A new session: (token, csrf).
    fn open(&self) -> Option<(String, String)> {
        let (token, csrf) = (random_token()?, random_token()?);
        let mut st = self.state.lock().ok()?;
        let now = Instant::now();
        st.sessions.retain(|_, s| s.expires > now);
        if st.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = st
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            st.sessions.remove(&oldest);
        }
        st.sessions.insert(
            token.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Some((token, csrf))
    }

    fn close(&self, headers: &HeaderMap) {
        if let (Some(t), Ok(mut st)) = (cookie(headers), self.state.lock()) {
            st.sessions.remove(&t);
        }
    }

    /// The guard of every write: a password is configured, the request carries a live
    /// session, comes from this origin, and its `X-CSRF-Token` is the session's.
    pub fn check_write(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.enabled() {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "writes are off: no web.password_file is set; {}",
                    crate::config::web::MAKE_PASSWORD
                ),
            ));
        }
        let Some(csrf) = self.session(headers) else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "log in first (POST /api/v1/login)".into(),
            ));
        };
        same_origin(headers)?;
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(sent, &csrf) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token (take it from GET /api/v1/session)".into(),
            ));
        }
        Ok(())
    }
}

/// Refuses cross-site requests: `Sec-Fetch-Site` (when sent) must be `same-origin` and
/// `Origin` (when sent) must name the `Host` the request was sent to.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("cross-site request refused (Sec-Fetch-Site: {site})"),
        ));
    }
    if let Some(origin) = get("origin") {
        let host = get("host").unwrap_or("");
        let o = origin.split_once("://").map_or("", |(_, rest)| rest);
        if o.is_empty() || o != host {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("cross-origin request refused (Origin: {origin})"),
            ));
        }
    }
    Ok(())
}

/// The session token from the `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Whether the request came from a proxy on loopback that terminated TLS.
fn behind_tls(peer: SocketAddr, headers: &HeaderMap) -> bool {
    peer.ip().is_loopback()
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The client: the peer, or, from a proxy on loopback, the last address it put in
/// `X-Forwarded-For`.
fn client_ip(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if peer.ip().is_loopback()
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let s = format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `GET /api/v1/session`.
pub async fn session(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    let csrf = st.auth.session(&headers);
    Ok(json(&json!({
        "logged_in": csrf.is_some(),
        "can_write": csrf.is_some(),
        "csrf": csrf,
        "title": st.title,
        "public_status": st.public_status,
        "login_required": st.auth.enabled(),
    })))
}

/// `POST /api/v1/login` with `{"password": "..."}`.
pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Some(hash) = st.auth.hash.clone() else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "logins are off: no web.password_file is set; {}",
                crate::config::web::MAKE_PASSWORD
            ),
        ));
    };
    let ip = client_ip(peer, &headers);
    if let Some(wait) = st.auth.limited(ip) {
        let secs = wait.as_secs().max(1);
        let mut r = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins; try again in {secs} s"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(r);
    }
    let body = super::write::body(body)?;
    #[derive(serde::Deserialize)]
    struct Login {
        password: String,
    }
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("expected {{\"password\": \"...\"}}: {e}")))?;
    let Ok(permit) = Arc::clone(&st.auth.verifying).try_acquire_owned() else {
        let mut r = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many logins at once; try again".into(),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
        return Ok(r);
    };
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(login.password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    if !ok {
        st.auth.failed(ip);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "wrong password".into()));
    }
    let Some((token, csrf)) = st.auth.open() else {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot make a session token".into(),
        ));
    };
    let mut r = json(&json!({"logged_in": true, "csrf": csrf, "can_write": true}));
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&token, SESSION_TTL.as_secs(), behind_tls(peer, &headers)),
    );
    Ok(r)
}

/// `POST /api/v1/logout`.
pub async fn logout(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    st.auth.close(&headers);
    let mut r = json(&json!({"logged_in": false}));
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", 0, behind_tls(peer, &headers)),
    );
    r
}

/// The argon2 hash line of `password`, for `meshmon web-password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        let parsed = PasswordHash::new(&h).expect("parse");
        let a = argon2::Argon2::default();
        assert!(a.verify_password(b"correct horse", &parsed).is_ok());
        assert!(a.verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn five_failures_a_minute_limit_one_client_not_another() {
        let auth = Auth::new(Some("x".into()));
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..FAILS_PER_IP {
            assert!(auth.limited(a).is_none());
            auth.failed(a);
        }
        let wait = auth.limited(a).expect("limited");
        assert!(wait <= WINDOW && wait > Duration::from_secs(50), "{wait:?}");
        assert!(auth.limited(b).is_none());
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert("origin", HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(same_origin(&h).is_err());
        h.insert("origin", HeaderValue::from_static("null"));
        assert!(same_origin(&h).is_err());
        h.remove("origin");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h).is_err());
    }
}
