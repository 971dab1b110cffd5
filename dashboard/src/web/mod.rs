//! The web dashboard (feature `web`, `[web] listen`): an axum app served in-process on the
//! node's runtime. Pages and assets are embedded ([`assets`]); the JSON API under `/api/v1/`
//! reads the store through the same code as `meshmon query` ([`api`]) and the live view
//! ([`live`]) for the fleet, the mesh and server-sent events ([`sse`]); writes (acknowledge,
//! silence) need a login and pass the CSRF check ([`auth`], [`write`]); the public status
//! page is [`status`]. Every response carries the security headers; request bodies are at
//! most 16 KiB and a request's answer must be ready within 10 s.
//!
//! # Layout
//! - [`server`]: accept loop, connection cap, HTTP/1.1 limits.
//! - [`assets`]: the embedded files.
//! - [`api`]: read-only endpoints; [`status`]: check uptime and the public status data.
//! - [`auth`]: logins, sessions, the write guard; [`write`]: acknowledge and silence.
//! - [`live`]: the fleet table, mesh status and events; [`sse`]: the event stream.
//! - [`reply`]: JSON replies and errors.
//!
//! Not here: the node's wiring (the `meshmon` binary's `node.rs`), the pages' contents
//! (`dashboard/web/`).

pub mod api;
pub mod assets;
pub mod auth;
pub mod live;
pub mod reply;
pub mod server;
pub mod sse;
pub mod status;
pub mod write;

use crate::Sample;
use crate::config::WebConfig;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reply::ApiError;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::hash_password;
pub use live::{LIVE_QUEUE, StatusSource};

/// The largest request body accepted (logins and silences are far smaller).
pub const MAX_BODY: usize = 16 * 1024;
/// How long a handler may take to produce its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler reads.
pub struct Inner {
    pub store: PathBuf,
    /// This node's name (in silences' idents and the mesh view).
    pub node: String,
    pub title: String,
    pub public_status: bool,
    pub auth: auth::Auth,
    pub live: live::Shared,
    pub events: broadcast::Sender<live::Event>,
    pub shutdown: CancellationToken,
    /// The last public status answer and when it was made.
    pub status_cache: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
}

/// The app's state: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What the web dashboard needs from the node.
pub struct WebParams {
    pub cfg: WebConfig,
    /// The store file.
    pub store: PathBuf,
    pub node: String,
    /// The node's mesh status.
    pub status: StatusSource,
    /// Live samples from ingestion ([`crate::stage::StageParams::live`]).
    pub samples: mpsc::Receiver<Vec<Sample>>,
}

/// The routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/status", get(status_page))
        .route("/assets/{file}", get(asset))
        .route("/api/v1/hosts", get(api::hosts))
        .route("/api/v1/fleet", get(api::fleet))
        .route("/api/v1/series", get(api::series))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/checks", get(api::checks))
        .route("/api/v1/checks/uptime", get(status::checks_uptime))
        .route("/api/v1/mesh", get(api::mesh))
        .route("/api/v1/events", get(sse::events))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/session", get(auth::session))
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/alerts/{id}/ack", post(write::ack))
        .route("/api/v1/silences", post(write::silence))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(guard))
        .with_state(state)
}

/// Binds `cfg.listen` and starts the server and the live view; returns the bound address.
pub async fn start(
    p: WebParams,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> std::io::Result<SocketAddr> {
    let Some(listen) = p.cfg.listen else {
        return Err(std::io::Error::other("web.listen is not set"));
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (events, _) = broadcast::channel(live::EVENT_QUEUE);
    let shared = live::Shared::default();
    live::start(
        live::LiveParams {
            samples: p.samples,
            status: p.status,
            store: p.store.clone(),
            state: Arc::clone(&shared),
            events: events.clone(),
        },
        tracker,
        shutdown.clone(),
    );
    let state = AppState(Arc::new(Inner {
        store: p.store,
        node: p.node,
        title: p.cfg.title,
        public_status: p.cfg.public_status,
        auth: auth::Auth::new(p.cfg.password_hash),
        live: shared,
        events,
        shutdown: shutdown.clone(),
        status_cache: tokio::sync::Mutex::default(),
    }));
    server::start(listener, app(state), tracker, shutdown.clone());
    Ok(addr)
}

/// The answer timeout and the security headers of every response.
async fn guard(req: Request, next: Next) -> Response {
    let mut r = match tokio::time::timeout(ANSWER_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the answer took too long".into(),
        )
        .into_response(),
    };
    let h = r.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn index(headers: HeaderMap) -> Response {
    assets::serve(&assets::INDEX, &headers)
}

async fn status_page(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if !st.public_status {
        return not_found_text();
    }
    assets::serve(&assets::STATUS, &headers)
}

async fn asset(UrlPath(file): UrlPath<String>, headers: HeaderMap) -> Response {
    match assets::find(&file) {
        Some(a) => assets::serve(a, &headers),
        None => not_found_text(),
    }
}

fn not_found_text() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()).into_response()
    } else {
        not_found_text()
    }
}
