//! The demo end to end on a shortened script — real server, client, H.264, link emulator — and
//! then every experiment on the demo's profile, each leaving its CSV, its plots and an outcome
//! the report sets beside the study's claim.

use deepoffload_assets::{Store, StoreConfig};
use deepoffload_lab::find_device;
use deepoffload_study::demo::{self, DemoOptions};
use deepoffload_study::experiments::Experiment;
use deepoffload_study::{Outcome, Study};

/// A PNG with a title, axes and labels drawn has plenty of dark pixels.
fn assert_drawn(path: &std::path::Path) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let dark = img.pixels().filter(|p| p.0.iter().all(|c| *c < 90)).count();
    assert!(
        dark > 2_000,
        "{} looks empty ({dark} dark pixels)",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_switches_both_ways_and_every_experiment_reports() {
    let shared = StoreConfig::from_env()
        .shared
        .expect("run beside ../shared (or set DEEPOFFLOAD_SHARED)");
    let out = tempfile::tempdir().unwrap();
    let device = find_device("oneplus-3t", None).unwrap();

    // Half-length script: 6 s WiFi, 5 s congestion, 7 s LTE, 4 s outage, 6 s recovery.
    let outcome = demo::run(DemoOptions {
        store: Store::from_env(),
        out: out.path().to_path_buf(),
        video: shared.join("videos/vtest.mp4"),
        device: device.clone(),
        profile: None,
        time_scale: 0.5,
    })
    .await
    .unwrap();
    eprintln!("{}", outcome.table);
    let (to_local, to_remote) = outcome.switches;
    assert!(
        to_local >= 1 && to_remote >= 1,
        "adaptive must leave the server in the outage and come back: {to_local} remote→local, {to_remote} local→remote"
    );
    for policy in ["adaptive", "local-only", "remote-only"] {
        assert!(
            outcome.table.contains(policy),
            "{policy} missing from the summary"
        );
    }
    let report = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(report.contains("The demo") && report.contains("data:image/png;base64,"));
    let frames = std::fs::read_dir(&outcome.frames_dir).unwrap().count();
    assert!(frames >= 20, "one annotated frame per second: {frames}");
    assert_drawn(&out.path().join("demo/timeline-latency.png"));

    // The experiments, on the demo's profile, with short live runs.
    let mut study = Study::new(Store::from_env(), out.path().to_path_buf(), device).unwrap();
    study.profile_path = Some(out.path().join("demo-profile-oneplus-3t.json"));
    study.live_seconds = 2.0;
    for e in Experiment::ALL {
        let outcome = e
            .run(&mut study)
            .await
            .unwrap_or_else(|err| panic!("{}: {err:#}", e.name()));
        assert!(!outcome.finding.is_empty() && !outcome.figures.is_empty());
        for f in outcome.figures.iter().chain(&outcome.tables) {
            let path = out.path().join(e.name()).join(f);
            assert!(path.exists(), "{} missing", path.display());
            if f.ends_with(".png") {
                assert_drawn(&path);
            }
        }
    }
    assert_eq!(Outcome::read_all(out.path()).len(), Experiment::ALL.len());
    let (html, md) = deepoffload_study::report::write(out.path(), None).unwrap();
    let md = std::fs::read_to_string(md).unwrap();
    assert!(!md.contains("Not run yet"), "{md}");
    for e in Experiment::ALL {
        assert!(
            md.contains(&format!("<a id=\"{}\"></a>", e.name())),
            "{} not in the report",
            e.name()
        );
    }
    let fps_rtt: Outcome = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("fps-rtt").join(Outcome::FILE)).unwrap(),
    )
    .unwrap();
    assert!(
        fps_rtt.numbers["crossover_ms"].as_f64().is_some(),
        "the crossover is stated: {}",
        fps_rtt.finding
    );
    assert!(
        std::fs::metadata(html).unwrap().len() > 50_000,
        "plots are inlined"
    );
}
