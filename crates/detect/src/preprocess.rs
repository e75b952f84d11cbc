//! Image → network input: resize (plain stretch or letterbox), scale to 0..1, planar RGB.
//!
//! The plain resize reproduces OpenCV's `cv2.resize(..., INTER_LINEAR)` on 8-bit images bit for
//! bit, because that is what the reference pipeline (`cv2.dnn.blobFromImage`) and most YOLO
//! deployments feed the network: fixed-point coefficients (11 fractional bits), exact integer
//! horizontal pass, and OpenCV's truncating vertical pass. This is written
//! here rather than taken from `fast_image_resize` because that crate's bilinear filter rounds
//! differently (it is a convolution with its own fixed-point scheme), and detections near the
//! threshold would then differ from every OpenCV-based reference.

use deepoffload_core::RgbImageRef;

/// How an image is fitted to the square network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Stretch to the input size, ignoring aspect ratio (OpenCV `blobFromImage`, Darknet
    /// `resize_image`); what the reference detections use.
    #[default]
    Stretch,
    /// Keep the aspect ratio and pad with grey (Darknet `letterbox_image`).
    Letterbox,
}

/// Maps normalised network coordinates (0..1 over the network input) back to image pixels:
/// `x_img = x_net * scale_x + offset_x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxTransform {
    pub scale_x: f32,
    pub scale_y: f32,
    pub offset_x: f32,
    pub offset_y: f32,
}

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Per-axis source index and fixed-point weights of OpenCV's linear interpolation.
struct Axis {
    /// First source index for each destination index (already clamped into the image).
    index: Vec<usize>,
    /// Second source index (the clamped neighbour).
    next: Vec<usize>,
    weights: Vec<[i32; 2]>,
}

/// Rounds like OpenCV's `saturate_cast<short>(float)` (`cvRound`: nearest, ties to even).
fn coefficient(v: f32) -> i32 {
    (v * COEF_SCALE)
        .round_ties_even()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i32
}

impl Axis {
    /// `clamp_fraction`: OpenCV clamps the horizontal (x) coordinate and its fraction at the
    /// borders, but leaves the vertical fraction alone and only clamps the rows it reads.
    fn new(src: usize, dst: usize, clamp_fraction: bool) -> Self {
        let inv_scale = dst as f64 / src as f64;
        let scale = 1.0 / inv_scale;
        let mut axis = Axis {
            index: Vec::with_capacity(dst),
            next: Vec::with_capacity(dst),
            weights: Vec::with_capacity(dst),
        };
        let last = src as i64 - 1;
        for d in 0..dst {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp_fraction {
                if s < 0 {
                    s = 0;
                    frac = 0.0;
                }
                if s >= last {
                    s = last;
                    frac = 0.0;
                }
            }
            axis.index.push(s.clamp(0, last) as usize);
            axis.next.push((s + 1).clamp(0, last) as usize);
            axis.weights
                .push([coefficient(1.0 - frac), coefficient(frac)]);
        }
        axis
    }
}

/// Resizes packed RGB8 exactly as OpenCV's `resize(INTER_LINEAR)` does, into `out`
/// (`dst_w × dst_h × 3` bytes).
pub fn resize_linear_cv(src: RgbImageRef<'_>, dst_w: usize, dst_h: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(dst_w * dst_h * 3);
    resize_linear_cv_rows(src, dst_w, dst_h, |_, row| out.extend_from_slice(row));
}

/// One horizontal tap: the two source pixels an output pixel blends and their weights.
#[derive(Clone, Copy)]
struct Tap {
    s0: usize,
    s1: usize,
    a0: i32,
    a1: i32,
}

