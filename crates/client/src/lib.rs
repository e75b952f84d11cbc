//! The device runtime: analyses a video frame by frame, locally or on an edge server, and
//! reports every frame with its detections and where its time went.
//!
//! Frames come from a [`Capture`] (live or offline pace), are scaled to the configured
//! resolution, then either run through the local detector or are H.264-encoded and sent. In
//! stop-and-wait mode one frame is in flight; pipelined mode keeps up to K frames in flight.
//! A frame meant for the server is analysed locally when no session exists, the server refuses
//! or drops it, or its result misses the deadline — so no analysed frame is ever lost. Hedged
//! ([`RunOptions::hedge`]), the device runs its quickest detector on every remote frame while
//! it is in flight, and shows that result when the remote one would break the latency bound.
//! Latency breakdowns need no synchronised clocks: network time is the round trip minus the
//! durations the server reports.

mod auto;
mod capture;
mod record;
mod remote;

pub use auto::AutoOptions;
pub use capture::{Capture, Captured, Pace};
pub use record::{FrameRecord, RunSummary};
pub use remote::{Remote, Session};

use auto::{Auto, Knobs};
use deepoffload_core::{BBox, Config, Detection, LatencyBreakdown, Placement, RgbBuffer};
use deepoffload_detect::{DetectError, Detector, DetectorInfo};
use deepoffload_net::proto::{envelope::Body, error::Code, Config as WireConfig, Envelope, Frame};
use deepoffload_net::NetError;
use deepoffload_video::{
    EncoderSettings, FrameKind, H264Encoder, RateControl, Resizer, VideoError, VideoSource,
};
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use prost::Message;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many frames may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One frame at a time: the next is taken when the previous result is back (the study).
    StopAndWait,
    /// Up to `inflight` frames sent before the first result returns.
    Pipelined { inflight: usize },
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub placement: Placement,
    /// Analysed frame rate (sampled from the source); `None` keeps every frame.
    pub fps: Option<f64>,
    /// Resolution frames are scaled to; `None` keeps the source size.
    pub resolution: Option<(u32, u32)>,
    pub bitrate_bps: u32,
    pub rate_control: RateControl,
    pub keyframe_interval: u32,
    pub mode: Mode,
    pub pace: Pace,
    /// A remote result later than this after sending is abandoned and the frame runs locally.
    pub deadline: Duration,
    /// Hedge remote frames against this latency bound (after capture): the quickest local
    /// detector analyses each remote frame while it is in flight, and a remote result that
    /// has not come by the bound is not waited for — the stand-in's result is shown, on time.
    /// Costs device time on every hedged frame; under auto the controller says which frames
    /// (its `hedge` setting). `None` waits up to `deadline`, then runs the frame locally.
    pub hedge: Option<Duration>,
    pub max_frames: Option<u64>,
    /// Stop after this much source video (a live run's length).
    pub max_duration: Option<Duration>,
    /// Label of the device local figures belong to (`this-machine`, or "NAME (emulated)").
    pub device: String,
    /// Let the decision engine choose placement, resolution, frame rate and bit rate
    /// (`placement`, `fps`, `resolution` and `bitrate_bps` are then only the start).
    pub auto: Option<AutoOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            placement: Placement::Local,
            fps: None,
            resolution: None,
            bitrate_bps: 1_000_000,
            rate_control: RateControl::Cbr,
            keyframe_interval: 0,
            mode: Mode::StopAndWait,
            pace: Pace::Live,
            deadline: Duration::from_secs(1),
            hedge: None,
            max_frames: None,
            max_duration: None,
            device: "this-machine".into(),
            auto: None,
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{0}")]
    Usage(String),
}

type LocalDetector = Arc<Mutex<Box<dyn Detector>>>;

/// A local detector with its description (read without locking it: a stand-in may hold it).
type Local = (DetectorInfo, LocalDetector);

/// A frame after the outcome of its analysis, before its record is written.
struct Analysed {
    record: FrameRecord,
    /// Remote results update the detections repeated for skipped frames.
    fresh_remote: bool,
    /// A hedged frame's remote result, still on its way when the stand-in's was shown.
    late: Option<LateResult>,
}

/// A hedged frame's remote result after the stand-in's was shown: it measures the network
/// all the same, and how late the remote path is — the stand-in's own latency says nothing
/// of it. Listened for until the deadline.
type LateResult = Pin<Box<dyn Future<Output = Option<LateMeasure>> + Send>>;

