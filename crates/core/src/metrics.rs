//! Accuracy of detections against a reference: class-aware matching, F1, mean IoU, mAP@0.5.
//!
//! As in the study, the reference is usually the big model on the raw frames; with ground truth
//! the same functions give the usual detection metrics.

use crate::{BBox, Detection};
use serde::{Deserialize, Serialize};

/// IoU at or above which a prediction matches a reference box of the same class.
pub const MATCH_IOU: f32 = 0.5;

/// The outcome of matching one frame's predictions to its reference boxes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameMatch {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// IoU of every matched pair.
    pub matched_ious: Vec<f32>,
}

impl FrameMatch {
    /// F1 of this frame; a frame where both sides are empty is perfect (1).
    pub fn f1(&self) -> f64 {
        let denominator = 2 * self.true_positives + self.false_positives + self.false_negatives;
        if denominator == 0 {
            1.0
        } else {
            2.0 * self.true_positives as f64 / denominator as f64
        }
    }
}

/// Greedy class-aware matching: predictions in descending score order each take the unmatched
/// reference box of their class with the highest IoU, if that IoU is at least `iou_threshold`
/// (the rule of COCO and of the PASCAL VOC evaluation).
pub fn match_frame(
    predictions: &[Detection],
    reference: &[Detection],
    iou_threshold: f32,
) -> FrameMatch {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|&a, &b| predictions[b].score.total_cmp(&predictions[a].score));
    let mut taken = vec![false; reference.len()];
    let mut result = FrameMatch::default();
    for i in order {
        let p = &predictions[i];
        let best = reference
            .iter()
            .enumerate()
            .filter(|(j, r)| !taken[*j] && r.class_id == p.class_id)
            .map(|(j, r)| (j, p.bbox.iou(&r.bbox)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((j, iou)) if iou >= iou_threshold => {
                taken[j] = true;
                result.true_positives += 1;
                result.matched_ious.push(iou);
            }
            _ => result.false_positives += 1,
        }
    }
    result.false_negatives = taken.iter().filter(|t| !**t).count();
    result
}

/// Accumulates frames into summary accuracy figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccuracyAccumulator {
    frames: usize,
    f1_sum: f64,
    tp: usize,
    fp: usize,
    fn_: usize,
    iou_sum: f64,
    matched: usize,
}

/// Accuracy over a set of frames.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Accuracy {
    /// Mean of per-frame F1 (empty-vs-empty frames count as 1).
    pub f1: f64,
    /// F1 of all frames' matches pooled together.
    pub pooled_f1: f64,
    pub precision: f64,
    pub recall: f64,
    /// Mean IoU of matched pairs (the study's accuracy measure).
    pub mean_iou: f64,
    pub frames: usize,
}

impl AccuracyAccumulator {
    pub fn add(&mut self, m: &FrameMatch) {
        self.frames += 1;
        self.f1_sum += m.f1();
        self.tp += m.true_positives;
        self.fp += m.false_positives;
        self.fn_ += m.false_negatives;
        self.iou_sum += m.matched_ious.iter().map(|&v| v as f64).sum::<f64>();
        self.matched += m.matched_ious.len();
    }

    pub fn accuracy(&self) -> Accuracy {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let pooled_den = 2 * self.tp + self.fp + self.fn_;
        Accuracy {
            f1: if self.frames == 0 {
                0.0
            } else {
                self.f1_sum / self.frames as f64
            },
            pooled_f1: ratio(2 * self.tp, pooled_den),
            precision: ratio(self.tp, self.tp + self.fp),
            recall: ratio(self.tp, self.tp + self.fn_),
            mean_iou: if self.matched == 0 {
                0.0
            } else {
                self.iou_sum / self.matched as f64
            },
            frames: self.frames,
        }
    }
}

