//! Raw head tensors → detections: YOLO/region decoding, thresholding, class-wise NMS.
//!
//! Matches the reference pipeline (`../shared/fixtures/README.md`): candidates are visited in
//! (row, column, anchor) order, head by head; the score is objectness × class probability;
//! boxes are kept if the score exceeds the threshold; NMS is greedy per class with ties kept in
//! visiting order.

use crate::darknet::{Head, HeadKind};
use crate::preprocess::BoxTransform;
use deepoffload_core::{BBox, Detection};

/// Thresholds of the decode and NMS steps.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// Keep candidates whose score (objectness × class probability) is above this.
    pub confidence: f32,
    /// Suppress a box whose IoU with a higher-scoring box of its class is above this.
    pub nms_iou: f32,
}

impl Default for Thresholds {
    /// The reference settings: confidence 0.25, NMS IoU 0.45.
    fn default() -> Self {
        Self {
            confidence: 0.25,
            nms_iou: 0.45,
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A decoded candidate before NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub class_id: u32,
    pub score: f32,
    pub objectness: f32,
    pub bbox: BBox,
}

/// Decodes one head's raw output (`[A·(5+C), h, w]`, one image) and appends candidates.
/// `input_w/h` is the network input size, in which YOLO anchors are expressed.
pub fn decode_head(
    head: &Head,
    raw: &[f32],
    input_w: usize,
    input_h: usize,
    transform: &BoxTransform,
    confidence: f32,
    out: &mut Vec<Candidate>,
) {
    let (gw, gh) = (head.grid_w, head.grid_h);
    let hw = gw * gh;
    let per_anchor = head.stride_per_anchor();
    assert_eq!(
        raw.len(),
        head.anchors.len() * per_anchor * hw,
        "head tensor size"
    );
    let mut probs = vec![0f32; head.classes];
    for cy in 0..gh {
        for cx in 0..gw {
            let cell = cy * gw + cx;
            for (a, anchor) in head.anchors.iter().enumerate() {
                let at = |k: usize| raw[(a * per_anchor + k) * hw + cell];
                let objectness = sigmoid(at(4));
                // score = objectness × p with p ≤ 1, so nothing here can pass the threshold.
                if objectness <= confidence {
                    continue;
                }
                let (bx, by, bw, bh) = match head.kind {
                    HeadKind::Yolo { scale_x_y: s } => {
                        for (j, p) in probs.iter_mut().enumerate() {
                            *p = objectness * sigmoid(at(5 + j));
                        }
                        (
                            (cx as f32 + sigmoid(at(0)) * s - (s - 1.0) / 2.0) / gw as f32,
                            (cy as f32 + sigmoid(at(1)) * s - (s - 1.0) / 2.0) / gh as f32,
                            at(2).exp() * anchor[0] / input_w as f32,
                            at(3).exp() * anchor[1] / input_h as f32,
                        )
                    }
                    HeadKind::Region => {
                        let max = (0..head.classes)
                            .map(|j| at(5 + j))
                            .fold(f32::MIN, f32::max);
                        let mut sum = 0.0;
                        for (j, p) in probs.iter_mut().enumerate() {
                            *p = (at(5 + j) - max).exp();
                            sum += *p;
                        }
                        for p in probs.iter_mut() {
                            *p = objectness * *p / sum;
                        }
                        (
                            (cx as f32 + sigmoid(at(0))) / gw as f32,
                            (cy as f32 + sigmoid(at(1))) / gh as f32,
                            at(2).exp() * anchor[0] / gw as f32,
                            at(3).exp() * anchor[1] / gh as f32,
                        )
                    }
                };
                // First index wins ties, as numpy's argmax does.
                let (class_id, score) =
                    probs
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::MIN),
                            |best, (j, &p)| if p > best.1 { (j, p) } else { best },
                        );
                if score <= confidence {
                    continue;
                }
                let bbox = BBox::from_center(
                    bx * transform.scale_x + transform.offset_x,
                    by * transform.scale_y + transform.offset_y,
                    bw * transform.scale_x,
                    bh * transform.scale_y,
                );
                out.push(Candidate {
                    class_id: class_id as u32,
                    score,
                    objectness,
                    bbox,
                });
            }
        }
    }
}