/// As [`resize_linear_cv`], handing each output row (packed RGB8, in order) to `emit`, so
/// callers can convert rows as they come without an intermediate image.
pub fn resize_linear_cv_rows(
    src: RgbImageRef<'_>,
    dst_w: usize,
    dst_h: usize,
    mut emit: impl FnMut(usize, &[u8]),
) {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let width = dst_w * 3;
    let mut row_out = vec![0u8; width];
    if sw == dst_w && sh == dst_h {
        for y in 0..sh {
            emit(y, src.row(y));
        }
        return;
    }
    // OpenCV turns an exact 2× downscale in both directions into INTER_AREA, a rounded 2×2 mean.
    if sw == 2 * dst_w && sh == 2 * dst_h {
        for y in 0..dst_h {
            let (r0, r1) = (
                src.row(2 * y).as_chunks::<6>().0,
                src.row(2 * y + 1).as_chunks::<6>().0,
            );
            for ((o, a), b) in row_out.as_chunks_mut::<3>().0.iter_mut().zip(r0).zip(r1) {
                for c in 0..3 {
                    let sum = a[c] as u32 + a[c + 3] as u32 + b[c] as u32 + b[c + 3] as u32;
                    o[c] = ((sum + 2) >> 2) as u8;
                }
            }
            emit(y, &row_out);
        }
        return;
    }
    let xs = Axis::new(sw, dst_w, true);
    let ys = Axis::new(sh, dst_h, false);
    let taps: Vec<Tap> = (0..dst_w)
        .map(|d| Tap {
            s0: xs.index[d],
            s1: xs.next[d],
            a0: xs.weights[d][0],
            a1: xs.weights[d][1],
        })
        .collect();
    let horizontal = |row: &[u8], buf: &mut [i32]| {
        let px = row.as_chunks::<3>().0;
        for (o, t) in buf.as_chunks_mut::<3>().0.iter_mut().zip(&taps) {
            let (p, q) = (px[t.s0], px[t.s1]);
            for c in 0..3 {
                o[c] = p[c] as i32 * t.a0 + q[c] as i32 * t.a1;
            }
        }
    };
    // Horizontally resized source rows, cached: consecutive output rows share source rows.
    let mut cache: [(usize, Vec<i32>); 2] =
        [(usize::MAX, vec![0; width]), (usize::MAX, vec![0; width])];
    for dy in 0..dst_h {
        let (r0, r1) = (ys.index[dy], ys.next[dy]);
        for (want, other) in [(r0, r1), (r1, r0)] {
            if cache[0].0 != want && cache[1].0 != want {
                // Overwrite the slot that does not hold the other row this output row needs.
                let slot = usize::from(cache[0].0 == other);
                horizontal(src.row(want), &mut cache[slot].1);
                cache[slot].0 = want;
            }
        }
        let pick = |r: usize| {
            if cache[0].0 == r {
                &cache[0].1
            } else {
                &cache[1].1
            }
        };
        let (s0, s1) = (pick(r0), pick(r1));
        let [b0, b1] = ys.weights[dy];
        // OpenCV's 8-bit vertical pass (VResizeLinear<uchar,…> and its SIMD kernel) drops 4
        // bits before multiplying and truncates each product; exact rounding would differ.
        // Weights are non-negative and sum to 2048, so the result is always within 0..=255.
        for ((o, &a), &b) in row_out.iter_mut().zip(s0).zip(s1) {
            *o = (((((a >> 4) * b0) >> 16) + (((b >> 4) * b1) >> 16) + 2) >> 2) as u8;
        }
        emit(dy, &row_out);
    }
}

/// Turns images into network input (kept as a type so buffers can be reused as it evolves).
#[derive(Debug, Default)]
pub struct Preprocessor {}

