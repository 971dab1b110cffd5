//! `[web]`: the web dashboard's listen address, password file, public status page and title,
//! as written (`RawWeb`) and validated (`WebConfig`). The password file holds an argon2 PHC
//! hash line (`meshmon web-password` prints one), never a password.
//!
//! Not here: the server (`crate::web`, feature `web`).

use super::{ConfigError, MakeErr};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[web]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// `host:port` the web dashboard listens on; "" = off.
    #[serde(default)]
    pub listen: String,
    /// File whose first non-empty line is an argon2 hash (`meshmon web-password`); "" = no
    /// login, so no writes (acknowledge, silence) from the web.
    #[serde(default)]
    pub password_file: String,
    /// Serve the public status page `/status` (checks and hosts up/down only, no login).
    #[serde(default)]
    pub public_status: bool,
    /// Title shown in the pages.
    #[serde(default = "default_title")]
    pub title: String,
}

fn default_title() -> String {
    "meshmon".into()
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            listen: String::new(),
            password_file: String::new(),
            public_status: false,
            title: default_title(),
        }
    }
}

/// `[web]`, validated.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Where to listen; `None`: the web dashboard is off.
    pub listen: Option<SocketAddr>,
    /// The argon2 PHC hash logins are checked against; `None`: no logins, no writes.
    pub password_hash: Option<String>,
    /// The file it came from (for messages).
    pub password_file: Option<PathBuf>,
    pub public_status: bool,
    pub title: String,
}

/// The hint every password error ends with.
pub const MAKE_PASSWORD: &str = "make one with 'meshmon web-password > /etc/meshmon/web.pass' \
     and set web.password_file = \"/etc/meshmon/web.pass\"";

/// Validates `[web]`: the address, the password file's hash line, and that a non-loopback
/// address has a password.
pub fn validate(raw: &RawWeb, err: MakeErr<'_>) -> Result<WebConfig, ConfigError> {
    let listen = match raw.listen.trim() {
        "" => None,
        s => Some(s.parse::<SocketAddr>().map_err(|_| {
            err(
                "web.listen",
                format!("'{s}' is not an address (expected host:port, e.g. 127.0.0.1:8080)"),
            )
        })?),
    };
    let (password_hash, password_file) = match raw.password_file.trim() {
        "" => (None, None),
        f => {
            let path = PathBuf::from(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                err(
                    "web.password_file",
                    format!("cannot read '{f}': {e}; {MAKE_PASSWORD}"),
                )
            })?;
            let line = text.lines().map(str::trim).find(|l| !l.is_empty());
            match line {
                Some(l) if l.starts_with("$argon2") => (Some(l.to_owned()), Some(path)),
                _ => {
                    return Err(err(
                        "web.password_file",
                        format!(
                            "'{f}' does not hold an argon2 hash (a line starting with \
                             '$argon2'; the file holds the hash, not the password); {MAKE_PASSWORD}"
                        ),
                    ));
                }
            }
        }
    };
    if let Some(addr) = listen
        && !addr.ip().is_loopback()
        && password_hash.is_none()
    {
        return Err(err(
            "web.listen",
            format!(
                "'{addr}' is not a loopback address and no web.password_file is set; \
                 {MAKE_PASSWORD} (or listen on 127.0.0.1 behind a reverse proxy)"
            ),
        ));
    }
    Ok(WebConfig {
        listen,
        password_hash,
        password_file,
        public_status: raw.public_status,
        title: raw.title.clone(),
    })
}
