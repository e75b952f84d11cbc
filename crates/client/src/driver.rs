//! The tokio driver of the device pipeline: it owns the camera, the detectors, the encoder and
//! the session, hands the pipeline what happens (with the time since the run started), and
//! carries out what it asks. No per-frame rule lives here: deadlines, fallback, hedging, late
//! results and samples are all `deepoffload_pipeline`'s.

use crate::capture::{Capture, Pace};
use crate::configs::{RunPolicy, Table};
use crate::display::Display;
use crate::record::{DisplayRecord, FrameRecord};
use crate::remote::{Remote, Session};
use crate::{ClientError, RunOptions};
use deepoffload_core::{BBox, Config, Detection, Placement, RgbBuffer, RgbImageRef};
use deepoffload_detect::{Detector, DetectorInfo};
use deepoffload_net::proto::{envelope::Body, error::Code, Config as WireConfig, Frame};
use deepoffload_net::wire::{envelope, wire_len};
use deepoffload_net::NetError;
use deepoffload_pipeline::{
    Action, Captured, DeviceTimes, FrameId, LocalResult, Pipeline, RemoteResult, SessionInfo, Shown,
};
use deepoffload_video::{EncoderSettings, FrameKind, H264Encoder, Resizer};
use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) type LocalDetector = Arc<Mutex<Box<dyn Detector>>>;

/// Something a task finished.
enum Done {
    Local(FrameId, LocalResult),
    StandIn(FrameId, LocalResult),
    Remote(FrameId, Instant, Result<RemoteResult, (String, bool)>),
    Pong(usize, Option<Duration>),
}

/// A frame the pipeline took: its scaled image, and how to map boxes back to the source.
struct Taken {
    image: Arc<RgbBuffer>,
    scale: (f32, f32),
    index: u64,
    pts: Duration,
    resize_ms: f64,
}

/// The encoder for the configuration in force (a new one starts with a key frame).
struct Encoding {
    encoder: H264Encoder,
    key: (u32, u32, u64),
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Maps boxes from the analysed (scaled) frame to the source frame.
fn to_source(detections: Vec<Detection>, (sx, sy): (f32, f32)) -> Vec<Detection> {
    detections
        .into_iter()
        .map(|mut d| {
            d.bbox = d.bbox.map(sx, sy, 0.0, 0.0);
            d
        })
        .collect()
}

pub(crate) struct Driver<'a> {
    pub pipeline: Pipeline<RunPolicy>,
    table: Table,
    locals: Vec<(DetectorInfo, LocalDetector)>,
    remote: Option<&'a Remote>,
    options: &'a RunOptions,
    source_fps: f64,
    start: Instant,
    resizer: Resizer,
    encoding: Option<Encoding>,
    session: Option<Session>,
    taken: HashMap<FrameId, Taken>,
    requests: HashMap<FrameId, AbortHandle>,
    tasks: FuturesUnordered<BoxFuture<'static, Done>>,
    pub records: Vec<FrameRecord>,
    pub first_capture: Option<Instant>,
    frames_taken: u64,
    /// The camera frame just taken, until its `Analyse` action scales it.
    captured: Option<crate::capture::Captured>,
    /// Live: the newest camera frame the pipeline was not ready for (it takes it when ready,
    /// as it would from the camera).
    pending: Option<crate::capture::Captured>,
    /// The frames the user sees, and the tracker.
    pub display: Display,
}

type FrameSink<'s> = dyn FnMut(&FrameRecord) + Send + 's;
type DisplaySink<'s> = dyn FnMut(&DisplayRecord, RgbImageRef<'_>) + Send + 's;

