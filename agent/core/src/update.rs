//! Self-update: reads a GitHub-style `releases/latest` JSON document, compares its tag with
//! this build's version, downloads the asset for this platform (`meshmon-<arch>-<os>`),
//! verifies its SHA-256 against the release's `SHA256SUMS` and replaces the binary atomically
//! (temp file in the same directory, mode 0755, fsync, rename). Refuses binaries under
//! `/nix/store`: Nix installs are updated by Nix, never by meshmon.
//!
//! Not here: deciding when to check (the binary's `self-update` command, the node's daily task)
//! or restarting (the process exits and systemd starts the new binary).

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest binary accepted.
pub const MAX_ASSET_BYTES: u64 = 200 * 1024 * 1024;
/// Largest release document or checksum file accepted.
const MAX_SMALL_BYTES: u64 = 4 * 1024 * 1024;
/// Name of the checksum file among a release's assets.
pub const CHECKSUM_ASSET: &str = "SHA256SUMS";
/// The version of this build.
pub const CURRENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The parts of a `releases/latest` document meshmon reads; other fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// `v0.2.0` or `0.2.0`.
    pub tag_name: String,
    #[serde(default)]
    pub assets: Vec<Asset>,
}

/// One downloadable file of a release.
#[derive(Debug, Clone, Deserialize)]
pub struct Asset {
    pub name: String,
    pub browser_download_url: String,
    /// Declared size in bytes; a download of another length is rejected.
    #[serde(default)]
    pub size: Option<u64>,
}

/// What a check or an update found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The release is not newer than this build.
    UpToDate { current: String, latest: String },
    /// A newer release exists (`--check` only reports it).
    Available { current: String, latest: String },
    /// The binary at `path` was replaced by `latest`.
    Updated {
        current: String,
        latest: String,
        path: PathBuf,
    },
}

