//! The `Detector` trait and the YOLO detector on ONNX Runtime.

use crate::darknet::Head;
use crate::engine::OrtModel;
use crate::model::ImportedModel;
use crate::postprocess::{decode_head, nms, to_detections, Candidate, Thresholds};
use crate::preprocess::{Preprocessor, ResizeMode};
use crate::DetectError;
use deepoffload_core::{Detection, RgbImageRef};
use std::time::{Duration, Instant};

/// Time spent in each step of one detection, for latency breakdowns.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    #[serde(with = "millis")]
    pub preprocess: Duration,
    #[serde(with = "millis")]
    pub inference: Duration,
    #[serde(with = "millis")]
    pub postprocess: Duration,
}

impl StageTimes {
    pub fn total(&self) -> Duration {
        self.preprocess + self.inference + self.postprocess
    }
}

mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }
}

/// Detections of one image and what they cost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DetectOutput {
    pub detections: Vec<Detection>,
    pub times: StageTimes,
}

/// What a detector is, for logs, outputs and profiles.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectorInfo {
    pub model: String,
    pub input_width: usize,
    pub input_height: usize,
    pub engine: String,
    pub threads: usize,
    /// Names of the classes the model predicts (index = class id).
    #[serde(skip)]
    pub class_names: Vec<String>,
}

/// Anything that finds objects in an image. The device runtime, the edge server and the
/// profiler work against this trait, so other engines or models plug in without changes.
pub trait Detector: Send {
    fn info(&self) -> &DetectorInfo;

    /// Detects objects in one image; boxes are in the image's pixels.
    fn detect(&mut self, image: RgbImageRef<'_>) -> Result<DetectOutput, DetectError>;

    /// Detects objects in several images at once (an edge server batching frames of several
    /// clients). Engines without batching run them one by one.
    fn detect_batch(
        &mut self,
        images: &[RgbImageRef<'_>],
    ) -> Result<Vec<DetectOutput>, DetectError> {
        images.iter().map(|image| self.detect(*image)).collect()
    }
}

/// Settings of a [`YoloDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOptions {
    /// Intra-op threads for ONNX Runtime (0 = one per core).
    pub threads: usize,
    pub thresholds: Thresholds,
    pub resize: ResizeMode,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            thresholds: Thresholds::default(),
            resize: ResizeMode::Stretch,
        }
    }
}

/// A Darknet YOLO model running on ONNX Runtime.
pub struct YoloDetector {
    model: OrtModel,
    heads: Vec<Head>,
    class_names: Vec<String>,
    options: DetectorOptions,
    info: DetectorInfo,
    preprocessor: Preprocessor,
    /// Input tensor, `[N, 3, h, w]` for the last batch.
    tensor: Vec<f32>,
}

impl YoloDetector {
    /// Creates a session for an imported model. ONNX Runtime must be initialised
    /// ([`crate::init_runtime`]).
    pub fn new(model: &ImportedModel, options: DetectorOptions) -> Result<Self, DetectError> {
        let (w, h) = model.input_size();
        let session = OrtModel::from_bytes(&model.onnx, options.threads)?;
        Ok(Self {
            model: session,
            heads: model.heads(),
            class_names: model.class_names.clone(),
            options,
            info: DetectorInfo {
                model: model.name.clone(),
                input_width: w,
                input_height: h,
                engine: format!("onnxruntime {}", crate::catalogue::ONNXRUNTIME_VERSION),
                threads: options.threads,
                class_names: model.class_names.clone(),
            },
            preprocessor: Preprocessor::default(),
            tensor: vec![0.0; 3 * w * h],
        })
    }

    /// Runs only the network on an already prepared input tensor (for benchmarks: the bare
    /// forward pass).
    pub fn forward(&mut self, tensor: &[f32]) -> Result<(), DetectError> {
        let shape = [1, 3, self.info.input_height, self.info.input_width];
        self.model.run(tensor, shape, |_| ())
    }

    /// The input tensor of the last `detect` call.
    pub fn last_input(&self) -> &[f32] {
        &self.tensor[..3 * self.info.input_width * self.info.input_height]
    }
}

impl Detector for YoloDetector {
    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn detect(&mut self, image: RgbImageRef<'_>) -> Result<DetectOutput, DetectError> {
        let mut outputs = self.detect_batch(&[image])?;
        Ok(outputs.pop().expect("one output per image"))
    }

    /// One forward pass over all images (the graph's batch dimension is free). Stage times are
    /// the batch's, shared by every image in it.
    fn detect_batch(
        &mut self,
        images: &[RgbImageRef<'_>],
    ) -> Result<Vec<DetectOutput>, DetectError> {
        let n = images.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (w, h) = (self.info.input_width, self.info.input_height);
        let plane = 3 * w * h;
        self.tensor.resize(n * plane, 0.0);
        let t0 = Instant::now();
        let mut transforms = Vec::with_capacity(n);
        for (image, tensor) in images.iter().zip(self.tensor.chunks_exact_mut(plane)) {
            transforms.push(
                self.preprocessor
                    .run(*image, w, h, self.options.resize, tensor),
            );
        }
        let t1 = Instant::now();
        let confidence = self.options.thresholds.confidence;
        let heads = &self.heads;
        let mut per_image: Vec<Vec<Candidate>> = vec![Vec::new(); n];
        let mut decode_time = Duration::ZERO;
        self.model.run(&self.tensor, [n, 3, h, w], |outputs| {
            let start = Instant::now();
            for (head, raw) in heads.iter().zip(outputs) {
                let per = raw.len() / n;
                for (k, candidates) in per_image.iter_mut().enumerate() {
                    let slice = &raw[k * per..(k + 1) * per];
                    decode_head(head, slice, w, h, &transforms[k], confidence, candidates);
                }
            }
            decode_time = start.elapsed();
        })?;
        let t2 = Instant::now();
        let detections: Vec<_> = per_image
            .into_iter()
            .map(|c| to_detections(nms(c, self.options.thresholds.nms_iou), &self.class_names))
            .collect();
        let t3 = Instant::now();
        let times = StageTimes {
            preprocess: t1 - t0,
            inference: (t2 - t1).saturating_sub(decode_time),
            postprocess: (t3 - t2) + decode_time,
        };
        Ok(detections
            .into_iter()
            .map(|detections| DetectOutput { detections, times })
            .collect())
    }
}

/// Emulates a slower device on this machine: every detection takes at least `target` (the
/// declared device time), the padding counted as inference. Outputs made with it must say the
/// device is emulated; [`DetectorInfo::engine`] does.
pub struct PaddedDetector {
    inner: Box<dyn Detector>,
    target: Duration,
    info: DetectorInfo,
}

impl PaddedDetector {
    pub fn new(inner: Box<dyn Detector>, target: Duration, device: &str) -> Self {
        let mut info = inner.info().clone();
        info.engine = format!(
            "{} emulating {device} ({:.0} ms per frame)",
            info.engine,
            target.as_secs_f64() * 1e3
        );
        Self {
            inner,
            target,
            info,
        }
    }
}

impl Detector for PaddedDetector {
    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn detect(&mut self, image: RgbImageRef<'_>) -> Result<DetectOutput, DetectError> {
        let start = Instant::now();
        let mut output = self.inner.detect(image)?;
        if let Some(rest) = self.target.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
            output.times.inference += rest;
        }
        Ok(output)
    }
}