/// Greedy class-wise non-maximum suppression; returns survivors sorted by score, highest first.
pub fn nms(mut candidates: Vec<Candidate>, iou_threshold: f32) -> Vec<Candidate> {
    // Stable sorts keep the visiting order among equal scores.
    candidates.sort_by(|a, b| {
        a.class_id
            .cmp(&b.class_id)
            .then(b.score.total_cmp(&a.score))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    let mut class_start = 0;
    for c in candidates {
        if kept.last().is_some_and(|k| k.class_id != c.class_id) {
            class_start = kept.len();
        }
        if kept[class_start..]
            .iter()
            .all(|k| k.bbox.iou(&c.bbox) <= iou_threshold)
        {
            kept.push(c);
        }
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept
}

/// Names candidates with the model's class list.
pub fn to_detections(candidates: Vec<Candidate>, class_names: &[String]) -> Vec<Detection> {
    candidates
        .into_iter()
        .map(|c| Detection {
            class_id: c.class_id,
            class_name: deepoffload_core::class_name(class_names, c.class_id),
            score: c.score,
            objectness: c.objectness,
            bbox: c.bbox,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(class_id: u32, score: f32, x: f32) -> Candidate {
        Candidate {
            class_id,
            score,
            objectness: score,
            bbox: BBox {
                x1: x,
                y1: 0.0,
                x2: x + 10.0,
                y2: 10.0,
            },
        }
    }

    #[test]
    fn nms_suppresses_within_class_only() {
        let kept = nms(
            vec![
                cand(0, 0.5, 0.0),
                cand(0, 0.9, 1.0),
                cand(1, 0.8, 1.0),
                cand(0, 0.7, 50.0),
            ],
            0.45,
        );
        let got: Vec<(u32, f32)> = kept.iter().map(|c| (c.class_id, c.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.8), (0, 0.7)]);
    }

    #[test]
    fn yolo_decode_hand_computed() {
        // One 1x1 cell, one anchor of 32x64 input pixels at a 64x64 input, 2 classes.
        let head = Head {
            kind: HeadKind::Yolo { scale_x_y: 1.0 },
            anchors: vec![[32.0, 64.0]],
            classes: 2,
            grid_w: 1,
            grid_h: 1,
        };
        // tx = ty = 0 → centre 0.5; tw = th = 0 → size = anchor; objectness logit 10 (≈1);
        // class logits 0 and 3.
        let raw = [0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 3.0];
        let t = BoxTransform {
            scale_x: 200.0,
            scale_y: 100.0,
            offset_x: 0.0,
            offset_y: 0.0,
        };
        let mut out = Vec::new();
        decode_head(&head, &raw, 64, 64, &t, 0.25, &mut out);
        assert_eq!(out.len(), 1);
        let c = out[0];
        assert_eq!(c.class_id, 1);
        assert!((c.score - sigmoid(10.0) * sigmoid(3.0)).abs() < 1e-6);
        // centre (100, 50), size (0.5·200, 1.0·100).
        assert!((c.bbox.x1 - 50.0).abs() < 1e-4 && (c.bbox.x2 - 150.0).abs() < 1e-4);
        assert!((c.bbox.y1 - 0.0).abs() < 1e-4 && (c.bbox.y2 - 100.0).abs() < 1e-4);
    }

    #[test]
    fn region_decode_uses_softmax_and_grid_anchors() {
        let head = Head {
            kind: HeadKind::Region,
            anchors: vec![[1.0, 2.0]],
            classes: 2,
            grid_w: 2,
            grid_h: 2,
        };
        // 7 channels × 4 cells; only cell (1,1) is confident.
        let mut raw = vec![-10.0f32; 7 * 4];
        for k in 0..4 {
            raw[k * 4 + 3] = 0.0;
        }
        raw[4 * 4 + 3] = 10.0; // objectness
        raw[5 * 4 + 3] = 0.0;
        raw[6 * 4 + 3] = 2.0f32.ln(); // softmax → [1/3, 2/3]
        let t = BoxTransform {
            scale_x: 1.0,
            scale_y: 1.0,
            offset_x: 0.0,
            offset_y: 0.0,
        };
        let mut out = Vec::new();
        decode_head(&head, &raw, 64, 64, &t, 0.25, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class_id, 1);
        assert!((out[0].score - sigmoid(10.0) * 2.0 / 3.0).abs() < 1e-5);
        // centre (1.5/2, 1.5/2), size (1/2, 2/2)
        assert!((out[0].bbox.width() - 0.5).abs() < 1e-5);
        assert!((out[0].bbox.height() - 1.0).abs() < 1e-5);
        assert!((out[0].bbox.x1 - 0.5).abs() < 1e-5);
    }
}
