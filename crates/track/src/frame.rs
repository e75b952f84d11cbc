//! Grey frames at the tracker's working size.

use deepoffload_core::RgbImageRef;
use image_buffer::GrayImage;

/// The shortest working side the tracker accepts: below it a pyramid level and an LK window
/// no longer fit, so every point would fail anyway.
pub const MIN_WORKING_SIDE: u32 = 16;

/// Why a camera frame cannot become a [`GreyFrame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Width or height is zero.
    #[error("frame is {width}x{height}: it has no pixels")]
    Empty { width: u32, height: u32 },
    /// The luma buffer is shorter than `stride × (height − 1) + width`, or the stride is below
    /// the width.
    #[error("luma buffer holds {actual} bytes but the frame needs {needed}")]
    BufferTooSmall { needed: usize, actual: usize },
    /// After downscaling, a side is below [`MIN_WORKING_SIDE`]: too little to track.
    #[error(
        "frame is {width}x{height}, {working_width}x{working_height} at working size: \
         below {MIN_WORKING_SIDE} px on a side there is too little to track"
    )]
    TooSmall {
        width: u32,
        height: u32,
        working_width: u32,
        working_height: u32,
    },
    /// The requested working side is below [`MIN_WORKING_SIDE`].
    #[error("working side {0} is below the minimum of {MIN_WORKING_SIDE} px")]
    WorkingSideTooSmall(u32),
}

/// A camera frame as the tracker sees it: grey, shrunk by a whole factor so that its longest
/// side is at most the working side.
///
/// A whole factor keeps the RGB→grey step a plain box average (cheap, no resampling filter)
/// and makes the map between source and working pixels exact: working = source / factor.
#[derive(Clone)]
pub struct GreyFrame {
    pub(crate) image: GrayImage,
    source_width: u32,
    source_height: u32,
    factor: u32,
}

impl std::fmt::Debug for GreyFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GreyFrame")
            .field("source", &(self.source_width, self.source_height))
            .field("working", &self.image.dimensions())
            .field("factor", &self.factor)
            .finish()
    }
}

impl GreyFrame {
    /// Converts an RGB frame (BT.601 luma) and shrinks it so its longest side is at most
    /// `max_working_side`.
    pub fn from_rgb(image: RgbImageRef<'_>, max_working_side: u32) -> Result<Self, FrameError> {
        let (width, height) = (image.width(), image.height());
        let geometry = Geometry::new(width, height, max_working_side)?;
        let data = downscale(&geometry, |y| image.row(y), 3, rgb_luma_sum);
        Ok(geometry.into_frame(data))
    }

    /// Shrinks an 8-bit luma plane (a camera's Y plane needs no colour conversion), rows
    /// `stride` bytes apart.
    pub fn from_luma(
        width: u32,
        height: u32,
        stride: usize,
        data: &[u8],
        max_working_side: u32,
    ) -> Result<Self, FrameError> {
        let geometry = Geometry::new(width, height, max_working_side)?;
        let row = width as usize;
        let needed = stride
            .saturating_mul(height as usize - 1)
            .saturating_add(row);
        if stride < row || data.len() < needed {
            return Err(FrameError::BufferTooSmall {
                needed: needed.max(row),
                actual: data.len(),
            });
        }
        let pixels = downscale(
            &geometry,
            |y| &data[y * stride..y * stride + row],
            1,
            luma_sum,
        );
        Ok(geometry.into_frame(pixels))
    }

    /// Width and height of the camera frame, the pixels boxes are given in.
    pub fn source_size(&self) -> (u32, u32) {
        (self.source_width, self.source_height)
    }

    /// Width and height the flow runs at.
    pub fn working_size(&self) -> (u32, u32) {
        self.image.dimensions()
    }

    /// Source pixels per working pixel (a whole number ≥ 1).
    pub fn factor(&self) -> u32 {
        self.factor
    }

    /// The working-size grey pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        self.image.as_raw()
    }
}

/// The sizes of a frame before and after shrinking, checked.
struct Geometry {
    source_width: u32,
    source_height: u32,
    factor: u32,
    working_width: u32,
    working_height: u32,
}

impl Geometry {
    fn new(width: u32, height: u32, max_working_side: u32) -> Result<Self, FrameError> {
        if max_working_side < MIN_WORKING_SIDE {
            return Err(FrameError::WorkingSideTooSmall(max_working_side));
        }
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        let factor = width.max(height).div_ceil(max_working_side).max(1);
        let (working_width, working_height) = (width / factor, height / factor);
        if working_width < MIN_WORKING_SIDE || working_height < MIN_WORKING_SIDE {
            return Err(FrameError::TooSmall {
                width,
                height,
                working_width,
                working_height,
            });
        }
        Ok(Self {
            source_width: width,
            source_height: height,
            factor,
            working_width,
            working_height,
        })
    }

