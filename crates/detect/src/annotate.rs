//! Drawing detections: a coloured frame per box and a "class score" label above it.
//!
//! Drawn by hand (rectangles and an 8×8 bitmap font from `font8x8`) rather than with
//! `imageproc`, which would bring nalgebra, rayon and a TrueType font file for two rectangles
//! and a line of ASCII; the output must work on a machine with no fonts installed.

use deepoffload_core::Detection;
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

/// A colour per class, spread around the hue circle so neighbouring class ids differ.
pub fn class_colour(class_id: u32) -> Rgb<u8> {
    let hue = (class_id as f32 * 0.618_034).fract() * 6.0;
    let x = 1.0 - (hue % 2.0 - 1.0).abs();
    let (r, g, b) = match hue as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    let scale = |v: f32| (55.0 + v * 200.0) as u8;
    Rgb([scale(r), scale(g), scale(b)])
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

fn text(img: &mut RgbImage, x0: i64, y0: i64, scale: i64, s: &str, colour: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::BASIC_FONTS.get('?'));
        let Some(glyph) = glyph else { continue };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let x = x0 + (i as i64 * 8 + col) * scale;
                    let y = y0 + row as i64 * scale;
                    fill(img, x, y, x + scale, y + scale, colour);
                }
            }
        }
    }
}

/// Draws every detection onto the image in place.
pub fn draw_detections(img: &mut RgbImage, detections: &[Detection]) {
    let (w, h) = (img.width(), img.height());
    // Lines and letters grow with the image so they stay readable on HD frames.
    let thickness = ((w.max(h) as i64) / 400).max(2);
    let scale = ((w.max(h) as i64) / 640).clamp(1, 3);
    for d in detections.iter().rev() {
        let b = d.bbox.clipped(w, h);
        let (x1, y1, x2, y2) = (b.x1 as i64, b.y1 as i64, b.x2 as i64, b.y2 as i64);
        if x2 <= x1 || y2 <= y1 {
            continue;
        }
        let c = class_colour(d.class_id);
        fill(img, x1, y1, x2, y1 + thickness, c);
        fill(img, x1, y2 - thickness, x2, y2, c);
        fill(img, x1, y1, x1 + thickness, y2, c);
        fill(img, x2 - thickness, y1, x2, y2, c);
        let label = format!("{} {:.2}", d.class_name, d.score);
        let (lw, lh) = (label.len() as i64 * 8 * scale + 4, 8 * scale + 4);
        let ly = if y1 - lh >= 0 { y1 - lh } else { y1 };
        fill(img, x1, ly, x1 + lw, ly + lh, c);
        text(img, x1 + 2, ly + 2, scale, &label, Rgb([0, 0, 0]));
    }
}

/// Writes lines of white text on a dark band across the top of the image (what a demo frame
/// was, where and how it was analysed).
pub fn draw_caption(img: &mut RgbImage, lines: &[String]) {
    let scale = ((img.width().max(img.height()) as i64) / 640).clamp(1, 3);
    let line_h = 8 * scale + 6;
    let band = line_h * lines.len() as i64 + 4;
    for y in 0..band.min(img.height() as i64) {
        for x in 0..img.width() {
            let p = img.get_pixel_mut(x, y as u32);
            for c in p.0.iter_mut() {
                *c /= 4;
            }
        }
    }
    for (i, line) in lines.iter().enumerate() {
        text(
            img,
            6,
            4 + i as i64 * line_h,
            scale,
            line,
            Rgb([255, 255, 255]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepoffload_core::BBox;

    #[test]
    fn draws_inside_and_survives_out_of_frame_boxes() {
        let mut img = RgbImage::new(100, 80);
        let det = |x1, y1, x2, y2| Detection {
            class_id: 16,
            class_name: "dog".into(),
            score: 0.9,
            objectness: 0.95,
            bbox: BBox { x1, y1, x2, y2 },
        };
        draw_detections(
            &mut img,
            &[
                det(10.0, 30.0, 60.0, 70.0),
                det(-50.0, -50.0, 500.0, 500.0),
                det(200.0, 200.0, 300.0, 300.0),
            ],
        );
        assert_eq!(*img.get_pixel(10, 50), class_colour(16));
        assert_eq!(*img.get_pixel(35, 50), Rgb([0, 0, 0]));
    }
}
