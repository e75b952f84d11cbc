//! Shared set-up of the offloading tests: models, servers, clients on loopback.
#![allow(dead_code)]

use deepoffload_assets::{Store, StoreConfig};
use deepoffload_client::{FrameRecord, Mode, Pace, Remote, RunOptions, RunSummary};
use deepoffload_core::Placement;
use deepoffload_detect::{
    init_runtime, Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector,
};
use deepoffload_edge::{RunningServer, ServerOptions};
use deepoffload_net::link::LinkSpec;
use deepoffload_net::{ConnectOptions, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const TOKEN: &str = "test-token";

/// The offloading tests measure throughput and latency on a 2-core machine: they take turns so
/// one test's load does not distort another's figures.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn shared() -> PathBuf {
    match StoreConfig::from_env().shared {
        Some(dir) if dir.join("videos").is_dir() => dir,
        _ => panic!(
            "no shared directory with videos/: run beside ../shared or set DEEPOFFLOAD_SHARED"
        ),
    }
}

pub fn vtest() -> PathBuf {
    shared().join("videos/vtest.mp4")
}

pub fn detector(model: &str, size: usize, threads: usize) -> Box<dyn Detector> {
    let store = Store::from_env();
    init_runtime(&store, None).expect("ONNX Runtime");
    let imported =
        ImportedModel::load(&store, model, Some(size), &ModelOverrides::default()).unwrap();
    Box::new(
        YoloDetector::new(
            &imported,
            DetectorOptions {
                threads,
                ..DetectorOptions::default()
            },
        )
        .unwrap(),
    )
}

pub async fn server(
    model: &str,
    size: usize,
    addr: SocketAddr,
    options: impl FnOnce(&mut ServerOptions),
) -> RunningServer {
    server_with_threads(model, size, 2, addr, options).await
}

/// A server whose detector runs on `threads` ONNX Runtime threads.
pub async fn server_with_threads(
    model: &str,
    size: usize,
    threads: usize,
    addr: SocketAddr,
    options: impl FnOnce(&mut ServerOptions),
) -> RunningServer {
    let mut o = ServerOptions {
        listen_tcp: Some(addr),
        listen_quic: None,
        http: Some("127.0.0.1:0".parse().unwrap()),
        token: Some(TOKEN.into()),
        ..ServerOptions::default()
    };
    options(&mut o);
    deepoffload_edge::start(o, detector(model, size, threads))
        .await
        .unwrap()
}

pub fn connect_options(addr: SocketAddr, transport: Transport) -> ConnectOptions {
    ConnectOptions {
        addr,
        transport,
        token: TOKEN.into(),
        client_name: "test".into(),
        device_class: "test".into(),
        ca: None,
        timeout: Duration::from_secs(3),
    }
}

pub struct Run {
    pub records: Vec<FrameRecord>,
    /// When each record reached the sink.
    pub emitted: Vec<std::time::Instant>,
    pub summary: RunSummary,
}

/// Runs vtest through the client against `addr` (optionally through an emulated link).
pub async fn run(
    addr: SocketAddr,
    link: Option<&str>,
    mode: Mode,
    frames: u64,
    configure: impl FnOnce(&mut RunOptions),
) -> Run {
    run_over(addr, Transport::Tcp, link, mode, frames, configure).await
}

/// As [`run`], over a chosen transport.
pub async fn run_over(
    addr: SocketAddr,
    transport: Transport,
    link: Option<&str>,
    mode: Mode,
    frames: u64,
    configure: impl FnOnce(&mut RunOptions),
) -> Run {
    let store = Store::from_env();
    let source = deepoffload_video::open(&vtest(), &store, &Default::default()).unwrap();
    let remote = Remote::start(
        connect_options(addr, transport),
        link.map(|l| LinkSpec::parse(l).unwrap()),
    )
    .await
    .unwrap();
    let mut options = RunOptions {
        placement: Placement::Remote,
        resolution: Some((640, 480)),
        bitrate_bps: 1_000_000,
        mode,
        pace: Pace::Fast,
        max_frames: Some(frames),
        ..RunOptions::default()
    };
    configure(&mut options);
    let (mut records, mut emitted) = (Vec::new(), Vec::new());
    let summary = deepoffload_client::run(
        source,
        detector("yolov3-tiny", 416, 1),
        Some(&remote),
        &options,
        |r| {
            records.push(r.clone());
            emitted.push(std::time::Instant::now());
        },
    )
    .await
    .unwrap();
    Run {
        records,
        emitted,
        summary,
    }
}
