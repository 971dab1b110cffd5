//! Replies of the web API: JSON bodies, `{"error": "message"}` errors with their status, the
//! store's errors mapped to statuses, and blocking store work run on the blocking pool.
//!
//! Not here: what any endpoint does.

use crate::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error reply: a status and a message, sent as `{"error": "message"}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 }).to_string();
        let mut r = (self.0, json_header(), body).into_response();
        if self.0 == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body stays unread, so the connection cannot carry another
            // request: say so, or a client's pool reuses it and its next request dies.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::BadArgument(_) => StatusCode::BAD_REQUEST,
            StoreError::UnknownHost(_) => StatusCode::NOT_FOUND,
            StoreError::NotFound(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

pub type ApiResult = Result<Response, ApiError>;

fn json_header() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )]
}

/// A JSON body already rendered (the CLI's JSON output).
pub fn json_text(text: String) -> Response {
    (json_header(), text).into_response()
}

/// A JSON value.
pub fn json(v: &serde_json::Value) -> Response {
    json_text(v.to_string())
}

/// Runs store work on the blocking pool (SQLite never runs on the runtime).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query failed: {e}"),
        )),
    }
}

/// Query parameters as pairs (a key may repeat), or a 400 for a malformed query string.
pub fn params(
    q: Result<
        axum::extract::Query<Vec<(String, String)>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Params, ApiError> {
    q.map(|q| Params(q.0))
        .map_err(|e| ApiError::bad(format!("bad query string: {}", e.body_text())))
}

/// Parsed query parameters.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `key`, which must be there.
    pub fn need(&self, key: &str) -> Result<String, ApiError> {
        self.get(key)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad(format!("'{key}' is missing")))
    }

    /// Only `known` keys may be given (a typo is an error, not silently ignored).
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::bad(format!(
                "unknown parameter '{k}' (expected: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// A flag: absent, `0`/`false` = false; `1`/`true`/empty = true.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("0" | "false") => Ok(false),
            Some("" | "1" | "true") => Ok(true),
            Some(v) => Err(ApiError::bad(format!(
                "'{key}={v}' is not a flag (expected 1 or 0)"
            ))),
        }
    }
}