/// The release asset name for this platform, e.g. `meshmon-x86_64-linux`.
pub fn asset_name() -> String {
    format!(
        "meshmon-{}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// Parses `v1.2.3` / `1.2.3` (a `-pre` or `+build` suffix is ignored) into numbers.
pub fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let core = s.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

/// Finds the hex digest for `name` in a `SHA256SUMS` file (`<hex>  <name>` or `<hex> *<name>`).
pub fn find_checksum(sums: &str, name: &str) -> Option<[u8; 32]> {
    sums.lines().find_map(|line| {
        let (hex, file) = line.trim().split_once(char::is_whitespace)?;
        let file = file.trim_start();
        let file = file.strip_prefix('*').unwrap_or(file);
        (file == name).then(|| decode_hex32(hex)).flatten()
    })
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses paths under `/nix/store`.
pub fn refuse_nix(path: &Path) -> anyhow::Result<()> {
    if path.starts_with("/nix/store") {
        bail!(
            "'{}' lives in /nix/store: meshmon never updates itself under Nix; update the flake input or package instead",
            path.display()
        );
    }
    Ok(())
}

/// The binary to replace: `target` if given (tests), else the running executable; symlinks
/// are resolved so the real file is replaced.
pub fn resolve_target(target: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match target {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("cannot find the running executable")?,
    };
    let real = std::fs::canonicalize(&path)
        .with_context(|| format!("cannot resolve '{}'", path.display()))?;
    refuse_nix(&path)?;
    refuse_nix(&real)?;
    Ok(real)
}

fn client() -> anyhow::Result<reqwest::Client> {
    crate::http::builder(None)
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .build()
        .context("cannot build the HTTP client")
}

/// GETs `url` into memory, failing past `max` bytes or when fewer or more bytes than
/// `expected` (or than the `Content-Length`) arrive.
async fn download(
    client: &reqwest::Client,
    url: &str,
    max: u64,
    expected: Option<u64>,
) -> anyhow::Result<Vec<u8>> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot fetch '{url}'"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("'{url}' answered HTTP {status}");
    }
    let declared = resp.content_length();
    if let Some(len) = declared {
        if len > max {
            bail!("'{url}' is {len} bytes, more than the limit of {max}");
        }
        if let Some(exp) = expected
            && len != exp
        {
            bail!("'{url}' has Content-Length {len} but the release declares {exp} bytes");
        }
    }
    let mut body = Vec::new();
    loop {
        let chunk = resp
            .chunk()
            .await
            .with_context(|| format!("download of '{url}' broke off"))?;
        let Some(chunk) = chunk else { break };
        if body.len() as u64 + chunk.len() as u64 > max {
            bail!("'{url}' is more than the limit of {max} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    let got = body.len() as u64;
    for want in [declared, expected].into_iter().flatten() {
        if got != want {
            bail!("download of '{url}' is truncated or too long: got {got} bytes, expected {want}");
        }
    }
    Ok(body)
}

/// Fetches the release document at `url`.
pub async fn fetch_release(client: &reqwest::Client, url: &str) -> anyhow::Result<Release> {
    let body = download(client, url, MAX_SMALL_BYTES, None).await?;
    serde_json::from_slice(&body)
        .with_context(|| format!("'{url}' is not a releases/latest JSON document"))
}

/// Checks `url` and, unless `check_only`, installs a newer release over `target` (default: the
/// running executable). Nothing is touched unless the download is complete and its SHA-256
/// matches `SHA256SUMS`.
pub async fn run(url: &str, target: Option<&Path>, check_only: bool) -> anyhow::Result<Outcome> {
    let current = CURRENT_VERSION.to_owned();
    let current_v = parse_version(&current)
        .ok_or_else(|| anyhow!("this build's version '{current}' is not x.y.z"))?;
    // Resolve (and refuse Nix) before any network traffic.
    let path = if check_only {
        None
    } else {
        Some(resolve_target(target)?)
    };
    let client = client()?;
    let release = fetch_release(&client, url).await?;
    let latest = release.tag_name.clone();
    let latest_v = parse_version(&latest)
        .ok_or_else(|| anyhow!("release tag '{latest}' is not a version like v1.2.3"))?;
    if latest_v <= current_v {
        return Ok(Outcome::UpToDate { current, latest });
    }
    let Some(path) = path else {
        return Ok(Outcome::Available { current, latest });
    };

    let name = asset_name();
    let asset = release
        .assets
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| anyhow!("release '{latest}' has no asset '{name}' for this platform"))?;
    let sums_asset = release
        .assets
        .iter()
        .find(|a| a.name == CHECKSUM_ASSET)
        .ok_or_else(|| anyhow!("release '{latest}' has no '{CHECKSUM_ASSET}' file"))?;
    if let Some(size) = asset.size
        && size > MAX_ASSET_BYTES
    {
        bail!("asset '{name}' declares {size} bytes, more than the limit of {MAX_ASSET_BYTES}");
    }
    let sums = download(
        &client,
        &sums_asset.browser_download_url,
        MAX_SMALL_BYTES,
        sums_asset.size,
    )
    .await?;
    let sums = String::from_utf8(sums).context("SHA256SUMS is not UTF-8 text")?;
    let want = find_checksum(&sums, &name)
        .ok_or_else(|| anyhow!("SHA256SUMS has no valid line for '{name}'"))?;
    let bytes = download(
        &client,
        &asset.browser_download_url,
        MAX_ASSET_BYTES,
        asset.size,
    )
    .await?;
    let got: [u8; 32] = Sha256::digest(&bytes).into();
    if got != want {
        bail!(
            "checksum mismatch for '{name}': SHA256SUMS says {}, the download is {}; nothing was changed",
            to_hex(&want),
            to_hex(&got)
        );
    }
    let target_path = path.clone();
    tokio::task::spawn_blocking(move || replace(&target_path, &bytes))
        .await
        .context("the replace task failed")??;
    tracing::info!(from = %current, to = %latest, path = %path.display(), "binary replaced");
    Ok(Outcome::Updated {
        current,
        latest,
        path,
    })
}

/// Writes `bytes` to a temp file next to `path`, mode 0755, fsyncs it, renames it over `path`
/// and fsyncs the directory. A failure leaves `path` as it was.
pub fn replace(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("'{}' has no parent directory", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshmon-update-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in '{}'", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write the new binary in '{}'", dir.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot rename the new binary over '{}'", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; a failure here does not undo it.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("v0.2.0"), Some((0, 2, 0)));
        assert_eq!(parse_version("1.10.3-rc1"), Some((1, 10, 3)));
        assert_eq!(parse_version("2"), Some((2, 0, 0)));
        assert_eq!(parse_version("v1.2.3.4"), None);
        assert_eq!(parse_version("latest"), None);
        assert!(parse_version("0.10.0") > parse_version("0.9.9"));
    }

    #[test]
    fn checksums() {
        let h = "ab".repeat(32);
        let sums = format!("{}  other\n{h}  meshmon-x86_64-linux\n", "00".repeat(32));
        assert_eq!(
            find_checksum(&sums, "meshmon-x86_64-linux"),
            Some([0xab; 32])
        );
        assert_eq!(find_checksum(&format!("{h} *x"), "x"), Some([0xab; 32]));
        assert_eq!(find_checksum("zz  x", "x"), None);
        assert_eq!(find_checksum(&sums, "missing"), None);
    }

    #[test]
    fn nix_is_refused() {
        assert!(refuse_nix(Path::new("/nix/store/abc-meshmon/bin/meshmon")).is_err());
        assert!(refuse_nix(Path::new("/usr/local/bin/meshmon")).is_ok());
    }
}