    fn into_frame(self, pixels: Vec<u8>) -> GreyFrame {
        let image = GrayImage::from_raw(self.working_width, self.working_height, pixels)
            .expect("downscale writes exactly working_width × working_height pixels");
        GreyFrame {
            image,
            source_width: self.source_width,
            source_height: self.source_height,
            factor: self.factor,
        }
    }
}

/// Box-averages `factor × factor` source pixels into each working pixel. `row(y)` gives source
/// row `y`; `block_sum` adds up the luma of one row's `factor` pixels (`bytes_per_pixel` each).
/// Source pixels past the last whole block (fewer than `factor`) are left out.
fn downscale<'a>(
    geometry: &Geometry,
    row: impl Fn(usize) -> &'a [u8],
    bytes_per_pixel: usize,
    block_sum: impl Fn(&[u8]) -> u32,
) -> Vec<u8> {
    let factor = geometry.factor as usize;
    let (width, height) = (
        geometry.working_width as usize,
        geometry.working_height as usize,
    );
    let block_bytes = factor * bytes_per_pixel;
    let area = (factor * factor) as u32;
    let mut out = Vec::with_capacity(width * height);
    let mut sums = vec![0u32; width];
    for y in 0..height {
        sums.fill(0);
        for source_y in y * factor..(y + 1) * factor {
            let source = &row(source_y)[..width * block_bytes];
            for (sum, block) in sums.iter_mut().zip(source.chunks_exact(block_bytes)) {
                *sum += block_sum(block);
            }
        }
        out.extend(sums.iter().map(|&sum| ((sum + area / 2) / area) as u8));
    }
    out
}

/// BT.601 luma of packed RGB pixels, in 8-bit fixed point (weights 77, 150, 29 of 256), summed.
fn rgb_luma_sum(block: &[u8]) -> u32 {
    block
        .chunks_exact(3)
        .map(|p| (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8)
        .sum()
}

fn luma_sum(block: &[u8]) -> u32 {
    block.iter().map(|&v| v as u32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_by_a_whole_factor_to_fit_the_working_side() {
        let data = vec![200u8; 1280 * 720 * 3];
        let rgb = RgbImageRef::new(1280, 720, &data).unwrap();
        let frame = GreyFrame::from_rgb(rgb, 320).unwrap();
        assert_eq!(frame.factor(), 4);
        assert_eq!(frame.working_size(), (320, 180));
        assert_eq!(frame.source_size(), (1280, 720));
        assert!(frame.pixels().iter().all(|&v| v == 200));
    }

    #[test]
    fn box_average_of_luma() {
        // 2x2 blocks: one white pixel among three black averages to 64 (255 / 4 rounded).
        let mut data = vec![0u8; 64 * 32];
        for y in (0..32).step_by(2) {
            for x in (0..64).step_by(2) {
                data[y * 64 + x] = 255;
            }
        }
        let frame = GreyFrame::from_luma(64, 32, 64, &data, 32).unwrap();
        assert_eq!(frame.working_size(), (32, 16));
        assert!(frame.pixels().iter().all(|&v| v == 64));
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(
            GreyFrame::from_luma(0, 10, 0, &[], 320).unwrap_err(),
            FrameError::Empty {
                width: 0,
                height: 10
            }
        );
        assert!(matches!(
            GreyFrame::from_luma(8, 8, 8, &[0; 64], 320),
            Err(FrameError::TooSmall { .. })
        ));
        // Long and thin: fine in source pixels, 320x2 once shrunk.
        assert!(matches!(
            GreyFrame::from_luma(3200, 20, 3200, &vec![0; 3200 * 20], 320),
            Err(FrameError::TooSmall { .. })
        ));
        assert!(matches!(
            GreyFrame::from_luma(64, 64, 64, &[0; 100], 320),
            Err(FrameError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            GreyFrame::from_luma(64, 64, 32, &[0; 64 * 64], 320),
            Err(FrameError::BufferTooSmall { .. })
        ));
        assert_eq!(
            GreyFrame::from_luma(64, 64, 64, &[0; 64 * 64], 8).unwrap_err(),
            FrameError::WorkingSideTooSmall(8)
        );
    }
}
