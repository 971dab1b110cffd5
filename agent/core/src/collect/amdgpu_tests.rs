//! The AMD collector on fixture sysfs trees (`tests/fixtures/amdgpu`): `mixed` has an MI210
//! with a power sensor (card0), an Intel iGPU (card1), an APU whose hwmon has no power file
//! (card2), a connector and a render node; `intel-only` has no AMD card.

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/amdgpu")
        .join(name)
}

fn shown(out: &[Sample]) -> Vec<String> {
    out.iter().map(|(k, v)| format!("{k} {v}")).collect()
}

#[test]
fn amd_cards_only_with_nvidia_names_and_a_vendor_label() {
    let cards = discover(&fixture("mixed"));
    let found: Vec<(&str, &str)> = cards
        .iter()
        .map(|c| (c.index.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        found,
        [("0", "AMD Instinct MI210"), ("2", "AMD GPU 0x1638")],
        "Intel card1, the connector and the render node are left out"
    );
    let out = samples(&cards, &mut Failing::default());
    let mi210 = "gpu=\"0\",name=\"AMD Instinct MI210\",vendor=\"amd\"";
    let apu = "gpu=\"2\",name=\"AMD GPU 0x1638\",vendor=\"amd\"";
    assert_eq!(
        shown(&out),
        [
            format!("gpu.util_pct{{{mi210}}} 37"),
            format!("gpu.mem_used_bytes{{{mi210}}} 1073741824"),
            format!("gpu.mem_total_bytes{{{mi210}}} 68702699520"),
            format!("gpu.temp_c{{{mi210}}} 45"),
            // power1_average is preferred over power1_input.
            format!("gpu.power_w{{{mi210}}} 88"),
            format!("gpu.util_pct{{{apu}}} 3"),
            format!("gpu.mem_used_bytes{{{apu}}} 268435456"),
            format!("gpu.mem_total_bytes{{{apu}}} 536870912"),
            format!("gpu.temp_c{{{apu}}} 51.5"),
            // No power sensor on the APU: no gpu.power_w, and nothing failing.
        ]
    );
}

#[test]
fn a_bad_file_is_left_out_until_it_reads_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = dir.path().join("card0/device");
    std::fs::create_dir_all(&busy).expect("mkdir");
    std::fs::write(busy.join("vendor"), "0x1002\n").expect("vendor");
    std::fs::write(busy.join("gpu_busy_percent"), "12\n").expect("busy");
    std::fs::write(busy.join("mem_info_vram_used"), "1024\n").expect("vram");
    let cards = discover(dir.path());
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].name, "AMD GPU unknown");
    let mut failing = Failing::default();
    assert_eq!(samples(&cards, &mut failing).len(), 2);
    std::fs::write(busy.join("gpu_busy_percent"), "garbage\n").expect("busy");
    std::fs::remove_file(busy.join("mem_info_vram_used")).expect("rm");
    assert!(samples(&cards, &mut failing).is_empty());
    assert_eq!(failing.0.len(), 2, "both logged as failing");
    std::fs::write(busy.join("gpu_busy_percent"), "99\n").expect("busy");
    let out = samples(&cards, &mut failing);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, 99.0);
    assert_eq!(failing.0.len(), 1, "util recovered");
}

#[test]
fn without_an_amd_card_the_thread_switches_itself_off() {
    let (extras, stop) = (Extras::default(), Stop::default());
    for root in [fixture("intel-only"), PathBuf::from("/nonexistent/drm")] {
        let t = start(true, &root, Duration::from_millis(200), &extras, &stop).expect("thread");
        t.join().expect("ends on its own");
        assert!(extras.get(SOURCE).is_none());
    }
    assert!(
        start(
            false,
            &fixture("mixed"),
            Duration::from_secs(1),
            &extras,
            &stop
        )
        .is_none()
    );
}

#[test]
fn run_publishes_until_stopped() {
    let (extras, stop) = (Extras::default(), Stop::default());
    stop.stop();
    run(&fixture("mixed"), Duration::from_secs(60), &extras, &stop);
    assert_eq!(extras.get(SOURCE).map(|v| v.len()), Some(9));
}
