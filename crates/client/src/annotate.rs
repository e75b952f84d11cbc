//! Frames a person can look at: a camera frame with the boxes on it and a caption (what ran
//! where, how old the result is), and `run --annotate`'s video of every displayed frame.
//! The demo draws its screens with the same [`draw_screen`].

use crate::record::DisplayRecord;
use crate::ClientError;
use deepoffload_core::{Detection, RgbImageRef};
use deepoffload_video::Mp4VideoWriter;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The frame with `boxes` (coloured by class, labelled "class score") and `caption` (lines of
/// text on a dark band across the top).
pub fn draw_screen(frame: RgbImageRef<'_>, boxes: &[Detection], caption: &[String]) -> RgbImage {
    let (width, height) = (frame.width(), frame.height());
    let row = width as usize * 3;
    let mut data = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        data.extend_from_slice(&frame.row(y)[..row]);
    }
    let mut img = RgbImage::from_raw(width, height, data).unwrap_or_else(|| RgbImage::new(0, 0));
    deepoffload_detect::annotate::draw_detections(&mut img, boxes);
    deepoffload_detect::annotate::draw_caption(&mut img, caption);
    img
}

/// A displayed frame's caption: its index and time, tracking on or off, and where the shown
/// result ran (local / remote / stand-in, model@size), for which frame, and its age.
pub fn display_caption(record: &DisplayRecord) -> Vec<String> {
    let tracking = match (record.track, record.tracked) {
        (deepoffload_core::Tracking::Off, _) => "tracking off",
        (_, true) => "tracking on",
        (_, false) => "tracking on (result untracked)",
    };
    let first = format!("frame {}  t={:.2}s  {tracking}", record.index, record.pts_s);
    let second = match &record.result {
        Some(r) => format!(
            "{} {}@{}  result of frame {}  age {:.0} ms  latency {:.0} ms",
            r.origin,
            r.model,
            r.input_size,
            r.frame,
            r.age_s * 1e3,
            r.latency_ms
        ),
        None => "no result yet".into(),
    };
    vec![first, second]
}

/// A displayed frame drawn: its boxes, labelled with their confidence, and its caption.
pub fn draw_displayed(record: &DisplayRecord, frame: RgbImageRef<'_>) -> RgbImage {
    let boxes: Vec<Detection> = record
        .boxes
        .iter()
        .map(|b| Detection {
            score: b.confidence,
            ..b.detection.clone()
        })
        .collect();
    draw_screen(frame, &boxes, &display_caption(record))
}

/// Writes every displayed frame, drawn, into an MP4 (H.264) at the display rate, on its own
/// thread: the driver only copies the frame into a queue.
pub struct Annotator {
    path: PathBuf,
    tx: Option<mpsc::SyncSender<(DisplayRecord, RgbImage)>>,
    thread: Option<JoinHandle<Result<u64, String>>>,
}

impl Annotator {
    /// Starts writing `path` for `width`x`height` frames at `fps`.
    pub fn start(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self, ClientError> {
        // About 0.1 bit a pixel: boxes and captions stay legible.
        let bitrate = ((width as f64 * height as f64 * fps * 0.1) as u32).max(300_000);
        let mut writer = Mp4VideoWriter::create(path, width, height, fps, bitrate)?;
        let (tx, rx) = mpsc::sync_channel::<(DisplayRecord, RgbImage)>(64);
        let thread = std::thread::Builder::new()
            .name("annotate".into())
            .spawn(move || {
                for (record, frame) in rx {
                    let view = RgbImageRef::new(frame.width(), frame.height(), frame.as_raw())
                        .map_err(|e| e.to_string())?;
                    let drawn = draw_displayed(&record, view);
                    let view = RgbImageRef::new(drawn.width(), drawn.height(), drawn.as_raw())
                        .map_err(|e| e.to_string())?;
                    writer.write(view).map_err(|e| e.to_string())?;
                }
                writer.finish().map_err(|e| e.to_string())
            })
            .map_err(|e| ClientError::Usage(format!("cannot start the annotating thread: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a displayed frame (blocks only when the writer is 64 frames behind).
    pub fn push(&mut self, record: &DisplayRecord, frame: RgbImageRef<'_>) {
        let Some(tx) = &self.tx else { return };
        let (width, height) = (frame.width(), frame.height());
        let row = width as usize * 3;
        let mut data = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            data.extend_from_slice(&frame.row(y)[..row]);
        }
        let Some(image) = RgbImage::from_raw(width, height, data) else {
            return;
        };
        if tx.send((record.clone(), image)).is_err() {
            // The writer stopped on an error; `finish` reports it.
            self.tx = None;
        }
    }

    /// Waits for the writer; returns the frames written.
    pub fn finish(mut self) -> Result<u64, ClientError> {
        self.tx = None;
        let result = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the annotating thread panicked".into()),
            None => Err("already finished".into()),
        };
        result.map_err(|e| {
            ClientError::Usage(format!(
                "writing the annotated video {}: {e}",
                self.path.display()
            ))
        })
    }
}