impl Preprocessor {
    /// Writes the `[3, h, w]` planar float tensor of `image` into `tensor` and returns how to map
    /// boxes back to image pixels.
    pub fn run(
        &mut self,
        image: RgbImageRef<'_>,
        input_w: usize,
        input_h: usize,
        mode: ResizeMode,
        tensor: &mut [f32],
    ) -> BoxTransform {
        assert_eq!(tensor.len(), 3 * input_w * input_h, "tensor size");
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let (nw, nh, dx, dy) = match mode {
            ResizeMode::Stretch => (input_w, input_h, 0, 0),
            ResizeMode::Letterbox => {
                // Darknet's letterbox_image arithmetic (integer sizes, centred).
                let (nw, nh) = if (input_w as f32 / iw as f32) < (input_h as f32 / ih as f32) {
                    (input_w, (ih * input_w / iw).max(1))
                } else {
                    ((iw * input_h / ih).max(1), input_h)
                };
                (nw, nh, (input_w - nw) / 2, (input_h - nh) / 2)
            }
        };
        if (nw, nh) != (input_w, input_h) {
            tensor.fill(0.5);
        }
        // The reference multiplies by the float32 of 1/255 (not a division), so do we.
        let scale = 1.0f32 / 255.0;
        let plane = input_w * input_h;
        let (r, rest) = tensor.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        resize_linear_cv_rows(image, nw, nh, |y, row| {
            let base = (y + dy) * input_w + dx;
            let (r, g, b) = (
                &mut r[base..base + nw],
                &mut g[base..base + nw],
                &mut b[base..base + nw],
            );
            for (x, px) in row.as_chunks::<3>().0.iter().enumerate() {
                r[x] = px[0] as f32 * scale;
                g[x] = px[1] as f32 * scale;
                b[x] = px[2] as f32 * scale;
            }
        });
        let (fx, fy) = (iw as f32 / nw as f32, ih as f32 / nh as f32);
        BoxTransform {
            scale_x: input_w as f32 * fx,
            scale_y: input_h as f32 * fy,
            offset_x: -(dx as f32) * fx,
            offset_y: -(dy as f32) * fy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32) -> Vec<u8> {
        (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect()
    }

    #[test]
    fn identity_size_copies() {
        let data = image(5, 4);
        let img = RgbImageRef::new(5, 4, &data).unwrap();
        let mut out = Vec::new();
        resize_linear_cv(img, 5, 4, &mut out);
        assert_eq!(out, data);
    }

    #[test]
    fn constant_image_stays_constant() {
        let data = vec![200u8; 7 * 9 * 3];
        let img = RgbImageRef::new(7, 9, &data).unwrap();
        let mut out = Vec::new();
        for (w, h) in [(3, 3), (13, 5), (32, 32), (2, 17)] {
            resize_linear_cv(img, w, h, &mut out);
            assert!(out.iter().all(|&v| v == 200), "{w}x{h}");
        }
    }

    #[test]
    fn upscale_two_pixels_interpolates() {
        // 2x1 → 4x1: OpenCV gives [a, 0.75a+0.25b, 0.25a+0.75b, b].
        let data = [0u8, 0, 0, 200, 200, 200];
        let img = RgbImageRef::new(2, 1, &data).unwrap();
        let mut out = Vec::new();
        resize_linear_cv(img, 4, 1, &mut out);
        let red: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(red, vec![0, 50, 150, 200]);
    }

    #[test]
    fn letterbox_pads_and_maps_back() {
        let data = image(64, 32);
        let img = RgbImageRef::new(64, 32, &data).unwrap();
        let mut tensor = vec![0.0; 3 * 32 * 32];
        let t = Preprocessor::default().run(img, 32, 32, ResizeMode::Letterbox, &mut tensor);
        // 64x32 → 32x16 centred at rows 8..24: first rows are grey.
        assert_eq!(tensor[0], 0.5);
        assert_ne!(tensor[8 * 32], 0.5);
        // Network (0.5, 0.5) is the image centre.
        assert!((0.5 * t.scale_x + t.offset_x - 32.0).abs() < 1e-4);
        assert!((0.5 * t.scale_y + t.offset_y - 16.0).abs() < 1e-4);
        // Top of the picture area (net y = 8/32) is image row 0.
        assert!((0.25 * t.scale_y + t.offset_y).abs() < 1e-4);
    }
}
