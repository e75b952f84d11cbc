//! A borrowed view of packed RGB pixels: the one image type detectors and codecs exchange.

use std::fmt;

/// Packed 8-bit RGB pixels, row-major, `stride` bytes per row (≥ 3 × width).
///
/// A view rather than an owned buffer so that decoded video frames, `image` buffers and
/// network payloads can all be handed to a detector without copying.
#[derive(Clone, Copy)]
pub struct RgbImageRef<'a> {
    width: u32,
    height: u32,
    stride: usize,
    data: &'a [u8],
}

/// Why a pixel buffer cannot be viewed as an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// Width or height is zero: there is nothing to analyse.
    Empty { width: u32, height: u32 },
    /// The buffer is smaller than `stride × height` (or the stride is below 3 × width).
    TooSmall { needed: usize, actual: usize },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Empty { width, height } => {
                write!(f, "image is {width}x{height}: it has no pixels")
            }
            ImageError::TooSmall { needed, actual } => write!(
                f,
                "pixel buffer holds {actual} bytes but the image needs {needed} (3 bytes per RGB pixel)"
            ),
        }
    }
}

impl std::error::Error for ImageError {}

impl<'a> RgbImageRef<'a> {
    /// Views tightly packed RGB rows (`stride = 3 × width`).
    pub fn new(width: u32, height: u32, data: &'a [u8]) -> Result<Self, ImageError> {
        Self::with_stride(width, height, width as usize * 3, data)
    }

    /// Views RGB rows that may carry padding at their ends (as decoders often produce).
    pub fn with_stride(
        width: u32,
        height: u32,
        stride: usize,
        data: &'a [u8],
    ) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty { width, height });
        }
        let row = width as usize * 3;
        if stride < row {
            return Err(ImageError::TooSmall {
                needed: row,
                actual: stride,
            });
        }
        let needed = stride * (height as usize - 1) + row;
        if data.len() < needed {
            return Err(ImageError::TooSmall {
                needed,
                actual: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            stride,
            data,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per row (at least `3 × width`).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The underlying bytes, `stride` per row.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// One row of `3 × width` bytes.
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width as usize * 3]
    }
}

/// An owned, tightly packed RGB8 image: what video sources produce and detectors consume.
/// Always at least 1×1 (the constructors check), so a view of it is always valid.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbBuffer {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbBuffer {
    /// A black image.
    pub fn new(width: u32, height: u32) -> Result<Self, ImageError> {
        Self::from_raw(width, height, vec![0; width as usize * height as usize * 3])
    }

    /// Wraps packed RGB bytes (`3 × width × height`, row-major).
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Result<Self, ImageError> {
        RgbImageRef::new(width, height, &data)?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// Borrows the pixels.
    pub fn view(&self) -> RgbImageRef<'_> {
        RgbImageRef {
            width: self.width,
            height: self.height,
            stride: self.width as usize * 3,
            data: &self.data,
        }
    }
}

impl fmt::Debug for RgbBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RgbBuffer({}x{})", self.width, self.height)
    }
}

impl fmt::Debug for RgbImageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RgbImageRef({}x{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_short_buffers() {
        assert!(matches!(
            RgbImageRef::new(0, 4, &[]),
            Err(ImageError::Empty { .. })
        ));
        assert!(matches!(
            RgbImageRef::new(2, 2, &[0; 11]),
            Err(ImageError::TooSmall {
                needed: 12,
                actual: 11
            })
        ));
        let img = RgbImageRef::with_stride(2, 2, 8, &[0; 14]).unwrap();
        assert_eq!(img.row(1).len(), 6);
    }
}
