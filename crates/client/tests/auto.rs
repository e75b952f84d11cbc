//! `--placement auto` end to end: a profile of the study's phone is measured here, the client
//! decides from it online against a real server on loopback, and follows the server going
//! away (to local, on the small detector that is on time) and coming back (to remote).

mod common;

use deepoffload_assets::{Store, StoreConfig};
use deepoffload_client::{AutoOptions, LocalDetectors, Mode, Pace, Remote, RunOptions};
use deepoffload_core::Placement;
use deepoffload_decide::{Candidates, Controller, ControllerSettings, Optimiser, Requirements};
use deepoffload_lab::{find_device, run_profile, Grid, ModelAt, ProfileRequest};
use deepoffload_net::Transport;
use std::time::Duration;

/// The phone: yolov4-tiny at 416 takes ~750 ms locally, yolov3-tiny at 160 about 90 ms (on
/// time, but it finds little on vtest); the server runs yolov4-tiny at 416.
fn phone_optimiser() -> Optimiser {
    let store = Store::from_env();
    deepoffload_detect::init_runtime(&store, None).expect("ONNX Runtime");
    let shared = StoreConfig::from_env().shared.expect("../shared");
    let grid = Grid {
        models: vec![ModelAt {
            model: "yolov4-tiny".into(),
            size: 416,
        }],
        device_models: vec![ModelAt {
            model: "yolov3-tiny".into(),
            size: 160,
        }],
        scales: vec![1.0, 0.5],
        fps: vec![10.0, 5.0],
        max_lag: 5,
        max_seconds: Some(10.0),
        latency_sizes: vec![416],
        latency_runs: 3,
        ..Grid::small()
    };
    let profile = run_profile(
        &store,
        &ProfileRequest {
            videos: vec![shared.join("videos/vtest.mp4")],
            grid,
            device: find_device("oneplus-3t", None).unwrap(),
            reference: ModelAt {
                model: "yolov4-tiny".into(),
                size: 416,
            },
            threads: 2,
            partial: None,
        },
    )
    .unwrap();
    Optimiser::new(
        Candidates::from_profile(&profile, deepoffload_core::Tracking::Off).unwrap(),
        deepoffload_decide::Mode::StopAndWait,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_follows_the_server_away_and_back() {
    let _turn = common::HEAVY.lock().await;
    let optimiser = tokio::task::spawn_blocking(phone_optimiser).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = common::server("yolov4-tiny", 416, addr, |_| {}).await;

    let store = Store::from_env();
    let source = deepoffload_video::open(&common::vtest(), &store, &Default::default()).unwrap();
    let remote = Remote::start(common::connect_options(addr, Transport::Tcp), None)
        .await
        .unwrap();
    let phone = |model: &str, size: usize, ms: u64| -> Box<dyn deepoffload_detect::Detector> {
        Box::new(deepoffload_detect::PaddedDetector::new(
            common::detector(model, size, 1),
            Duration::from_millis(ms),
            "oneplus-3t",
        ))
    };
    let local = LocalDetectors(vec![
        phone("yolov4-tiny", 416, 750),
        phone("yolov3-tiny", 160, 90),
    ]);
    let options = RunOptions {
        placement: Placement::Local,
        pace: Pace::Live,
        mode: Mode::StopAndWait,
        max_frames: Some(100),
        device: "oneplus-3t (emulated)".into(),
        auto: Some(AutoOptions {
            controller: Controller::new(
                optimiser,
                Requirements::default(),
                ControllerSettings::default(),
            ),
            ping_every: Duration::from_millis(500),
        }),
        ..RunOptions::default()
    };
    let client = tokio::spawn(async move {
        let mut records = Vec::new();
        let summary = deepoffload_client::run(source, local, Some(&remote), &options, |r| {
            records.push(r.clone())
        })
        .await
        .unwrap();
        (records, summary)
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let restarted = common::server("yolov4-tiny", 416, addr, |_| {}).await;
    let (records, summary) = client.await.unwrap();
    restarted.shutdown().await;

    let placements: Vec<Placement> = records.iter().map(|r| r.placement).collect();
    eprintln!(
        "{} frames, {} decisions: {}",
        records.len(),
        summary.decisions.len(),
        summary
            .decisions
            .iter()
            .filter(|d| d.previous.is_some())
            .map(|d| format!("{:.1}s {} ({})", d.time_s, d.chosen, d.reason))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(!summary.decisions.is_empty());
    assert!(summary.decisions.iter().all(|d| d.runner_up.is_some()));
    // The controller learns from what the pipeline observed: each frame's latency against its
    // prediction (the margin), and the server's own time against the profile.
    assert!(
        summary.decisions.iter().any(|d| d.prediction_errors >= 5),
        "no latency errors reached the controller"
    );
    assert!(
        summary.decisions.iter().any(|d| d.server_scale != 1.0),
        "no server time reached the controller"
    );
    // Remote while the server is up (more accurate than anything on time locally).
    let first_remote = placements
        .iter()
        .position(|&p| p == Placement::Remote)
        .expect("offloaded while the server was up");
    let went_local = placements[first_remote..]
        .iter()
        .position(|&p| p == Placement::Local)
        .map(|i| i + first_remote)
        .expect("ran locally while the server was down");
    assert!(
        placements[went_local..].contains(&Placement::Remote),
        "back to remote after the server returned: {placements:?}"
    );
    // Without the server it ran the detector that is on time (160: ~90 ms), not 750 ms.
    let local_sizes: Vec<u32> = records
        .iter()
        .filter(|r| r.placement == Placement::Local && r.fallback.is_none())
        .map(|r| r.config.input_size)
        .collect();
    assert!(
        local_sizes.contains(&160),
        "local frames ran at {local_sizes:?}"
    );
    // The controller, not a fallback, moved it: a decision chose local and one chose remote
    // again after it.
    let changes: Vec<Placement> = summary
        .decisions
        .iter()
        .filter(|d| d.previous.is_some())
        .map(|d| d.chosen.placement)
        .collect();
    let local_at = changes
        .iter()
        .position(|&p| p == Placement::Local)
        .expect("a decision to go local");
    assert!(changes[local_at..].contains(&Placement::Remote));
    // Every record carries the configuration it ran with; resolutions are the profile's.
    for r in &records {
        assert!(
            [(768, 576), (384, 288)].contains(&(r.config.width, r.config.height)),
            "{:?}",
            r.config
        );
    }
}