/// What a late result measured (at the deadline when it did not come: lower bounds).
struct LateMeasure {
    at: Instant,
    bytes: u64,
    network_ms: f64,
    /// Capture to the result.
    latency_ms: f64,
}

type Pending = Pin<Box<dyn Future<Output = Analysed> + Send>>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Maps boxes from the analysed (scaled) frame to the source frame.
fn to_source(detections: Vec<Detection>, scale_x: f32, scale_y: f32) -> Vec<Detection> {
    detections
        .into_iter()
        .map(|mut d| {
            d.bbox = d.bbox.map(scale_x, scale_y, 0.0, 0.0);
            d
        })
        .collect()
}

/// Runs the local detector on a frame (on a blocking thread) and fills in the local parts of
/// the breakdown.
async fn detect_locally(
    detector: LocalDetector,
    image: Arc<RgbBuffer>,
    latency: &mut LatencyBreakdown,
) -> Result<Vec<Detection>, ClientError> {
    let output = tokio::task::spawn_blocking(move || {
        let mut d = detector.lock().expect("local detector");
        d.detect(image.view())
    })
    .await
    .map_err(|e| ClientError::Usage(format!("local detector task failed: {e}")))??;
    latency.local_preprocess_ms = ms(output.times.preprocess);
    latency.local_inference_ms = ms(output.times.inference);
    latency.local_postprocess_ms = ms(output.times.postprocess);
    Ok(output.detections)
}

/// The configuration a frame is analysed with, before it is known where it ran.
fn config_of(
    knobs: &Knobs,
    placement: Placement,
    model: &str,
    input: u32,
    source_fps: f64,
) -> Config {
    Config {
        placement,
        model: model.to_string(),
        input_size: input,
        width: knobs.width,
        height: knobs.height,
        fps: knobs.fps.unwrap_or(source_fps),
        bitrate_bps: if placement == Placement::Remote {
            knobs.bitrate_bps as u64
        } else {
            0
        },
    }
}

/// The detectors the device can run. Fixed placements use the first; under auto the controller
/// picks among them (each a model at an input size: on a slow phone a small input keeps local
/// results on time when the network fails), and a remote frame that misses its deadline falls
/// back to the one with the smallest input, the quickest.
pub struct LocalDetectors(pub Vec<Box<dyn Detector>>);

impl From<Box<dyn Detector>> for LocalDetectors {
    fn from(detector: Box<dyn Detector>) -> Self {
        Self(vec![detector])
    }
}

/// When a ping came back, its round trip (none: lost or timed out), and its padding.
type PingResult = (Instant, Option<Duration>, usize);

