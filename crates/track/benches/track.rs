//! What the tracker costs the phone: per displayed frame (RGB→grey shrink, pyramid, 5 boxes
//! tracked) and per catch-up of a late result over ~300 ms of frames (3 frames at 10 fps, 9 at
//! 30 fps). Targets: ≤ 3 ms per 640x480 frame, ≤ 10 ms per catch-up, on one core.

use std::f32::consts::TAU;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use deepoffload_core::{Detection, RgbImageRef};
use deepoffload_track::{GreyFrame, Tracker, TrackerSettings};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{detection, render, Object, Placement, Texture};

const SIZES: [(u32, u32); 3] = [(320, 240), (640, 480), (1280, 720)];
/// The scene's motion repeats every `PERIOD` frames, so a benchmark can loop over the frames
/// for ever without a jump that would lose the boxes.
const PERIOD: usize = 24;
const BOXES: usize = 5;

struct Sequence {
    width: u32,
    height: u32,
    frames: Vec<Vec<u8>>,
    truths: Vec<Vec<Detection>>,
}

impl Sequence {
    fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        let background = Texture::new(11, 5.0 * w / 640.0);
        let objects: Vec<Object> = (0..BOXES)
            .map(|j| Object {
                texture: Texture::new(20 + j as u64, 5.0 * w / 640.0),
                width: 0.16 * w,
                height: 0.2 * h,
            })
            .collect();
        let centres = [
            (0.2, 0.25),
            (0.5, 0.25),
            (0.8, 0.25),
            (0.33, 0.7),
            (0.67, 0.7),
        ];
        let place = |i: usize, j: usize| {
            let phase = TAU * i as f32 / PERIOD as f32 + j as f32;
            Placement {
                cx: centres[j].0 * w + 0.03 * w * phase.sin(),
                cy: centres[j].1 * h + 0.03 * h * phase.cos(),
                scale: 1.0 + 0.05 * phase.sin(),
            }
        };
        let mut frames = Vec::new();
        let mut truths = Vec::new();
        for i in 0..PERIOD {
            let placed: Vec<(&Object, Placement)> = objects
                .iter()
                .enumerate()
                .map(|(j, o)| (o, place(i, j)))
                .collect();
            let shift = (TAU * i as f32 / PERIOD as f32).sin() * 0.02 * w;
            frames.push(render(width, height, &background, (shift, 0.0), &placed));
            truths.push(
                placed
                    .iter()
                    .map(|(o, at)| detection(o.bbox(*at), 0.8))
                    .collect(),
            );
        }
        Self {
            width,
            height,
            frames,
            truths,
        }
    }

    fn image(&self, i: usize) -> RgbImageRef<'_> {
        RgbImageRef::new(self.width, self.height, &self.frames[i % PERIOD]).unwrap()
    }
}

fn benches(c: &mut Criterion) {
    let sequences: Vec<Sequence> = SIZES.iter().map(|&(w, h)| Sequence::new(w, h)).collect();
    let settings = TrackerSettings::default();

    let mut group = c.benchmark_group("grey_frame");
    for s in &sequences {
        group.bench_function(
            BenchmarkId::from_parameter(format!("{}x{}", s.width, s.height)),
            |b| b.iter(|| GreyFrame::from_rgb(black_box(s.image(0)), settings.max_working_side)),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("per_frame_5_boxes");
    for s in &sequences {
        let mut tracker = Tracker::new(settings.clone()).unwrap();
        tracker.push_rgb(0, 0.0, s.image(0)).unwrap();
        tracker.set_result(0, &s.truths[0]).unwrap();
        let mut index = 0u64;
        let mut reseeds = 0;
        group.bench_function(
            BenchmarkId::from_parameter(format!("{}x{}", s.width, s.height)),
            |b| {
                b.iter(|| {
                    index += 1;
                    let i = index as usize;
                    let boxes = tracker
                        .push_rgb(index, index as f64 / 30.0, s.image(i))
                        .unwrap()
                        .len();
                    // Keep five boxes in play (a lost one is re-detected, as the app would).
                    if boxes < BOXES {
                        reseeds += 1;
                        tracker.set_result(index, &s.truths[i % PERIOD]).unwrap();
                    }
                })
            },
        );
        eprintln!(
            "{}x{}: {reseeds} re-detections in {index} frames",
            s.width, s.height
        );
    }
    group.finish();

    let mut group = c.benchmark_group("catch_up_5_boxes");
    for s in &sequences {
        for k in [3usize, 9] {
            let mut tracker = Tracker::new(settings.clone()).unwrap();
            for i in 0..=k {
                tracker
                    .push_rgb(i as u64, i as f64 / 30.0, s.image(i))
                    .unwrap();
            }
            let kept = tracker.set_result(0, &s.truths[0]).unwrap().kept;
            eprintln!(
                "{}x{} k={k}: {kept} of {BOXES} boxes caught up",
                s.width, s.height
            );
            group.bench_function(
                BenchmarkId::new(format!("{}x{}", s.width, s.height), format!("k={k}")),
                |b| b.iter(|| tracker.set_result(0, black_box(&s.truths[0])).unwrap()),
            );
        }
    }
    group.finish();
}

criterion_group!(track, benches);
criterion_main!(track);