/// COCO-style average precision at one IoU threshold for one class: precision made monotone
/// (the maximum at any higher recall), sampled at the 101 recall points 0, 0.01, …, 1.
/// `scored` holds (score, is-true-positive) of every prediction of the class over all frames;
/// `positives` the number of reference boxes of the class. `None` when the class has none.
pub fn average_precision(scored: &mut [(f32, bool)], positives: usize) -> Option<f64> {
    if positives == 0 {
        return None;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve: Vec<(f64, f64)> = Vec::with_capacity(scored.len());
    for &(_, hit) in scored.iter() {
        if hit {
            tp += 1;
        } else {
            fp += 1;
        }
        curve.push((tp as f64 / positives as f64, tp as f64 / (tp + fp) as f64));
    }
    // Monotone precision envelope, right to left.
    for i in (0..curve.len().saturating_sub(1)).rev() {
        curve[i].1 = curve[i].1.max(curve[i + 1].1);
    }
    let mut sum = 0.0;
    for k in 0..=100 {
        let r = k as f64 / 100.0;
        let p = curve
            .iter()
            .find(|(recall, _)| *recall >= r - 1e-12)
            .map_or(0.0, |c| c.1);
        sum += p;
    }
    Some(sum / 101.0)
}

/// mAP@IoU over frames: per class AP (COCO 101-point), averaged over classes present in the
/// reference. `frames` pairs each frame's predictions with its reference boxes.
pub fn mean_average_precision(
    frames: &[(&[Detection], &[Detection])],
    iou_threshold: f32,
) -> Option<f64> {
    use std::collections::BTreeMap;
    let mut per_class: BTreeMap<u32, (Vec<(f32, bool)>, usize)> = BTreeMap::new();
    for (predictions, reference) in frames {
        for r in reference.iter() {
            per_class.entry(r.class_id).or_default().1 += 1;
        }
        // Match per class so each prediction is judged once (greedy by score, as COCO does).
        let classes: std::collections::BTreeSet<u32> =
            predictions.iter().map(|p| p.class_id).collect();
        for class in classes {
            let preds: Vec<&Detection> =
                predictions.iter().filter(|p| p.class_id == class).collect();
            let refs: Vec<&BBox> = reference
                .iter()
                .filter(|r| r.class_id == class)
                .map(|r| &r.bbox)
                .collect();
            let mut order: Vec<usize> = (0..preds.len()).collect();
            order.sort_by(|&a, &b| preds[b].score.total_cmp(&preds[a].score));
            let mut taken = vec![false; refs.len()];
            let entry = &mut per_class.entry(class).or_default().0;
            for i in order {
                let best = refs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !taken[*j])
                    .map(|(j, r)| (j, preds[i].bbox.iou(r)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                let hit = matches!(best, Some((_, iou)) if iou >= iou_threshold);
                if let (true, Some((j, _))) = (hit, best) {
                    taken[j] = true;
                }
                entry.push((preds[i].score, hit));
            }
        }
    }
    let aps: Vec<f64> = per_class
        .values_mut()
        .filter_map(|(scored, positives)| average_precision(scored, *positives))
        .collect();
    (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: u32, score: f32, x: f32, y: f32, w: f32, h: f32) -> Detection {
        Detection {
            class_id,
            class_name: String::new(),
            score,
            objectness: score,
            bbox: BBox {
                x1: x,
                y1: y,
                x2: x + w,
                y2: y + h,
            },
        }
    }

    #[test]
    fn perfect_match_is_one_and_disjoint_is_zero() {
        let reference = vec![
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(2, 0.8, 50.0, 50.0, 20.0, 10.0),
        ];
        let m = match_frame(&reference, &reference, MATCH_IOU);
        assert_eq!((m.f1(), m.matched_ious.len()), (1.0, 2));
        let far = vec![
            det(0, 0.9, 100.0, 100.0, 10.0, 10.0),
            det(2, 0.8, 200.0, 200.0, 20.0, 10.0),
        ];
        let m = match_frame(&far, &reference, MATCH_IOU);
        assert_eq!(m.f1(), 0.0);
        assert_eq!((m.false_positives, m.false_negatives), (2, 2));
        // Right place, wrong class: no match either.
        let wrong_class = vec![det(1, 0.9, 0.0, 0.0, 10.0, 10.0)];
        assert_eq!(
            match_frame(&wrong_class, &reference[..1], MATCH_IOU).f1(),
            0.0
        );
        // Nothing to find, nothing found: perfect.
        assert_eq!(match_frame(&[], &[], MATCH_IOU).f1(), 1.0);
    }

    #[test]
    fn hand_computed_partial_frame() {
        // Reference: A(0..10) and B(20..30). Predictions: A' shifted by 2 (IoU 80/120 = 2/3),
        // a duplicate of A' (false positive) and nothing for B.
        let reference = vec![
            det(0, 1.0, 0.0, 0.0, 10.0, 10.0),
            det(0, 1.0, 20.0, 0.0, 10.0, 10.0),
        ];
        let predictions = vec![
            det(0, 0.9, 2.0, 0.0, 10.0, 10.0),
            det(0, 0.5, 2.0, 0.0, 10.0, 10.0),
        ];
        let m = match_frame(&predictions, &reference, MATCH_IOU);
        assert_eq!(
            (m.true_positives, m.false_positives, m.false_negatives),
            (1, 1, 1)
        );
        // F1 = 2·1 / (2·1 + 1 + 1) = 0.5
        assert!((m.f1() - 0.5).abs() < 1e-12);
        assert!((m.matched_ious[0] as f64 - 2.0 / 3.0).abs() < 1e-6);
        // A second, perfect frame: mean per-frame F1 0.75; pooled 2·3/(2·3+1+1) = 0.75 too.
        let mut acc = AccuracyAccumulator::default();
        acc.add(&m);
        acc.add(&match_frame(&reference, &reference, MATCH_IOU));
        let a = acc.accuracy();
        assert!((a.f1 - 0.75).abs() < 1e-12 && (a.pooled_f1 - 0.75).abs() < 1e-12);
        assert!((a.precision - 0.75).abs() < 1e-12 && (a.recall - 0.75).abs() < 1e-12);
        assert!((a.mean_iou - (2.0 / 3.0 + 2.0) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn hand_worked_map_example() {
        // One class, 3 reference boxes over 2 frames; 4 predictions ranked by score:
        // 0.9 TP, 0.8 FP, 0.7 TP, 0.6 FP (the third box is never found).
        // Recall/precision after each: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2).
        // Monotone precision: 1 for r ≤ 1/3, 2/3 for 1/3 < r ≤ 2/3, 0 above.
        // 101-point: r = 0..0.33 → 34 points × 1; r = 0.34..0.66 → 33 points × 2/3; rest 0.
        // AP = (34 + 22) / 101 = 56/101.
        let f1_ref = vec![
            det(0, 1.0, 0.0, 0.0, 10.0, 10.0),
            det(0, 1.0, 50.0, 0.0, 10.0, 10.0),
        ];
        let f1_pred = vec![
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(0, 0.8, 100.0, 100.0, 10.0, 10.0),
        ];
        let f2_ref = vec![det(0, 1.0, 0.0, 0.0, 10.0, 10.0)];
        let f2_pred = vec![
            det(0, 0.7, 1.0, 0.0, 10.0, 10.0),
            det(0, 0.6, 30.0, 30.0, 5.0, 5.0),
        ];
        let map = mean_average_precision(&[(&f1_pred, &f1_ref), (&f2_pred, &f2_ref)], 0.5).unwrap();
        assert!((map - 56.0 / 101.0).abs() < 1e-9, "{map}");
        // A perfect detector has AP 1; classes absent from the reference do not count.
        let perfect = mean_average_precision(&[(&f1_ref, &f1_ref)], 0.5).unwrap();
        assert!((perfect - 1.0).abs() < 1e-12);
        assert_eq!(mean_average_precision(&[(&f1_pred, &[])], 0.5), None);
    }
}