/// Runs a video through the runtime, handing every frame's record to `sink` in frame order.
pub async fn run(
    source: Box<dyn VideoSource>,
    local: impl Into<LocalDetectors>,
    remote: Option<&Remote>,
    options: &RunOptions,
    mut sink: impl FnMut(&FrameRecord) + Send,
) -> Result<RunSummary, ClientError> {
    if options.placement == Placement::Remote && remote.is_none() && options.auto.is_none() {
        return Err(ClientError::Usage(
            "remote placement needs a server (--server ADDR)".into(),
        ));
    }
    let info = source.info().clone();
    let (width, height) = options
        .resolution
        .unwrap_or((info.width & !1, info.height & !1));
    if width % 2 != 0 || height % 2 != 0 || width == 0 || height == 0 {
        return Err(ClientError::Usage(format!(
            "resolution {width}x{height}: H.264 needs positive even numbers"
        )));
    }
    let fps = options
        .fps
        .map(|f| if info.fps > 0.0 { f.min(info.fps) } else { f });
    let locals: Vec<Local> = local
        .into()
        .0
        .into_iter()
        .map(|d| (d.info().clone(), Arc::new(Mutex::new(d))))
        .collect();
    let Some(quickest) = (0..locals.len())
        .min_by_key(|&i| locals[i].0.input_width as u64 * locals[i].0.input_height as u64)
    else {
        return Err(ClientError::Usage("no local detector given".into()));
    };
    let mut knobs = Knobs {
        placement: options.placement,
        width,
        height,
        fps,
        bitrate_bps: options.bitrate_bps,
        local: 0,
    };
    let mut auto = options.auto.as_ref().map(|a| {
        Auto::new(
            a,
            locals
                .iter()
                .map(|(i, _)| (i.model.clone(), i.input_width as u32))
                .collect(),
            (info.width & !1, info.height & !1, info.fps),
        )
    });
    // Under auto the frame rate changes as it runs: the camera hands over every frame and the
    // loop samples at the current rate.
    let capture_fps = if auto.is_some() { None } else { fps };
    let mut capture = Capture::start(
        source,
        capture_fps,
        options.pace,
        options.max_frames,
        options.max_duration,
    );
    let mut resizer = Resizer::new();
    let mut encoder: Option<H264Encoder> = None;
    let need_keyframe = Arc::new(AtomicBool::new(false));
    let mut generation = 0u64;
    let mut seq = 0u64;
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut pings: FuturesUnordered<Pin<Box<dyn Future<Output = PingResult> + Send>>> =
        FuturesUnordered::new();
    let mut late_results: FuturesUnordered<LateResult> = FuturesUnordered::new();
    let mut next_ping = Instant::now();
    let mut records: Vec<FrameRecord> = Vec::new();
    let mut last_remote: Vec<Detection> = Vec::new();
    let mut first_capture: Option<Instant> = None;
    let run_start = Instant::now();
    let since_start = |t: Instant| (t - run_start).as_secs_f64();
    let mut source_done = false;
    loop {
        if let Some(a) = auto.as_mut() {
            let session = remote.and_then(Remote::current);
            let server = session
                .as_ref()
                .map(|s| s.connection.welcome())
                .map(|w| (w.model.clone(), w.input_size));
            if let Some(new) = a.poll(
                since_start(Instant::now()),
                server.as_ref().map(|(m, s)| (m.as_str(), *s)),
                &knobs,
            ) {
                if (new.width, new.height, new.bitrate_bps)
                    != (knobs.width, knobs.height, knobs.bitrate_bps)
                {
                    // A new encoder starts with a key frame at the new size and rate.
                    encoder = None;
                }
                knobs = new;
            }
            if let (Some(session), true) = (session, Instant::now() >= next_ping) {
                next_ping = Instant::now() + a.ping_every;
                // A bare ping, and right behind it a probe when the uplink estimate needs one.
                let probe = a.probe_bytes(since_start(Instant::now()));
                let paddings: &[usize] = if probe > 0 { &[0, probe] } else { &[0] };
                for &padding in paddings {
                    let session = session.clone();
                    pings.push(Box::pin(async move {
                        let rtt = tokio::time::timeout(
                            Duration::from_secs(2),
                            session.connection.probe(padding),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok);
                        (Instant::now(), rtt, padding)
                    }));
                }
            }
        }
        let inflight_limit = match (knobs.placement, options.mode) {
            (Placement::Remote, Mode::Pipelined { inflight }) => inflight.max(1),
            _ => 1,
        };
        // Keep the pipeline full.
        while !source_done && pending.len() < inflight_limit {
            let Some(item) = capture.next().await else {
                source_done = true;
                break;
            };
            let captured = item?;
            if let Some(a) = auto.as_mut() {
                if !a.keep(captured.pts, knobs.fps) {
                    continue;
                }
            }
            let (width, height) = (knobs.width, knobs.height);
            let captured_at = match options.pace {
                Pace::Live => captured.available_at,
                Pace::Fast => Instant::now(),
            };
            first_capture.get_or_insert(captured_at);
            let mut latency = LatencyBreakdown::default();
            let t_resize = Instant::now();
            latency.wait_ms = ms(t_resize - captured_at);
            let scaled = Arc::new(resizer.resize(captured.image.view(), width, height)?);
            latency.resize_ms = ms(t_resize.elapsed());
            let (sx, sy) = (
                captured.image.width() as f32 / width as f32,
                captured.image.height() as f32 / height as f32,
            );
            let record = FrameRecord {
                index: captured.index,
                pts_s: captured.pts.as_secs_f64(),
                capture_s: since_start(captured_at),
                placement: knobs.placement,
                config: config_of(
                    &knobs,
                    Placement::Local,
                    &locals[knobs.local].0.model,
                    locals[knobs.local].0.input_width as u32,
                    info.fps,
                ),
                detections: Vec::new(),
                latency,
                fallback: None,
                skipped: false,
                bytes_up: 0,
                bytes_down: 0,
                server_batch: None,
                stand_in_ms: None,
                device: options.device.clone(),
            };
            let session = match knobs.placement {
                Placement::Remote => remote.and_then(Remote::current),
                Placement::Local => None,
            };
            let future: Pending = match session {
                None => {
                    let fallback = (knobs.placement == Placement::Remote)
                        .then(|| "no session with the edge server".to_string());
                    // A remote frame without a session falls back like one past its deadline.
                    let detector = match knobs.placement {
                        Placement::Local => knobs.local,
                        Placement::Remote => quickest,
                    };
                    Box::pin(local_frame(
                        locals[detector].clone(),
                        scaled,
                        record,
                        captured_at,
                        (sx, sy),
                        fallback,
                        Duration::ZERO,
                    ))
                }
                Some(session) => {
                    if session.generation != generation {
                        // A new session has a fresh decoder: start with a key frame.
                        generation = session.generation;
                        seq = 0;
                        need_keyframe.store(true, Ordering::SeqCst);
                    }
                    let enc = match &mut encoder {
                        Some(e) => e,
                        None => encoder.insert(H264Encoder::new(EncoderSettings {
                            bitrate_bps: knobs.bitrate_bps,
                            max_fps: knobs.fps.unwrap_or(info.fps).max(1.0) as f32,
                            keyframe_interval: options.keyframe_interval,
                            rate_control: options.rate_control,
                            ..EncoderSettings::default()
                        })?),
                    };
                    if need_keyframe.swap(false, Ordering::SeqCst) {
                        enc.force_keyframe();
                    }
                    let t_encode = Instant::now();
                    let encoded = enc.encode(scaled.view(), captured.pts)?;
                    let mut record = record;
                    record.latency.encode_ms = ms(t_encode.elapsed());
                    let welcome = session.connection.welcome().clone();
                    record.config = config_of(
                        &knobs,
                        Placement::Remote,
                        &welcome.model,
                        welcome.input_size,
                        info.fps,
                    );
                    if encoded.kind == FrameKind::Skipped {
                        record.skipped = true;
                        record.latency.total_ms = ms(captured_at.elapsed());
                        record.latency.post_ms =
                            record.latency.total_ms - record.latency.parts_ms();
                        Box::pin(std::future::ready(Analysed {
                            record,
                            fresh_remote: false,
                            late: None,
                        }))
                    } else {
                        seq += 1;
                        let frame = Frame {
                            seq,
                            frame_index: captured.index,
                            capture_time_us: (captured_at - run_start).as_micros() as u64,
                            config: Some(WireConfig {
                                placement: "remote".into(),
                                model: welcome.model.clone(),
                                input_size: welcome.input_size,
                                width,
                                height,
                                fps: record.config.fps,
                                bitrate_bps: knobs.bitrate_bps as u64,
                            }),
                            h264: encoded.data,
                            keyframe: matches!(encoded.kind, FrameKind::Idr | FrameKind::I),
                        };
                        Box::pin(remote_frame(
                            session,
                            frame,
                            locals[quickest].clone(),
                            scaled,
                            record,
                            captured_at,
                            (sx, sy),
                            Cutoff {
                                deadline: options.deadline,
                                hedge_until: options
                                    .hedge
                                    .filter(|_| auto.as_ref().is_none_or(Auto::hedge_now))
                                    .map(|bound| captured_at + bound),
                                behind_late: !late_results.is_empty(),
                            },
                            need_keyframe.clone(),
                        ))
                    }
                }
            };
            pending.push_back(future);
        }
        // The next result; ping answers are taken meanwhile.
        let next = loop {
            tokio::select! {
                analysed = pending.next() => break analysed,
                Some(late) = late_results.next(), if !late_results.is_empty() => {
                    if let (Some(a), Some(m)) = (auto.as_mut(), late) {
                        a.on_late_result(since_start(m.at), m.bytes, m.network_ms, m.latency_ms);
                    }
                }
                Some((at, rtt, padding)) = pings.next(), if !pings.is_empty() => {
                    if let (Some(a), Some(rtt)) = (auto.as_mut(), rtt) {
                        if padding > 0 {
                            a.on_probe(since_start(at), padding, rtt);
                        } else {
                            a.on_ping(since_start(at), rtt);
                        }
                    }
                }
            }
        };
        let Some(mut analysed) = next else {
            break;
        };
        if let (Some(late), true) = (analysed.late.take(), auto.is_some()) {
            late_results.push(late);
        }
        if analysed.record.skipped {
            analysed.record.detections = last_remote.clone();
        } else if analysed.fresh_remote {
            last_remote = analysed.record.detections.clone();
        }
        if let Some(a) = auto.as_mut() {
            a.on_record(since_start(Instant::now()), &analysed.record);
        }
        sink(&analysed.record);
        records.push(analysed.record);
    }
    let wall = match (first_capture, records.last()) {
        (Some(first), Some(_)) => (Instant::now() - first).as_secs_f64(),
        _ => 0.0,
    };
    let mut summary =
        RunSummary::from_records(&records, wall, remote.map_or(0, Remote::reconnects));
    summary.missed_frames = capture.missed();
    if summary.missed_frames > 0 {
        tracing::info!(
            "{} frames arrived while the pipeline was busy and were not analysed",
            summary.missed_frames
        );
    }
    summary.reconnects = remote.map_or(0, Remote::reconnects);
    if let Some(a) = auto {
        summary.decisions = a.decisions;
    }
    Ok(summary)
}

