//! Pixels: resizing and the YUV 4:2:0 ↔ RGB conversions around the codec.
//!
//! Resizing uses `fast_image_resize` (SIMD, 10-20× faster than `image::imageops`), bilinear as a
//! camera pipeline's scaler would be. Colour conversion uses the `yuv` crate with one convention
//! everywhere — BT.601, limited (TV) range, as H.264 cameras and ffmpeg's `rgb24` output use for
//! SD video — so an RGB frame encoded and decoded again comes back in the same colours.

use crate::VideoError;
use deepoffload_core::{RgbBuffer, RgbImageRef};
use fast_image_resize as fr;
use yuv::{YuvConversionMode, YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

const RANGE: YuvRange = YuvRange::Limited;
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;

/// Reusable bilinear RGB resizer.
#[derive(Default)]
pub struct Resizer {
    inner: fr::Resizer,
}

impl std::fmt::Debug for Resizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resizer")
    }
}

impl Resizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scales `src` to `width × height` (a copy when the size is unchanged).
    pub fn resize(
        &mut self,
        src: RgbImageRef<'_>,
        width: u32,
        height: u32,
    ) -> Result<RgbBuffer, VideoError> {
        let mut out = RgbBuffer::new(width, height)
            .map_err(|e| VideoError::Usage(format!("cannot resize to {width}x{height}: {e}")))?;
        if (src.width(), src.height()) == (width, height) {
            for y in 0..height as usize {
                let row = width as usize * 3;
                out.data_mut()[y * row..(y + 1) * row].copy_from_slice(src.row(y));
            }
            return Ok(out);
        }
        let packed;
        let data = if src.stride() == src.width() as usize * 3 {
            &src.data()[..src.width() as usize * src.height() as usize * 3]
        } else {
            packed = (0..src.height() as usize)
                .flat_map(|y| src.row(y).iter().copied())
                .collect::<Vec<u8>>();
            &packed[..]
        };
        let src_image =
            fr::images::ImageRef::new(src.width(), src.height(), data, fr::PixelType::U8x3)
                .map_err(|e| VideoError::Usage(format!("resize source: {e}")))?;
        let mut dst_image =
            fr::images::Image::from_slice_u8(width, height, out.data_mut(), fr::PixelType::U8x3)
                .map_err(|e| VideoError::Usage(format!("resize target: {e}")))?;
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
        self.inner
            .resize(&src_image, &mut dst_image, &options)
            .map_err(|e| VideoError::Usage(format!("resize: {e}")))?;
        Ok(out)
    }
}

/// An I420 picture (full-size Y, quarter-size U and V), the encoder's input format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420 {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Yuv420 {
    fn chroma(width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// Converts RGB to I420 (BT.601, limited range).
    pub fn from_rgb(rgb: RgbImageRef<'_>) -> Result<Self, VideoError> {
        let (w, h) = (rgb.width(), rgb.height());
        let mut planar = YuvPlanarImageMut::<u8>::alloc(w, h, yuv::YuvChromaSubsampling::Yuv420);
        yuv::rgb_to_yuv420(
            &mut planar,
            rgb.data(),
            rgb.stride() as u32,
            RANGE,
            MATRIX,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| VideoError::Usage(format!("RGB→YUV of a {w}x{h} image: {e}")))?;
        Ok(Self {
            width: w,
            height: h,
            y: planar.y_plane.borrow().to_vec(),
            u: planar.u_plane.borrow().to_vec(),
            v: planar.v_plane.borrow().to_vec(),
        })
    }

    /// Wraps planes (with the given strides) into a tightly packed I420 picture.
    pub fn from_planes(
        width: u32,
        height: u32,
        planes: [(&[u8], usize); 3],
    ) -> Result<Self, VideoError> {
        let (cw, ch) = Self::chroma(width, height);
        let copy = |(plane, stride): (&[u8], usize),
                    w: u32,
                    h: u32,
                    name: &str|
         -> Result<Vec<u8>, VideoError> {
            let (w, h) = (w as usize, h as usize);
            if stride < w || plane.len() < stride * h.saturating_sub(1) + w {
                return Err(VideoError::Usage(format!(
                    "{name} plane too small for {width}x{height}"
                )));
            }
            Ok((0..h)
                .flat_map(|r| plane[r * stride..r * stride + w].iter().copied())
                .collect())
        };
        Ok(Self {
            width,
            height,
            y: copy(planes[0], width, height, "Y")?,
            u: copy(planes[1], cw, ch, "U")?,
            v: copy(planes[2], cw, ch, "V")?,
        })
    }

    /// Converts to packed RGB (BT.601, limited range).
    pub fn to_rgb(&self) -> Result<RgbBuffer, VideoError> {
        let (cw, _) = Self::chroma(self.width, self.height);
        let planar = YuvPlanarImage {
            y_plane: &self.y,
            y_stride: self.width,
            u_plane: &self.u,
            u_stride: cw,
            v_plane: &self.v,
            v_stride: cw,
            width: self.width,
            height: self.height,
        };
        let mut out = RgbBuffer::new(self.width, self.height)
            .map_err(|e| VideoError::Usage(format!("YUV→RGB: {e}")))?;
        yuv::yuv420_to_rgb(&planar, out.data_mut(), self.width * 3, RANGE, MATRIX).map_err(
            |e| {
                VideoError::Usage(format!(
                    "YUV→RGB of a {}x{} picture: {e}",
                    self.width, self.height
                ))
            },
        )?;
        Ok(out)
    }
}

/// Peak signal-to-noise ratio of two equally sized 8-bit planes, in dB (∞ when identical).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "PSNR of planes of different sizes");
    let sse: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as i64 - y as i64).pow(2) as u64)
        .sum();
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbBuffer {
        let data = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8, (y * 255 / h) as u8, 128]))
            .collect();
        RgbBuffer::from_raw(w, h, data).unwrap()
    }

    #[test]
    fn rgb_yuv_round_trip_is_close() {
        let img = gradient(64, 48);
        let yuv = Yuv420::from_rgb(img.view()).unwrap();
        assert_eq!((yuv.y.len(), yuv.u.len()), (64 * 48, 32 * 24));
        let back = yuv.to_rgb().unwrap();
        assert!(
            psnr(img.data(), back.data()) > 35.0,
            "{}",
            psnr(img.data(), back.data())
        );
    }

    #[test]
    fn resize_keeps_constant_colour_and_size() {
        let img = RgbBuffer::from_raw(40, 30, [10u8, 200, 30].repeat(40 * 30)).unwrap();
        let out = Resizer::new().resize(img.view(), 17, 9).unwrap();
        assert_eq!((out.width(), out.height()), (17, 9));
        assert!(out.data().chunks(3).all(|p| p == [10, 200, 30]));
        assert!(Resizer::new().resize(img.view(), 0, 9).is_err());
    }

    #[test]
    fn psnr_values() {
        assert_eq!(psnr(&[1, 2, 3], &[1, 2, 3]), f64::INFINITY);
        // MSE 1 → 48.13 dB.
        assert!((psnr(&[0, 0], &[1, 1]) - 48.1308).abs() < 1e-3);
    }
}
