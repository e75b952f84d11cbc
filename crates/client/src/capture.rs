//! The camera: a thread that reads the video source and hands its frames to the pipeline — as a live camera would (at their timestamps, the newest frame
//! replacing one not yet taken) or as fast as the pipeline takes them (offline replay).

use deepoffload_core::RgbBuffer;
use deepoffload_video::{Frame, VideoError, VideoSource};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// How frames reach the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// Frames appear at their timestamps; a busy pipeline misses frames (takes the newest).
    #[default]
    Live,
    /// Every sampled frame is handed over as soon as the pipeline asks (offline replay; the
    /// frame counts as captured when it is taken).
    Fast,
}

impl std::str::FromStr for Pace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(Self::Live),
            "fast" => Ok(Self::Fast),
            _ => Err(format!("pace `{s}` must be live or fast")),
        }
    }
}

/// A frame the camera produced.
#[derive(Debug)]
pub struct Captured {
    pub index: u64,
    pub pts: Duration,
    pub image: RgbBuffer,
    /// When it became available (live) — the start of its end-to-end latency.
    pub available_at: Instant,
}

enum Handoff {
    Queue(mpsc::Receiver<Result<Captured, VideoError>>),
    Latest {
        slot: Arc<Mutex<LatestSlot>>,
        notify: Arc<Notify>,
    },
}

#[derive(Default)]
struct LatestSlot {
    frame: Option<Result<Captured, VideoError>>,
    finished: bool,
}

/// The running camera.
pub struct Capture {
    handoff: Handoff,
}

/// The source's frames within `span` of source time from the first frame, ending after an
/// error. Which of them are analysed is the pipeline's rule.
fn kept_frames(
    mut source: Box<dyn VideoSource>,
    span: Option<Duration>,
) -> impl Iterator<Item = Result<Frame, VideoError>> {
    let mut done = false;
    let mut first_pts: Option<Duration> = None;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match source.next_frame() {
            Ok(Some(frame)) => {
                let first = *first_pts.get_or_insert(frame.pts);
                if span.is_some_and(|span| frame.pts.saturating_sub(first) >= span) {
                    done = true;
                    return None;
                }
                Some(Ok(frame))
            }
            Ok(None) => None,
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

impl Capture {
    /// Starts reading `source`, stopping after `span` of source time.
    pub fn start(source: Box<dyn VideoSource>, pace: Pace, span: Option<Duration>) -> Self {
        let frames = kept_frames(source, span);
        match pace {
            Pace::Fast => {
                let (tx, rx) = mpsc::channel(2);
                std::thread::Builder::new()
                    .name("capture".into())
                    .spawn(move || {
                        for item in frames {
                            let item = item.map(|f| Captured {
                                index: f.index,
                                pts: f.pts,
                                image: f.image,
                                available_at: Instant::now(),
                            });
                            if tx.blocking_send(item).is_err() {
                                return;
                            }
                        }
                    })
                    .expect("spawn the capture thread");
                Self {
                    handoff: Handoff::Queue(rx),
                }
            }
            Pace::Live => {
                let slot = Arc::new(Mutex::new(LatestSlot::default()));
                let notify = Arc::new(Notify::new());
                let (s, n) = (slot.clone(), notify.clone());
                std::thread::Builder::new()
                    .name("capture".into())
                    .spawn(move || {
                        let start = Instant::now();
                        let mut first_pts = None;
                        let mut frames = frames;
                        let mut previous_pts: Option<Duration> = None;
                        let mut interval = Duration::ZERO;
                        loop {
                            // A camera's sensor costs the CPU nothing; decoding the file does.
                            // Decoding the next frame right after handing one over took the CPU
                            // from the pipeline just as it started on that frame (3.7 ms later
                            // on every other frame on 2 cores), so decode a quarter of a frame
                            // interval later, while the pipeline waits on network or model.
                            std::thread::sleep(interval / 4);
                            let Some(item) = frames.next() else { break };
                            let item = item.map(|f| {
                                // Each frame appears at its own time, as a camera delivers it.
                                let first = *first_pts.get_or_insert(f.pts);
                                let due = start + f.pts.saturating_sub(first);
                                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                    std::thread::sleep(wait);
                                }
                                Captured {
                                    index: f.index,
                                    pts: f.pts,
                                    image: f.image,
                                    available_at: Instant::now(),
                                }
                            });
                            if let Ok(c) = &item {
                                if let Some(p) = previous_pts {
                                    interval = c.pts.saturating_sub(p);
                                }
                                previous_pts = Some(c.pts);
                            }
                            s.lock().expect("capture slot").frame = Some(item);
                            n.notify_one();
                        }
                        s.lock().expect("capture slot").finished = true;
                        n.notify_one();
                    })
                    .expect("spawn the capture thread");
                Self {
                    handoff: Handoff::Latest { slot, notify },
                }
            }
        }
    }

    /// A live camera's newest frame if one is waiting now (never waits; offline: none).
    pub fn try_next(&mut self) -> Option<Result<Captured, VideoError>> {
        match &mut self.handoff {
            Handoff::Queue(_) => None,
            Handoff::Latest { slot, .. } => slot.lock().expect("capture slot").frame.take(),
        }
    }

    /// The next frame for the pipeline; `None` when the source is exhausted.
    pub async fn next(&mut self) -> Option<Result<Captured, VideoError>> {
        match &mut self.handoff {
            Handoff::Queue(rx) => rx.recv().await,
            Handoff::Latest { slot, notify } => loop {
                let notified = notify.notified();
                {
                    let mut s = slot.lock().expect("capture slot");
                    if let Some(item) = s.frame.take() {
                        return Some(item);
                    }
                    if s.finished {
                        return None;
                    }
                }
                notified.await;
            },
        }
    }
}