/// A frame analysed on the device (by choice, or as a fallback after `spent` on the network).
async fn local_frame(
    (info, detector): Local,
    image: Arc<RgbBuffer>,
    mut record: FrameRecord,
    captured_at: Instant,
    scale: (f32, f32),
    fallback: Option<String>,
    spent: Duration,
) -> Analysed {
    let detections = detect_locally(detector, image, &mut record.latency).await;
    finish_local(
        &info,
        detections,
        record,
        captured_at,
        scale,
        fallback,
        spent,
    )
}

/// The record of a frame whose shown result came from the device.
fn finish_local(
    info: &DetectorInfo,
    detections: Result<Vec<Detection>, ClientError>,
    mut record: FrameRecord,
    captured_at: Instant,
    scale: (f32, f32),
    fallback: Option<String>,
    spent: Duration,
) -> Analysed {
    record.placement = Placement::Local;
    record.config.placement = Placement::Local;
    record.config.model = info.model.clone();
    record.config.input_size = info.input_width as u32;
    record.config.bitrate_bps = 0;
    record.fallback = fallback;
    record.latency.network_ms += ms(spent);
    match detections {
        Ok(detections) => record.detections = to_source(detections, scale.0, scale.1),
        Err(e) => {
            tracing::error!("frame {}: local detection failed: {e}", record.index);
            record.fallback = Some(format!("local detection failed: {e}"));
        }
    }
    record.latency.total_ms = ms(captured_at.elapsed());
    record.latency.post_ms = (record.latency.total_ms - record.latency.parts_ms()).max(0.0);
    Analysed {
        record,
        fresh_remote: false,
        late: None,
    }
}

