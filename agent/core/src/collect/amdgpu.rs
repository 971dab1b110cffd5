//! The AMD GPU collector (`collect.gpu`, like NVIDIA's): per AMD card (`/sys/class/drm/cardN`
//! whose `device/vendor` is `0x1002`, the amdgpu driver's files) utilisation
//! (`gpu_busy_percent`), VRAM used and total (`mem_info_vram_used`, `mem_info_vram_total`),
//! and from the card's hwmon directory the temperature (`temp1_input`, millidegrees) and power
//! (`power1_average`, else `power1_input`, microwatts). Published into [`Extras`] under the
//! source `amdgpu` with the NVIDIA collector's metric names (`gpu.util_pct`, ...) and labels
//! `gpu` (the card number N), `name` (`device/product_name`, else `AMD GPU <device id>`) and
//! `vendor="amd"`. NVIDIA series carry no `vendor` label: adding one would change the identity
//! of every stored NVIDIA series, so a missing `vendor` means NVIDIA.
//!
//! Plain file reading, so it is built without the `gpu` (NVML) feature. The cards and which of
//! their files exist are found once when the thread starts: with no AMD card it logs one line
//! and ends; a file a card lacks (no power sensor) is never read, and a read that fails later
//! leaves that value out, logged once until it recovers.
//!
//! Not here: NVIDIA (`gpu`, NVML), Intel GPUs, per-process GPU usage, fan speeds and clocks.

use super::{CollectError, Extras, Failing, Sample, Stop, parse_error};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::info;

/// The source name in [`Extras`].
pub const SOURCE: &str = "amdgpu";

/// Where the DRM cards are.
pub const DRM: &str = "/sys/class/drm";

/// AMD's PCI vendor id.
const VENDOR_AMD: &str = "0x1002";

/// One file of a card and how its number becomes the metric's value.
#[derive(Debug, Clone)]
struct Field {
    metric: Metric,
    path: PathBuf,
    /// The file's unit per metric unit (1000 for millidegrees, 1e6 for microwatts).
    divisor: f64,
}

/// One AMD card and the files it has.
#[derive(Debug, Clone)]
pub struct Card {
    /// The card number N of `cardN` (the `gpu` label).
    pub index: String,
    /// The product name (the `name` label).
    pub name: String,
    fields: Vec<Field>,
}

/// The AMD cards under `drm` (e.g. `/sys/class/drm`), by card number. Connectors
/// (`card0-DP-1`), render nodes and other vendors' cards are left out.
pub fn discover(drm: &Path) -> Vec<Card> {
    let Ok(dir) = std::fs::read_dir(drm) else {
        return Vec::new();
    };
    let mut cards: Vec<(u32, Card)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u32 = name.strip_prefix("card")?.parse().ok()?;
            let device = e.path().join("device");
            let vendor = super::read_text(device.join("vendor")).ok()?;
            (vendor.trim() == VENDOR_AMD).then(|| (n, card(n, &device)))
        })
        .collect();
    cards.sort_by_key(|(n, _)| *n);
    cards.into_iter().map(|(_, c)| c).collect()
}

fn card(n: u32, device: &Path) -> Card {
    let text = |p: &Path| {
        super::read_text(p)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let name = text(&device.join("product_name")).unwrap_or_else(|| {
        format!(
            "AMD GPU {}",
            text(&device.join("device")).unwrap_or_else(|| "unknown".into())
        )
    });
    let mut fields = Vec::new();
    let mut add = |metric, path: PathBuf, divisor| {
        if path.is_file() {
            fields.push(Field {
                metric,
                path,
                divisor,
            });
        }
    };
    add(Metric::GpuUtilPct, device.join("gpu_busy_percent"), 1.0);
    add(
        Metric::GpuMemUsedBytes,
        device.join("mem_info_vram_used"),
        1.0,
    );
    add(
        Metric::GpuMemTotalBytes,
        device.join("mem_info_vram_total"),
        1.0,
    );
    // The card's first hwmon directory (amdgpu registers one).
    let hwmon = std::fs::read_dir(device.join("hwmon")).ok().and_then(|d| {
        let mut dirs: Vec<PathBuf> = d.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        dirs.sort();
        dirs.into_iter().next()
    });
    if let Some(h) = hwmon {
        add(Metric::GpuTempC, h.join("temp1_input"), 1000.0);
        let avg = h.join("power1_average");
        let power = if avg.is_file() {
            avg
        } else {
            h.join("power1_input")
        };
        add(Metric::GpuPowerW, power, 1e6);
    }
    Card {
        index: n.to_string(),
        name,
        fields,
    }
}

/// The series key of `metric` for `card`: labels `gpu`, `name` and `vendor="amd"`.
pub fn key(metric: Metric, card: &Card) -> SeriesKey {
    SeriesKey::custom(
        metric.name(),
        vec![
            ("gpu".to_owned(), card.index.clone()),
            ("name".to_owned(), card.name.clone()),
            ("vendor".to_owned(), "amd".to_owned()),
        ],
    )
}

/// One reading of every card's files; a file that cannot be read or parsed is left out
/// (`failing` logs it once until it recovers).
fn samples(cards: &[Card], failing: &mut Failing) -> Vec<Sample> {
    let mut out = Vec::new();
    for card in cards {
        for f in &card.fields {
            let source = format!("amdgpu {} {}", card.index, f.metric.name());
            if let Some(v) = failing.record(&source, read_number(&f.path)) {
                out.push((key(f.metric, card), v / f.divisor));
            }
        }
    }
    out
}

fn read_number(path: &Path) -> Result<f64, CollectError> {
    let shown = path.display().to_string();
    let text = super::read_text(path).map_err(|source| CollectError::Read {
        path: shown.clone(),
        source,
    })?;
    text.trim()
        .parse::<u64>()
        .map(|v| v as f64)
        .map_err(|_| parse_error(&shown, format!("'{}' is not a number", text.trim())))
}

/// Starts the AMD GPU collector thread if `enabled`; it finds the cards under `drm` and, with
/// none, logs `amd gpu collector off: ...` once and ends.
pub fn start(
    enabled: bool,
    drm: &Path,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    if !enabled {
        return None;
    }
    let drm = drm.to_owned();
    super::extra::spawn("collect-amdgpu", SOURCE, extras, stop, move |e, s| {
        run(&drm, interval, e, s)
    })
}

/// Finds the cards under `drm` and reads them every `interval` until `stop`.
pub fn run(drm: &Path, interval: Duration, extras: &Extras, stop: &Stop) {
    let cards = discover(drm);
    if cards.is_empty() {
        info!(drm = %drm.display(), "amd gpu collector off: no AMD GPU (vendor 0x1002) found");
        return;
    }
    let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
    info!(
        count = cards.len(),
        "amd gpu collector: {} AMD GPUs ({})",
        cards.len(),
        names.join(", ")
    );
    let mut failing = Failing::default();
    loop {
        extras.set(SOURCE, samples(&cards, &mut failing));
        if stop.sleep(interval) {
            break;
        }
    }
}

#[cfg(test)]
#[path = "amdgpu_tests.rs"]
mod tests;
