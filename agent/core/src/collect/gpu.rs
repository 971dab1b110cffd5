//! The GPU collector (`collect.gpu`): per NVIDIA GPU utilisation, memory used and total,
//! temperature and power, read through NVML every `collect.interval` on a thread of its own and
//! published into [`Extras`] under the source `gpu`.
//!
//! NVML (`libnvidia-ml.so.1`) is loaded at run time by nvml-wrapper: on a machine without the
//! NVIDIA driver `Nvml::init()` fails and the collector switches itself off with one log line;
//! the binary runs the same everywhere. The NVML calls sit behind [`GpuSource`], so the mapping
//! from readings to series ([`samples`]) is tested with a fake.
//!
//! Not here: AMD/Intel GPUs, per-process GPU usage, MIG instances.

use super::{Extras, Sample, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use std::collections::HashSet;
use std::time::Duration;
use tracing::{info, warn};

/// The source name in [`Extras`].
pub const SOURCE: &str = "gpu";

/// One field of a reading: the value, or why the GPU could not give it.
pub type Field = Result<f64, String>;

/// One reading of one GPU, each field on its own: a GPU that cannot report its power still
/// reports its temperature.
#[derive(Debug, Clone)]
pub struct GpuReading {
    /// Utilisation of the GPU's compute engines over the driver's last sample period, percent.
    pub util_pct: Field,
    /// Framebuffer memory in use, bytes.
    pub mem_used_bytes: Field,
    /// Framebuffer memory installed, bytes.
    pub mem_total_bytes: Field,
    /// GPU die temperature, degrees Celsius.
    pub temp_c: Field,
    /// Power draw of the board, watts.
    pub power_w: Field,
}

/// Where GPU readings come from: NVML in the agent, a fake in tests.
pub trait GpuSource {
    /// How many GPUs there are.
    fn count(&self) -> u32;
    /// The product name of GPU `index` (e.g. `NVIDIA H100 80GB HBM3`).
    fn name(&self, index: u32) -> Result<String, String>;
    /// A reading of GPU `index`; an error means no field could be read (no device handle).
    fn read(&self, index: u32) -> Result<GpuReading, String>;
}

/// The real source: NVML, loaded and initialised once.
pub struct NvmlSource {
    nvml: Nvml,
    count: u32,
}

impl NvmlSource {
    /// Loads and initialises NVML; fails on a machine without the NVIDIA driver.
    pub fn init() -> Result<NvmlSource, String> {
        let nvml = Nvml::init().map_err(|e| e.to_string())?;
        let count = nvml.device_count().map_err(|e| e.to_string())?;
        Ok(NvmlSource { nvml, count })
    }
}

impl GpuSource for NvmlSource {
    fn count(&self) -> u32 {
        self.count
    }

    fn name(&self, index: u32) -> Result<String, String> {
        let dev = self
            .nvml
            .device_by_index(index)
            .map_err(|e| e.to_string())?;
        dev.name().map_err(|e| e.to_string())
    }

    fn read(&self, index: u32) -> Result<GpuReading, String> {
        let dev = self
            .nvml
            .device_by_index(index)
            .map_err(|e| e.to_string())?;
        let mem = dev.memory_info().map_err(|e| e.to_string());
        Ok(GpuReading {
            util_pct: dev
                .utilization_rates()
                .map(|u| f64::from(u.gpu))
                .map_err(|e| e.to_string()),
            mem_used_bytes: mem.as_ref().map(|m| m.used as f64).map_err(Clone::clone),
            mem_total_bytes: mem.as_ref().map(|m| m.total as f64).map_err(Clone::clone),
            temp_c: dev
                .temperature(TemperatureSensor::Gpu)
                .map(f64::from)
                .map_err(|e| e.to_string()),
            // NVML reports milliwatts.
            power_w: dev
                .power_usage()
                .map(|mw| f64::from(mw) / 1000.0)
                .map_err(|e| e.to_string()),
        })
    }
}

/// The series key of `metric` for GPU `index` named `name`: labels `gpu` and `name`.
pub fn key(metric: Metric, index: u32, name: &str) -> SeriesKey {
    SeriesKey::custom(
        metric.name(),
        vec![
            ("gpu".to_owned(), index.to_string()),
            ("name".to_owned(), name.to_owned()),
        ],
    )
}

/// Reads every GPU of `src` once. A failing field (or a whole GPU) is left out and logged once
/// per GPU and field; `failing` remembers what is failing now, so a failure is logged again
/// only after it has recovered.
pub fn samples(
    src: &dyn GpuSource,
    names: &[String],
    failing: &mut HashSet<(u32, &'static str)>,
) -> Vec<Sample> {
    let mut out = Vec::new();
    for (index, name) in (0..src.count()).zip(names) {
        let reading = match src.read(index) {
            Ok(r) => r,
            Err(error) => {
                note(failing, index, "device", Err(error));
                continue;
            }
        };
        note(failing, index, "device", Ok(0.0));
        for (metric, field, value) in [
            (Metric::GpuUtilPct, "util_pct", reading.util_pct),
            (
                Metric::GpuMemUsedBytes,
                "mem_used_bytes",
                reading.mem_used_bytes,
            ),
            (
                Metric::GpuMemTotalBytes,
                "mem_total_bytes",
                reading.mem_total_bytes,
            ),
            (Metric::GpuTempC, "temp_c", reading.temp_c),
            (Metric::GpuPowerW, "power_w", reading.power_w),
        ] {
            if let Some(v) = note(failing, index, field, value) {
                out.push((key(metric, index, name), v));
            }
        }
    }
    out
}

/// Logs `value`'s error when `(gpu, field)` starts failing; returns the value if there is one.
fn note(
    failing: &mut HashSet<(u32, &'static str)>,
    gpu: u32,
    field: &'static str,
    value: Field,
) -> Option<f64> {
    match value {
        Ok(v) => {
            if failing.remove(&(gpu, field)) {
                info!(gpu, field, "gpu reading recovered");
            }
            Some(v)
        }
        Err(error) => {
            if failing.insert((gpu, field)) {
                warn!(gpu, field, %error, "gpu reading failed; left out until it recovers");
            }
            None
        }
    }
}

/// Starts the GPU collector thread if `enabled`. NVML is initialised on that thread; without a
/// driver it logs `gpu collector off: NVML not available (...)` once and ends.
pub fn start(
    enabled: bool,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    if !enabled {
        info!("gpu collector off: collect.gpu = false");
        return None;
    }
    super::extra::spawn(
        "collect-gpu",
        "gpu",
        extras,
        stop,
        move |e, s| match NvmlSource::init() {
            Ok(src) => run(&src, interval, e, s),
            Err(error) => info!(%error, "gpu collector off: NVML not available"),
        },
    )
}

/// Reads `src` every `interval` until `stop`, publishing under [`SOURCE`].
pub fn run(src: &dyn GpuSource, interval: Duration, extras: &Extras, stop: &Stop) {
    let names: Vec<String> = (0..src.count())
        .map(|i| src.name(i).unwrap_or_else(|_| format!("GPU {i}")))
        .collect();
    if names.is_empty() {
        info!("gpu collector off: NVML is loaded but reports no GPUs");
        return;
    }
    info!(
        count = names.len(),
        "gpu collector: {} NVIDIA GPUs ({})",
        names.len(),
        names.join(", ")
    );
    let mut failing = HashSet::new();
    loop {
        extras.set(SOURCE, samples(src, &names, &mut failing));
        if stop.sleep(interval) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Two GPUs; GPU 1 cannot report power, and its handle fails while `broken` is set.
    struct Fake {
        broken: Cell<bool>,
    }

    impl GpuSource for Fake {
        fn count(&self) -> u32 {
            2
        }
        fn name(&self, index: u32) -> Result<String, String> {
            Ok(format!("Fake GPU {index}"))
        }
        fn read(&self, index: u32) -> Result<GpuReading, String> {
            if index == 1 && self.broken.get() {
                return Err("GPU is lost".into());
            }
            let i = f64::from(index);
            Ok(GpuReading {
                util_pct: Ok(10.0 + i),
                mem_used_bytes: Ok(1e9 + i),
                mem_total_bytes: Ok(8e10),
                temp_c: Ok(40.0 + i),
                power_w: if index == 1 {
                    Err("Not supported".into())
                } else {
                    Ok(250.5)
                },
            })
        }
    }

    fn value(out: &[Sample], name: &str, gpu: &str) -> Option<f64> {
        out.iter()
            .find(|(k, _)| k.name == name && k.label("gpu") == Some(gpu))
            .map(|(_, v)| *v)
    }

    #[test]
    fn readings_map_to_labelled_series_and_failing_fields_are_left_out() {
        let fake = Fake {
            broken: Cell::new(false),
        };
        let names = vec!["Fake GPU 0".to_owned(), "Fake GPU 1".to_owned()];
        let mut failing = HashSet::new();
        let out = samples(&fake, &names, &mut failing);
        assert_eq!(out.len(), 9, "5 series for GPU 0, 4 for GPU 1 (no power)");
        assert_eq!(value(&out, "gpu.util_pct", "0"), Some(10.0));
        assert_eq!(value(&out, "gpu.util_pct", "1"), Some(11.0));
        assert_eq!(value(&out, "gpu.mem_used_bytes", "1"), Some(1e9 + 1.0));
        assert_eq!(value(&out, "gpu.mem_total_bytes", "0"), Some(8e10));
        assert_eq!(value(&out, "gpu.temp_c", "1"), Some(41.0));
        assert_eq!(value(&out, "gpu.power_w", "0"), Some(250.5));
        assert_eq!(value(&out, "gpu.power_w", "1"), None);
        let k = &out[0].0;
        assert_eq!(
            k.to_string(),
            "gpu.util_pct{gpu=\"0\",name=\"Fake GPU 0\"}",
            "labels gpu and name, sorted"
        );
        assert!(failing.contains(&(1, "power_w")));

        fake.broken.set(true);
        let out = samples(&fake, &names, &mut failing);
        assert_eq!(out.len(), 5, "only GPU 0 while GPU 1 is lost");
        assert!(failing.contains(&(1, "device")));
        fake.broken.set(false);
        let out = samples(&fake, &names, &mut failing);
        assert_eq!(out.len(), 9);
        assert!(!failing.contains(&(1, "device")), "recovered");
    }

    #[test]
    fn run_publishes_until_stopped() {
        let fake = Fake {
            broken: Cell::new(false),
        };
        let (extras, stop) = (Extras::default(), Stop::default());
        stop.stop();
        run(&fake, Duration::from_secs(60), &extras, &stop);
        assert_eq!(extras.get(SOURCE).map(|v| v.len()), Some(9));
    }

    #[test]
    fn without_a_driver_the_collector_switches_itself_off() {
        // This test machine has no NVIDIA driver; on one that has, the thread keeps running
        // until stopped, which this test also accepts.
        let (extras, stop) = (Extras::default(), Stop::default());
        let t = start(true, Duration::from_millis(200), &extras, &stop).expect("thread");
        if NvmlSource::init().is_err() {
            t.join().expect("gpu thread ends on its own");
            assert!(extras.get(SOURCE).is_none(), "no metric without NVML");
        } else {
            stop.stop();
            t.join().expect("gpu thread");
        }
        assert!(start(false, Duration::from_secs(1), &extras, &stop).is_none());
    }
}
