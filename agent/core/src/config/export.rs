//! `[export]`, validated: the Prometheus endpoint's address and remote write (URL,
//! credentials read from their files, interval, queue bound). Credential files are refused
//! when their group or others may read them, like the mesh key.
//!
//! Not here: the endpoint (`crate::export`) or the remote-write task (the dashboard crate).

use super::{ConfigError, Errs, RawExport, is_http_url, non_empty};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// `[export]`, validated.
#[derive(Debug, Clone, Default)]
pub struct ExportConfig {
    /// Where the Prometheus endpoint listens; `None`: off.
    pub prometheus_listen: Option<SocketAddr>,
    /// Remote write; `None`: off.
    pub remote_write: Option<RemoteWriteConfig>,
}

/// Remote write, validated.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// The receiver's URL.
    pub url: String,
    /// Credentials.
    pub auth: RemoteAuth,
    /// How often queued samples are pushed.
    pub interval: Duration,
    /// Bound of the queue, in samples.
    pub queue: usize,
}

/// Remote write's credentials, read from their files.
#[derive(Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    /// None.
    None,
    /// A bearer token.
    Bearer(String),
    /// Basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for RemoteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.write_str(match self {
            RemoteAuth::None => "None",
            RemoteAuth::Bearer(_) => "Bearer(..)",
            RemoteAuth::Basic { .. } => "Basic(..)",
        })
    }
}

/// Validates `[export]` and reads remote write's credential files.
pub fn validate_export(x: &RawExport, e: &Errs) -> Result<ExportConfig, ConfigError> {
    let prometheus_listen = match non_empty(&x.prometheus_listen) {
        None => None,
        Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
            e.at(
                "export.prometheus_listen",
                format!("'{a}' is not an address (expected host:port)"),
            )
        })?),
    };
    let interval = e.dur("export.remote_write_interval", &x.remote_write_interval)?;
    let bearer = non_empty(&x.remote_write_bearer_file);
    let basic = non_empty(&x.remote_write_basic_auth_file);
    let Some(url) = non_empty(&x.remote_write_url) else {
        for (key, set) in [
            ("export.remote_write_bearer_file", bearer.is_some()),
            ("export.remote_write_basic_auth_file", basic.is_some()),
        ] {
            if set {
                return Err(e.at(key, "is set but export.remote_write_url is empty"));
            }
        }
        return Ok(ExportConfig {
            prometheus_listen,
            remote_write: None,
        });
    };
    if !is_http_url(url) {
        return Err(e.at(
            "export.remote_write_url",
            format!("'{url}' is not an http:// or https:// URL"),
        ));
    }
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(300) {
        return Err(e.at(
            "export.remote_write_interval",
            format!(
                "'{}' is out of range (1s to 5m)",
                x.remote_write_interval.trim()
            ),
        ));
    }
    if x.remote_write_queue < 1000 {
        return Err(e.at(
            "export.remote_write_queue",
            format!(
                "{} is too small (at least 1000 samples)",
                x.remote_write_queue
            ),
        ));
    }
    let auth = match (bearer, basic) {
        (Some(_), Some(_)) => {
            return Err(e.at(
                "export.remote_write_basic_auth_file",
                "is set together with export.remote_write_bearer_file; keep only one",
            ));
        }
        (Some(path), None) => {
            const KEY: &str = "export.remote_write_bearer_file";
            let token = read_secret(Path::new(path)).map_err(|m| e.at(KEY, m))?;
            if token.chars().any(char::is_whitespace) {
                return Err(e.at(KEY, format!("'{path}': the token holds whitespace")));
            }
            RemoteAuth::Bearer(token)
        }
        (None, Some(path)) => {
            const KEY: &str = "export.remote_write_basic_auth_file";
            let line = read_secret(Path::new(path)).map_err(|m| e.at(KEY, m))?;
            let Some((user, password)) = line.split_once(':') else {
                return Err(e.at(KEY, format!("'{path}': expected one line 'user:password'")));
            };
            RemoteAuth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            }
        }
        (None, None) => RemoteAuth::None,
    };
    Ok(ExportConfig {
        prometheus_listen,
        remote_write: Some(RemoteWriteConfig {
            url: url.to_owned(),
            auth,
            interval,
            queue: x.remote_write_queue,
        }),
    })
}

/// The first non-empty line of a credential file that only its owner may read.
fn read_secret(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|err| format!("'{}': {err}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "'{}': permissions {mode:04o} are too open (group or others can read the secret); \
             run 'chmod 600 {}'",
            path.display(),
            path.display()
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|err| format!("'{}': {err}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("'{}': is empty", path.display()))
}
