//! Boxes and detections in original-image pixels.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixels of the image it was found in, corners `(x1, y1)`–`(x2, y2)`.
///
/// Boxes are kept unclipped (a detector may place a box partly outside the frame) so that
/// accuracy metrics compare what models actually said; [`BBox::clipped`] gives the drawable part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    /// Builds a box from its centre and size, the form YOLO heads predict.
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        let x1 = cx - w / 2.0;
        let y1 = cy - h / 2.0;
        Self {
            x1,
            y1,
            x2: x1 + w,
            y2: y1 + h,
        }
    }

    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    /// Area without the Darknet "+1" pixel convention (negative extents count as empty).
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Intersection over union, the overlap measure used for NMS and for accuracy.
    /// Two empty boxes have IoU 0.
    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let ih = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The part of the box inside a `width` × `height` image, for drawing.
    pub fn clipped(&self, width: u32, height: u32) -> BBox {
        let (w, h) = (width as f32, height as f32);
        BBox {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }

    /// Maps a box through a scale and offset, e.g. from network-input pixels to image pixels.
    pub fn map(&self, scale_x: f32, scale_y: f32, offset_x: f32, offset_y: f32) -> BBox {
        BBox {
            x1: self.x1 * scale_x + offset_x,
            y1: self.y1 * scale_y + offset_y,
            x2: self.x2 * scale_x + offset_x,
            y2: self.y2 * scale_y + offset_y,
        }
    }
}

/// One object found in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Index into the model's class list (COCO: 0 = person).
    pub class_id: u32,
    /// Human-readable class name, carried so outputs stand on their own.
    pub class_name: String,
    /// Confidence used for thresholding and NMS: objectness × class probability.
    pub score: f32,
    /// The model's objectness alone, kept for analysis.
    pub objectness: f32,
    /// Where, in original-image pixels, unclipped.
    #[serde(rename = "box")]
    pub bbox: BBox,
}

/// The name of class `id` in a model's class list (`class<id>` past its end), so every
/// output names its classes the same way.
pub fn class_name(names: &[String], id: u32) -> String {
    names
        .get(id as usize)
        .cloned()
        .unwrap_or_else(|| format!("class{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iou_of_identical_boxes_is_one() {
        let b = BBox::from_center(10.0, 10.0, 4.0, 6.0);
        assert!((b.iou(&b) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn iou_hand_computed() {
        // 2x2 boxes overlapping in a 1x2 strip: inter 2, union 6.
        let a = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 2.0,
            y2: 2.0,
        };
        let b = BBox {
            x1: 1.0,
            y1: 0.0,
            x2: 3.0,
            y2: 2.0,
        };
        assert!((a.iou(&b) - 2.0 / 6.0).abs() < 1e-6);
        let far = BBox {
            x1: 5.0,
            y1: 5.0,
            x2: 6.0,
            y2: 6.0,
        };
        assert_eq!(a.iou(&far), 0.0);
    }

    #[test]
    fn clipping_keeps_inside_part() {
        let b = BBox {
            x1: -5.0,
            y1: 2.0,
            x2: 20.0,
            y2: 8.0,
        }
        .clipped(10, 6);
        assert_eq!(
            b,
            BBox {
                x1: 0.0,
                y1: 2.0,
                x2: 10.0,
                y2: 6.0
            }
        );
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(
            ax in -100f32..100.0, ay in -100f32..100.0, aw in 0f32..50.0, ah in 0f32..50.0,
            bx in -100f32..100.0, by in -100f32..100.0, bw in 0f32..50.0, bh in 0f32..50.0,
        ) {
            let a = BBox::from_center(ax, ay, aw, ah);
            let b = BBox::from_center(bx, by, bw, bh);
            let (ab, ba) = (a.iou(&b), b.iou(&a));
            prop_assert!((ab - ba).abs() < 1e-6);
            prop_assert!((0.0..=1.0 + 1e-6).contains(&ab));
        }
    }
}