/// How long a remote result is waited for.
#[derive(Debug, Clone, Copy)]
struct Cutoff {
    /// After sending.
    deadline: Duration,
    /// The hedge's latency bound (an instant after capture); `None`: no stand-in.
    hedge_until: Option<Instant>,
    /// An earlier frame's late result was still out when this one was sent: this frame's
    /// transfer may have waited behind it, so it does not time the link alone.
    behind_late: bool,
}

/// A frame sent to the server; falls back to local detection when the result does not come
/// (hedged: to the stand-in's result, computed meanwhile).
#[allow(clippy::too_many_arguments)]
async fn remote_frame(
    session: Session,
    frame: Frame,
    local: Local,
    image: Arc<RgbBuffer>,
    mut record: FrameRecord,
    captured_at: Instant,
    scale: (f32, f32),
    cutoff: Cutoff,
    need_keyframe: Arc<AtomicBool>,
) -> Analysed {
    record.bytes_up = Envelope {
        body: Some(Body::Frame(frame.clone())),
    }
    .encoded_len() as u64
        + 4;
    let sent = Instant::now();
    // The stand-in runs on its own task: its result is ready when the remote one is late,
    // and a remote result that comes in time leaves it to finish unseen.
    let stand_in = cutoff.hedge_until.map(|_| {
        let (detector, image) = (local.1.clone(), image.clone());
        tokio::spawn(async move {
            let mut latency = LatencyBreakdown::default();
            let detections = detect_locally(detector, image, &mut latency).await;
            (detections, latency)
        })
    });
    let until = match cutoff.hedge_until {
        Some(bound) => (sent + cutoff.deadline).min(bound.max(sent)),
        None => sent + cutoff.deadline,
    };
    let connection = session.connection.clone();
    let mut request = Box::pin(async move { connection.request(frame).await });
    let outcome = tokio::time::timeout_at(until.into(), request.as_mut()).await;
    let round_trip = sent.elapsed();
    let bytes_up = record.bytes_up;
    let timed_out = outcome.is_err();
    let reason = match outcome {
        Ok(Ok(result)) => {
            let received = Instant::now();
            record.bytes_down = Envelope {
                body: Some(Body::Result(result.clone())),
            }
            .encoded_len() as u64
                + 4;
            let t = result.times.unwrap_or_default();
            let us = |v: u32| v as f64 / 1e3;
            let server_total = us(t.total_us);
            record.latency.server_decode_ms = us(t.decode_us);
            record.latency.server_queue_ms = us(t.queue_us);
            record.latency.server_inference_ms = us(t.inference_us);
            record.latency.server_other_ms =
                (server_total - us(t.decode_us) - us(t.queue_us) - us(t.inference_us)).max(0.0);
            record.latency.network_ms = (ms(round_trip) - server_total).max(0.0);
            record.server_batch = Some(t.batch_size);
            let names = session.connection.welcome().class_names.clone();
            record.detections = result
                .detections
                .into_iter()
                .map(|d| Detection {
                    class_id: d.class_id,
                    class_name: names
                        .get(d.class_id as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("class{}", d.class_id)),
                    score: d.score,
                    objectness: d.objectness,
                    bbox: BBox {
                        x1: d.x1 * scale.0,
                        y1: d.y1 * scale.1,
                        x2: d.x2 * scale.0,
                        y2: d.y2 * scale.1,
                    },
                })
                .collect();
            record.latency.total_ms = ms(captured_at.elapsed());
            record.latency.post_ms = ms(received.elapsed());
            // Rounding of the server's microseconds: the network part absorbs it.
            let gap = record.latency.total_ms - record.latency.parts_ms();
            record.latency.network_ms = (record.latency.network_ms + gap).max(0.0);
            return Analysed {
                record,
                fresh_remote: true,
                late: None,
            };
        }
        Ok(Err(NetError::Remote { code, message })) => {
            if code == Code::DecodeFailed {
                need_keyframe.store(true, Ordering::SeqCst);
            }
            format!("server: {message}")
        }
        Ok(Err(e)) => format!("network: {e}"),
        Err(_) if stand_in.is_some() && until < sent + cutoff.deadline => {
            "no result within the latency bound: the stand-in's result is shown".into()
        }
        Err(_) => format!("no result within the {:?} deadline", cutoff.deadline),
    };
    match stand_in {
        Some(task) => {
            let late: Option<LateResult> = timed_out.then(|| {
                Box::pin(async move {
                    let network_ms =
                        match tokio::time::timeout_at((sent + cutoff.deadline).into(), request)
                            .await
                        {
                            Ok(Ok(result)) => {
                                let server_ms =
                                    result.times.unwrap_or_default().total_us as f64 / 1e3;
                                ms(sent.elapsed()) - server_ms
                            }
                            // The session ended: nothing measured.
                            Ok(Err(_)) => return None,
                            Err(_) => ms(cutoff.deadline),
                        };
                    Some(LateMeasure {
                        at: Instant::now(),
                        // Queued behind another frame: a latency sample, not a throughput one.
                        bytes: if cutoff.behind_late { 0 } else { bytes_up },
                        network_ms,
                        latency_ms: ms(captured_at.elapsed()),
                    })
                }) as LateResult
            });
            let (detections, latency) = match task.await {
                Ok(done) => done,
                Err(e) => (
                    Err(ClientError::Usage(format!("stand-in task failed: {e}"))),
                    LatencyBreakdown::default(),
                ),
            };
            // The breakdown follows the critical path: the wait for the network, then
            // whatever of the stand-in's work outlasted it (its parts in proportion).
            let device_ms = latency.local_preprocess_ms
                + latency.local_inference_ms
                + latency.local_postprocess_ms;
            let past_wait = if device_ms > 0.0 {
                ((device_ms - ms(round_trip)) / device_ms).max(0.0)
            } else {
                0.0
            };
            record.latency.local_preprocess_ms = latency.local_preprocess_ms * past_wait;
            record.latency.local_inference_ms = latency.local_inference_ms * past_wait;
            record.latency.local_postprocess_ms = latency.local_postprocess_ms * past_wait;
            record.stand_in_ms = Some(device_ms);
            let mut analysed = finish_local(
                &local.0,
                detections,
                record,
                captured_at,
                scale,
                Some(reason),
                round_trip,
            );
            analysed.late = late;
            analysed
        }
        None => {
            local_frame(
                local,
                image,
                record,
                captured_at,
                scale,
                Some(reason),
                round_trip,
            )
            .await
        }
    }
}
