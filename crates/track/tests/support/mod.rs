//! Synthetic scenes with exact ground truth: smooth random textures (value noise) rendered at
//! any sub-pixel offset and scale, so a box's true position is known in every frame.

#![allow(dead_code)]

use deepoffload_core::{BBox, Detection};

/// A random texture defined everywhere: random grey values on a lattice `cell` px apart,
/// smoothly interpolated (C¹, so LK's linearisation holds at any sub-pixel position).
pub struct Texture {
    values: Vec<f32>,
    size: usize,
    cell: f32,
}

impl Texture {
    pub fn new(seed: u64, cell: f32) -> Self {
        let size = 256;
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let values = (0..size * size)
            .map(|_| {
                // xorshift64*: deterministic, no dependency.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let r = state.wrapping_mul(2685821657736338717) >> 40;
                30.0 + 195.0 * (r as f32 / (1u64 << 24) as f32)
            })
            .collect();
        Self { values, size, cell }
    }

    /// The texture's grey value at `(x, y)` (wrapping around its lattice).
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let (u, v) = (x / self.cell, y / self.cell);
        let (u0, v0) = (u.floor(), v.floor());
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let (fu, fv) = (smooth(u - u0), smooth(v - v0));
        let n = self.size as i64;
        let value = |i: i64, j: i64| self.values[(j.rem_euclid(n) * n + i.rem_euclid(n)) as usize];
        let (i, j) = (u0 as i64, v0 as i64);
        let top = value(i, j) * (1.0 - fu) + value(i + 1, j) * fu;
        let bottom = value(i, j + 1) * (1.0 - fu) + value(i + 1, j + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }
}

/// One textured object: its own texture drawn in `bbox`, scaled with it.
pub struct Object {
    pub texture: Texture,
    /// Size at scale 1.
    pub width: f32,
    pub height: f32,
}

/// Where an object is in one frame.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub cx: f32,
    pub cy: f32,
    pub scale: f32,
}

impl Object {
    pub fn bbox(&self, at: Placement) -> BBox {
        BBox::from_center(at.cx, at.cy, self.width * at.scale, self.height * at.scale)
    }
}

/// Renders an RGB frame: the background shifted by `background_shift`, objects on top.
pub fn render(
    width: u32,
    height: u32,
    background: &Texture,
    background_shift: (f32, f32),
    objects: &[(&Object, Placement)],
) -> Vec<u8> {
    let mut data = vec![0u8; width as usize * height as usize * 3];
    for y in 0..height as usize {
        for x in 0..width as usize {
            // Sample at the pixel centre, in continuous coordinates.
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let mut value = background.at(px - background_shift.0, py - background_shift.1);
            for (object, at) in objects {
                let b = object.bbox(*at);
                if px >= b.x1 && px < b.x2 && py >= b.y1 && py < b.y2 {
                    value = object
                        .texture
                        .at((px - b.x1) / at.scale, (py - b.y1) / at.scale);
                }
            }
            let v = value.round().clamp(0.0, 255.0) as u8;
            data[(y * width as usize + x) * 3..][..3].fill(v);
        }
    }
    data
}

pub fn detection(bbox: BBox, score: f32) -> Detection {
    Detection {
        class_id: 0,
        class_name: "person".into(),
        score,
        objectness: score,
        bbox,
    }
}

/// The largest distance between corresponding corners of two boxes.
pub fn corner_error(a: BBox, b: BBox) -> f32 {
    [a.x1 - b.x1, a.y1 - b.y1, a.x2 - b.x2, a.y2 - b.y2]
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()))
}
