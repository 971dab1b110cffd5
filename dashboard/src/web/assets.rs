//! The pages and assets of the web dashboard, embedded in the binary from `dashboard/web/`
//! (a fixed list, the one `dashboard/web/API.md` gives: nothing is ever read from the filesystem, so a path can never escape it,
//! and the Nix build needs no network). Each is served with its content type, an `ETag`
//! (its SHA-256) and `Cache-Control: no-cache`, so browsers keep a copy and revalidate it
//! with one `304` per load.
//!
//! Not here: the pages' contents (`dashboard/web/`, the web UI's own files).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// An embedded file.
pub struct Asset {
    /// Its name under `/assets/` (or the page's name).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $path:literal, $ct:literal) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

/// `/` (the single-page app).
pub static INDEX: Asset = asset!("index.html", "index.html", "text/html; charset=utf-8");
/// `/status` (the public status page).
pub static STATUS: Asset = asset!("status.html", "status.html", "text/html; charset=utf-8");

/// Everything under `/assets/`.
pub static ASSETS: [Asset; 8] = [
    asset!("app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!("common.js", "common.js", "text/javascript; charset=utf-8"),
    asset!("host.js", "host.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "app.css", "text/css; charset=utf-8"),
    asset!("status.js", "status.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!(
        "uplot.min.js",
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "uplot.min.css",
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8"
    ),
];

/// The ETag of every page and asset, computed once.
fn etag(a: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .chain([&INDEX, &STATUS])
            .map(|a| {
                let d = Sha256::digest(a.body);
                let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
                (a.name, format!("\"{hex}\""))
            })
            .collect()
    });
    tags.iter()
        .find(|(n, _)| *n == a.name)
        .map_or("\"0\"", |(_, t)| t.as_str())
}

/// The asset named `name`, if it is one of the embedded ones.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Serves `a`, or `304 Not Modified` when the browser's copy is current.
pub fn serve(a: &'static Asset, req: &HeaderMap) -> Response {
    let tag = etag(a);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let headers = [
        (header::ETAG, HeaderValue::from_static(tag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        )],
        a.body,
    )
        .into_response()
}
