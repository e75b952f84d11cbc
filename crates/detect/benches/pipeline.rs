//! Criterion benchmarks of the steps around the network: resize + tensor conversion, and head
//! decoding + NMS. (The forward pass and the whole detect step are measured by
//! `deepoffload bench detect`, beside the reference numbers.)

use criterion::{criterion_group, criterion_main, Criterion};
use deepoffload_core::RgbImageRef;
use deepoffload_detect::darknet::{Head, HeadKind};
use deepoffload_detect::postprocess::{decode_head, nms};
use deepoffload_detect::preprocess::{resize_linear_cv, BoxTransform, Preprocessor, ResizeMode};
use std::hint::black_box;

/// A deterministic 768x576 test card (the size of the reference photo).
fn image() -> (u32, u32, Vec<u8>) {
    let (w, h) = (768u32, 576u32);
    let data = (0..w * h * 3)
        .map(|i| ((i * 2654435761u32) >> 24) as u8)
        .collect();
    (w, h, data)
}

fn preprocess(c: &mut Criterion) {
    let (w, h, data) = image();
    let img = RgbImageRef::new(w, h, &data).unwrap();
    for size in [320usize, 416, 608] {
        let mut out = Vec::new();
        c.bench_function(&format!("resize 768x576→{size}"), |b| {
            b.iter(|| resize_linear_cv(black_box(img), size, size, &mut out))
        });
        let mut pre = Preprocessor::default();
        let mut tensor = vec![0.0; 3 * size * size];
        c.bench_function(&format!("preprocess 768x576→{size} tensor"), |b| {
            b.iter(|| pre.run(black_box(img), size, size, ResizeMode::Stretch, &mut tensor))
        });
    }
}

fn postprocess(c: &mut Criterion) {
    // yolov3-tiny heads at 416 with logits spread so a realistic ~1% of cells pass 0.25.
    let anchors = vec![[81.0, 82.0], [135.0, 169.0], [344.0, 319.0]];
    let heads = [13usize, 26].map(|g| Head {
        kind: HeadKind::Yolo { scale_x_y: 1.0 },
        anchors: anchors.clone(),
        classes: 80,
        grid_w: g,
        grid_h: g,
    });
    let raws: Vec<Vec<f32>> = heads
        .iter()
        .map(|h| {
            (0..3 * 85 * h.grid_w * h.grid_h)
                .map(|i| ((i * 2654435761usize) % 1000) as f32 / 100.0 - 8.0)
                .collect()
        })
        .collect();
    let t = BoxTransform {
        scale_x: 768.0,
        scale_y: 576.0,
        offset_x: 0.0,
        offset_y: 0.0,
    };
    c.bench_function("decode + NMS (yolov3-tiny @416)", |b| {
        b.iter(|| {
            let mut cands = Vec::new();
            for (head, raw) in heads.iter().zip(&raws) {
                decode_head(head, black_box(raw), 416, 416, &t, 0.25, &mut cands);
            }
            nms(cands, 0.45)
        })
    });
}

criterion_group!(benches, preprocess, postprocess);
criterion_main!(benches);