impl<'a> Driver<'a> {
    pub fn new(
        pipeline: Pipeline<RunPolicy>,
        table: Table,
        locals: Vec<(DetectorInfo, LocalDetector)>,
        remote: Option<&'a Remote>,
        options: &'a RunOptions,
        source_fps: f64,
    ) -> Self {
        Self {
            pipeline,
            table,
            locals,
            remote,
            options,
            source_fps,
            start: Instant::now(),
            resizer: Resizer::new(),
            encoding: None,
            session: None,
            taken: HashMap::new(),
            requests: HashMap::new(),
            tasks: FuturesUnordered::new(),
            records: Vec::new(),
            first_capture: None,
            frames_taken: 0,
            captured: None,
            pending: None,
            display: Display::new(
                options.track,
                options.display_fps,
                source_fps,
                options.deadline.as_secs_f64() + 2.0,
            ),
        }
    }

    fn now(&self) -> f64 {
        self.since(Instant::now())
    }

    fn since(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Runs the camera through the pipeline, handing every record to `sink` in frame order
    /// and every displayed frame to `display`.
    ///
    /// Live, every camera frame reaches the driver (to be displayed) and the newest one waits
    /// for the pipeline to be ready, as the camera's slot would hold it; offline (`Fast`) a
    /// frame is read only when the pipeline is ready for one, so every frame passes both.
    pub async fn run(
        &mut self,
        capture: &mut Capture,
        sink: &mut FrameSink<'_>,
        display: &mut DisplaySink<'_>,
    ) -> Result<(), ClientError> {
        let mut source_done = false;
        loop {
            self.follow_session();
            self.carry_out(sink)?;
            let wants = !self.stopped()
                && (!source_done || self.pending.is_some())
                && self.pipeline.wants_frame(self.now());
            if wants && self.pending.is_some() {
                // The camera may hold a newer frame than the one waiting: the pipeline takes
                // the newest, as it would from the camera's slot.
                while let Some(item) = capture.try_next() {
                    let captured = item?;
                    self.displayed(&captured, display);
                    self.pending = Some(captured);
                }
                if let Some(pending) = self.pending.take() {
                    // Already displayed when it came.
                    self.offer(pending, &mut source_done);
                    self.track_taken();
                    continue;
                }
            }
            if self.stopped() {
                self.pending = None;
            }
            if (source_done || self.stopped()) && self.pipeline.in_flight() == 0 {
                return Ok(());
            }
            let read =
                !source_done && !self.stopped() && (wants || self.options.pace == Pace::Live);
            let timer = self.pipeline.poll_timeout().map(|t| {
                tokio::time::Instant::from_std(self.start + Duration::from_secs_f64(t.max(0.0)))
            });
            tokio::select! {
                biased;
                Some(done) = self.tasks.next(), if !self.tasks.is_empty() => self.finished(done),
                _ = tokio::time::sleep_until(timer.unwrap_or_else(tokio::time::Instant::now)),
                    if timer.is_some() => {
                    let now = self.now();
                    self.pipeline.handle_timeout(now);
                }
                item = capture.next(), if read => match item {
                    None => source_done = true,
                    Some(item) => {
                        let captured = item?;
                        if wants {
                            // The pipeline first, then the display: the pipeline's actions are
                            // carried out (and its results come) only after both.
                            match self.offer(captured, &mut source_done) {
                                Some(refused) => self.displayed(&refused, display),
                                None => {
                                    let taken = self.captured.take();
                                    if let Some(taken) = &taken {
                                        self.displayed(taken, display);
                                    }
                                    self.captured = taken;
                                    self.track_taken();
                                }
                            }
                        } else {
                            self.displayed(&captured, display);
                            self.pending = Some(captured);
                        }
                    }
                },
                // Periodic wake-ups keep pings and session changes going while idle.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// `--max-frames` reached: no more frames are taken or displayed.
    fn stopped(&self) -> bool {
        self.options
            .max_frames
            .is_some_and(|m| self.frames_taken >= m)
    }

    /// A camera frame on the display grid becomes a displayed frame.
    fn displayed(&mut self, captured: &crate::capture::Captured, display: &mut DisplaySink<'_>) {
        let shown_s = self.now();
        let record = self.display.frame(
            captured.index,
            captured.pts.as_secs_f64(),
            shown_s,
            captured.image.view(),
        );
        if let Some(record) = record {
            display(&record, captured.image.view());
        }
    }

    /// The frame the pipeline just took goes into the tracker's ring also when it is not on
    /// the display grid: its result is brought forward from it.
    fn track_taken(&mut self) {
        if let Some(c) = &self.captured {
            self.display
                .analysed(c.index, c.pts.as_secs_f64(), c.image.view());
        }
    }

    /// Hands a camera frame to the pipeline; returns it when the pipeline does not take it
    /// (else it waits in `captured` for its `Analyse` action).
    fn offer(
        &mut self,
        captured: crate::capture::Captured,
        source_done: &mut bool,
    ) -> Option<crate::capture::Captured> {
        let at = match self.options.pace {
            Pace::Live => captured.available_at,
            Pace::Fast => Instant::now(),
        };
        let frame = Captured {
            index: captured.index,
            pts_s: captured.pts.as_secs_f64(),
            captured_s: self.since(at),
        };
        let now = self.now();
        if self.pipeline.handle_frame(now, frame) {
            self.first_capture.get_or_insert(at);
            self.frames_taken += 1;
            self.captured = Some(captured);
            if self.stopped() {
                *source_done = true;
            }
            None
        } else {
            Some(captured)
        }
    }

    /// Tells the pipeline about a new session, or the loss of one.
    fn follow_session(&mut self) {
        let current = self.remote.and_then(Remote::current);
        let changed = match (&current, &self.session) {
            (Some(a), Some(b)) => a.generation != b.generation,
            (None, None) => false,
            _ => true,
        };
        if !changed {
            return;
        }
        let info = current.as_ref().map(|s| {
            let w = s.connection.welcome();
            SessionInfo {
                generation: s.generation,
                model: w.model.clone(),
                input_size: w.input_size,
            }
        });
        self.session = current;
        let now = self.now();
        self.pipeline.handle_session(now, info);
    }

    /// Scales the frame just taken to the resolution of configuration `config`.
    fn prepare(&mut self, frame: FrameId, config: usize) -> Result<(), ClientError> {
        let Some(captured) = self.captured.take().filter(|c| c.index == frame) else {
            return Ok(());
        };
        let c = &self.table.configs[config];
        let (width, height) = (c.width, c.height);
        let t = Instant::now();
        let scaled = self.resizer.resize(captured.image.view(), width, height)?;
        let resize_ms = ms(t.elapsed());
        self.taken.insert(
            frame,
            Taken {
                image: Arc::new(scaled),
                scale: (
                    captured.image.width() as f32 / width as f32,
                    captured.image.height() as f32 / height as f32,
                ),
                index: captured.index,
                pts: captured.pts,
                resize_ms,
            },
        );
        Ok(())
    }

    fn finished(&mut self, done: Done) {
        let now = self.now();
        match done {
            Done::Local(frame, result) => {
                let resize_ms = self.taken.get(&frame).map_or(0.0, |t| t.resize_ms);
                self.pipeline
                    .handle_local_result(now, frame, resize_ms, result);
            }
            Done::StandIn(frame, result) => {
                self.pipeline.handle_stand_in_result(now, frame, result)
            }
            Done::Remote(frame, at, outcome) => {
                self.requests.remove(&frame);
                let at = self.since(at);
                match outcome {
                    Ok(result) => self.pipeline.handle_remote_result(at, frame, result),
                    Err((reason, decode_failed)) => {
                        self.pipeline
                            .handle_remote_error(at, frame, reason, decode_failed)
                    }
                }
            }
            Done::Pong(padding, rtt) => {
                if let Some(rtt) = rtt {
                    self.pipeline.handle_pong(now, padding, ms(rtt));
                }
            }
        }
    }

    /// Carries out what the pipeline asks.
    fn carry_out(&mut self, sink: &mut FrameSink<'_>) -> Result<(), ClientError> {
        while let Some(action) = self.pipeline.poll_action() {
            match action {
                Action::Analyse {
                    frame,
                    config,
                    detector,
                    keyframe,
                } => {
                    self.prepare(frame, config)?;
                    match detector {
                        Some(d) => self.detect(frame, d, false),
                        None => self.offload(frame, config, keyframe)?,
                    }
                }
                Action::RunLocal { frame, detector } => self.detect(frame, detector, false),
                Action::RunStandIn { frame, detector } => self.detect(frame, detector, true),
                Action::Cancel { frame } => {
                    if let Some(handle) = self.requests.remove(&frame) {
                        handle.abort();
                    }
                }
                Action::Show(shown) => {
                    let config = self.shown_config(&shown);
                    self.display.show(&shown, &config);
                    let record = FrameRecord::new(*shown, config, self.options.device.clone());
                    sink(&record);
                    self.records.push(record);
                }
                Action::Release { frame } => {
                    self.taken.remove(&frame);
                }
                Action::Ping { padding } => self.ping(padding),
            }
        }
        Ok(())
    }

    /// Runs local detector `d` on a taken frame, on a blocking thread.
    fn detect(&mut self, frame: FrameId, d: usize, stand_in: bool) {
        let Some(taken) = self.taken.get(&frame) else {
            return;
        };
        let (detector, image, scale) = (self.locals[d].1.clone(), taken.image.clone(), taken.scale);
        self.tasks.push(Box::pin(async move {
            let output = tokio::task::spawn_blocking(move || {
                let mut d = detector.lock().expect("local detector");
                d.detect(image.view())
            })
            .await;
            let result = match output {
                Ok(Ok(o)) => LocalResult {
                    detections: Ok(to_source(o.detections, scale)),
                    preprocess_ms: ms(o.times.preprocess),
                    inference_ms: ms(o.times.inference),
                    postprocess_ms: ms(o.times.postprocess),
                },
                Ok(Err(e)) => failed(e.to_string()),
                Err(e) => failed(format!("local detector task failed: {e}")),
            };
            if stand_in {
                Done::StandIn(frame, result)
            } else {
                Done::Local(frame, result)
            }
        }));
    }

    /// Encodes a taken frame at its configuration and sends it.
    fn offload(
        &mut self,
        frame: FrameId,
        config: usize,
        keyframe: bool,
    ) -> Result<(), ClientError> {
        let (Some(taken), Some(session)) = (self.taken.get(&frame), self.session.clone()) else {
            let now = self.now();
            self.pipeline.handle_remote_error(
                now,
                frame,
                "no session with the edge server".into(),
                false,
            );
            return Ok(());
        };
        let c = &self.table.configs[config];
        let key = (c.width, c.height, c.bitrate_bps);
        if self.encoding.as_ref().is_none_or(|e| e.key != key) {
            // A new encoder starts with a key frame at the new size and rate.
            self.encoding = Some(Encoding {
                encoder: H264Encoder::new(EncoderSettings {
                    bitrate_bps: c.bitrate_bps as u32,
                    max_fps: (if c.fps > 0.0 { c.fps } else { self.source_fps }).max(1.0) as f32,
                    keyframe_interval: self.options.keyframe_interval,
                    rate_control: self.options.rate_control,
                    ..EncoderSettings::default()
                })?,
                key,
            });
        }
        let enc = &mut self.encoding.as_mut().expect("just set").encoder;
        if keyframe {
            enc.force_keyframe();
        }
        let t = Instant::now();
        let encoded = enc.encode(taken.image.view(), taken.pts)?;
        let times = DeviceTimes {
            resize_ms: taken.resize_ms,
            encode_ms: ms(t.elapsed()),
        };
        let now = self.now();
        if encoded.kind == FrameKind::Skipped {
            self.pipeline.handle_skipped(now, frame, times);
            return Ok(());
        }
        let welcome = session.connection.welcome();
        // What the server runs it with: its own model, at the configuration's knobs.
        let sent = Config {
            placement: Placement::Remote,
            model: welcome.model.clone(),
            input_size: welcome.input_size,
            fps: if c.fps > 0.0 { c.fps } else { self.source_fps },
            ..c.clone()
        };
        let wire = Frame {
            // The session numbers its frames.
            seq: 0,
            frame_index: taken.index,
            capture_time_us: (now * 1e6) as u64,
            config: Some(WireConfig::from(&sent)),
            h264: encoded.data,
            keyframe: matches!(encoded.kind, FrameKind::Idr | FrameKind::I),
        };
        let bytes = wire_len(&envelope(Body::Frame(wire.clone()))) as u64;
        let (scale, names) = (taken.scale, welcome.class_names.clone());
        let (handle, registration) = AbortHandle::new_pair();
        self.requests.insert(frame, handle);
        let connection = session.connection.clone();
        let request = Abortable::new(async move { connection.request(wire).await }, registration);
        self.tasks.push(Box::pin(async move {
            let outcome = match request.await {
                Ok(Ok(result)) => Ok(remote_result(result, scale, &names)),
                Ok(Err(NetError::Remote { code, message })) => {
                    Err((format!("server: {message}"), code == Code::DecodeFailed))
                }
                Ok(Err(e)) => Err((format!("network: {e}"), false)),
                Err(_aborted) => Err(("cancelled".into(), false)),
            };
            Done::Remote(frame, Instant::now(), outcome)
        }));
        self.pipeline.handle_sent(now, frame, bytes, times);
        Ok(())
    }

    fn ping(&mut self, padding: usize) {
        let Some(session) = self.session.clone() else {
            return;
        };
        self.tasks.push(Box::pin(async move {
            let rtt =
                tokio::time::timeout(Duration::from_secs(2), session.connection.probe(padding))
                    .await
                    .ok()
                    .and_then(Result::ok);
            Done::Pong(padding, rtt)
        }));
    }

    /// Where and with what a shown result ran.
    fn shown_config(&self, shown: &Shown) -> Config {
        let mut config = self.table.configs[shown.config].clone();
        config.placement = shown.placement();
        match shown.origin {
            deepoffload_pipeline::Origin::Local { detector } => {
                let info = &self.locals[detector].0;
                config.model = info.model.clone();
                config.input_size = info.input_width as u32;
                config.bitrate_bps = 0;
            }
            _ => {
                if let Some(s) = &self.session {
                    let w = s.connection.welcome();
                    config.model = w.model.clone();
                    config.input_size = w.input_size;
                }
            }
        }
        if config.fps <= 0.0 {
            config.fps = self.source_fps;
        }
        config
    }
}

fn failed(message: String) -> LocalResult {
    LocalResult {
        detections: Err(message),
        preprocess_ms: 0.0,
        inference_ms: 0.0,
        postprocess_ms: 0.0,
    }
}

/// The server's answer in the pipeline's terms: boxes in source pixels, named.
fn remote_result(
    result: deepoffload_net::proto::Result,
    (sx, sy): (f32, f32),
    names: &[String],
) -> RemoteResult {
    let t = result.times.unwrap_or_default();
    let us = |v: u32| v as f64 / 1e3;
    let bytes_down = wire_len(&envelope(Body::Result(result.clone()))) as u64;
    RemoteResult {
        detections: result
            .detections
            .into_iter()
            .map(|d| Detection {
                class_id: d.class_id,
                class_name: deepoffload_core::class_name(names, d.class_id),
                score: d.score,
                objectness: d.objectness,
                bbox: BBox {
                    x1: d.x1 * sx,
                    y1: d.y1 * sy,
                    x2: d.x2 * sx,
                    y2: d.y2 * sy,
                },
            })
            .collect(),
        bytes_down,
        decode_ms: us(t.decode_us),
        queue_ms: us(t.queue_us),
        inference_ms: us(t.inference_us),
        total_ms: us(t.total_us),
        batch_size: t.batch_size,
    }
}
