//! The real pipeline on loopback: an edge server started in-process, and client runs over the
//! link emulator — what the live experiments and the demo measure with.

use anyhow::{Context, Result};
use deepoffload_assets::Store;
use deepoffload_client::{DisplayRecord, FrameRecord, Remote, RunOptions, RunSummary};
use deepoffload_core::RgbImageRef;
use deepoffload_detect::{Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector};
use deepoffload_edge::{RunningServer, ServerOptions};
use deepoffload_lab::DeviceClass;
use deepoffload_net::link::LinkSpec;
use deepoffload_net::{ConnectOptions, Transport};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The per-run secret between our own client and server.
const TOKEN: &str = "deepoffload-study";

/// `model` imported at `size`, with its detector on `threads` ONNX Runtime threads.
fn load(
    store: &Store,
    model: &str,
    size: u32,
    threads: usize,
) -> Result<(ImportedModel, YoloDetector)> {
    deepoffload_detect::init_runtime(store, None)?;
    let imported = ImportedModel::load(
        store,
        model,
        Some(size as usize),
        &ModelOverrides::default(),
    )?;
    let detector = YoloDetector::new(
        &imported,
        DetectorOptions {
            threads,
            ..DetectorOptions::default()
        },
    )?;
    Ok((imported, detector))
}

/// A detector for `model` at `size` with `threads` ONNX Runtime threads.
pub fn detector(store: &Store, model: &str, size: u32, threads: usize) -> Result<YoloDetector> {
    Ok(load(store, model, size, threads)?.1)
}

/// The device's local detector (emulating `device`) with its label for records.
pub fn device_detector(
    store: &Store,
    device: &DeviceClass,
    model: &str,
    size: u32,
) -> Result<(Box<dyn Detector>, String)> {
    let (imported, detector) = load(store, model, size, 1)?;
    device
        .emulate(&imported, Box::new(detector))
        .map_err(anyhow::Error::msg)
}

/// An edge server on loopback.
pub struct Testbed {
    server: RunningServer,
    pub addr: SocketAddr,
    /// `model@size` the server runs.
    pub server_model: String,
}

impl Testbed {
    /// Starts a server running `model` at `size` on a free loopback port.
    pub async fn start(store: &Store, model: &str, size: u32) -> Result<Self> {
        let detector = tokio::task::block_in_place(|| detector(store, model, size, 2))?;
        let server = deepoffload_edge::start(
            ServerOptions {
                listen_tcp: Some(([127, 0, 0, 1], 0).into()),
                listen_quic: None,
                http: None,
                token: Some(TOKEN.into()),
                server_name: "deepoffload-study".into(),
                ..ServerOptions::default()
            },
            Box::new(detector),
        )
        .await?;
        let addr = server
            .tcp_addr
            .context("the server opened no TCP listener")?;
        Ok(Self {
            server,
            addr,
            server_model: format!("{model}@{size}"),
        })
    }

    /// One client run of `video` through `link` (none: straight loopback).
    pub async fn run(
        &self,
        store: &Store,
        video: &Path,
        local: Box<dyn Detector>,
        link: Option<LinkSpec>,
        options: &RunOptions,
        sink: impl FnMut(&FrameRecord) + Send,
    ) -> Result<RunSummary> {
        self.run_displayed(store, video, local, link, options, sink, |_, _| {})
            .await
    }

    /// [`run`](Self::run), also handing every displayed frame (record and camera frame) to
    /// `display`.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_displayed(
        &self,
        store: &Store,
        video: &Path,
        local: Box<dyn Detector>,
        link: Option<LinkSpec>,
        options: &RunOptions,
        sink: impl FnMut(&FrameRecord) + Send,
        display: impl FnMut(&DisplayRecord, RgbImageRef<'_>) + Send,
    ) -> Result<RunSummary> {
        let source = deepoffload_video::open(video, store, &Default::default())?;
        let remote = Remote::start(
            ConnectOptions {
                addr: self.addr,
                transport: Transport::Tcp,
                token: TOKEN.into(),
                client_name: "deepoffload-study".into(),
                device_class: options.device.clone(),
                ca: None,
                timeout: Duration::from_secs(3),
            },
            link,
        )
        .await?;
        Ok(
            deepoffload_client::run_displayed(source, local, Some(&remote), options, sink, display)
                .await?,
        )
    }

    /// One run with the device class's own local detector (emulated), its label put in the
    /// options — the runs of the live experiments, which keep no per-frame records.
    pub async fn run_on_device(
        &self,
        store: &Store,
        video: &Path,
        device: &DeviceClass,
        (model, size): (&str, u32),
        link: Option<LinkSpec>,
        mut options: RunOptions,
    ) -> Result<RunSummary> {
        let (local, label) = device_detector(store, device, model, size)?;
        options.device = label;
        self.run(store, video, local, link, &options, |_| {}).await
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}
