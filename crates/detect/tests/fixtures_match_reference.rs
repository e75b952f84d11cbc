//! Acceptance: our detections equal the independent reference (OpenCV DNN 4.11) on every
//! fixture image, for both models at 416 and 608.
//!
//! Every reference detection must be matched one-to-one by ours with the same class,
//! IoU ≥ 0.97 and a score within 0.02; we may report nothing the reference lacks, except
//! detections whose score is within 0.02 of the 0.25 threshold.

mod common;

use deepoffload_assets::Store;
use deepoffload_core::{BBox, RgbImageRef};
use deepoffload_detect::{
    init_runtime, Detector, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector,
};
use serde_json::Value;

const MIN_IOU: f32 = 0.97;
const MAX_SCORE_DIFF: f32 = 0.02;

fn bbox(v: &Value) -> BBox {
    let a: Vec<f32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    BBox {
        x1: a[0],
        y1: a[1],
        x2: a[2],
        y2: a[3],
    }
}

fn check(model: &str, size: usize) {
    let shared = common::shared_dir();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join(format!("fixtures/{model}_{size}.json"))).unwrap(),
    )
    .unwrap();
    let threshold = fixture["conf_threshold"].as_f64().unwrap() as f32;
    let store = Store::from_env();
    init_runtime(&store, None).expect("ONNX Runtime");
    let imported =
        ImportedModel::load(&store, model, Some(size), &ModelOverrides::default()).unwrap();
    let mut detector = YoloDetector::new(&imported, DetectorOptions::default()).unwrap();

    let items = fixture["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "fixture images");
    let (mut worst_iou, mut worst_score, mut matched, mut extra_near_threshold) =
        (1.0f32, 0.0f32, 0, 0);
    for item in items {
        let name = item["image"].as_str().unwrap();
        let img = common::load_rgb(&shared.join("fixtures").join(name));
        let view = RgbImageRef::new(img.width(), img.height(), img.as_raw()).unwrap();
        let ours = detector.detect(view).unwrap().detections;
        let mut used = vec![false; ours.len()];
        for r in item["detections"].as_array().unwrap() {
            let class = r["class_id"].as_u64().unwrap() as u32;
            let rbox = bbox(&r["box"]);
            let rscore = r["score"].as_f64().unwrap() as f32;
            let best = ours
                .iter()
                .enumerate()
                .filter(|(i, d)| !used[*i] && d.class_id == class)
                .map(|(i, d)| (i, d.bbox.iou(&rbox), (d.score - rscore).abs()))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, iou, score_diff)) = best else {
                panic!(
                    "{model}@{size} {name}: reference {} {rscore:.3} {rbox:?} has no match",
                    r["class_name"]
                );
            };
            assert!(
                iou >= MIN_IOU && score_diff <= MAX_SCORE_DIFF,
                "{model}@{size} {name}: reference {} {rscore:.3} matched with IoU {iou:.4}, score diff {score_diff:.4}",
                r["class_name"]
            );
            used[i] = true;
            matched += 1;
            worst_iou = worst_iou.min(iou);
            worst_score = worst_score.max(score_diff);
        }
        for (d, _) in ours.iter().zip(&used).filter(|(_, u)| !**u) {
            assert!(
                d.score - threshold <= MAX_SCORE_DIFF,
                "{model}@{size} {name}: we report {} {:.3} {:?} which the reference lacks",
                d.class_name,
                d.score,
                d.bbox
            );
            extra_near_threshold += 1;
        }
    }
    assert!(
        matched > 20,
        "too few reference detections matched: {matched}"
    );
    eprintln!(
        "{model}@{size}: {matched} reference detections matched; worst IoU {worst_iou:.5}, worst score diff {worst_score:.5}; {extra_near_threshold} extra near the threshold"
    );
}

#[test]
fn yolov3_tiny_416() {
    check("yolov3-tiny", 416);
}

#[test]
fn yolov3_tiny_608() {
    check("yolov3-tiny", 608);
}

#[test]
fn yolov4_tiny_416() {
    check("yolov4-tiny", 416);
}

#[test]
fn yolov4_tiny_608() {
    check("yolov4-tiny", 608);
}

#[test]
fn a_batch_gives_the_same_detections_as_single_images() {
    let shared = common::shared_dir();
    let store = Store::from_env();
    init_runtime(&store, None).expect("ONNX Runtime");
    let imported =
        ImportedModel::load(&store, "yolov4-tiny", Some(416), &ModelOverrides::default()).unwrap();
    let mut detector = YoloDetector::new(&imported, DetectorOptions::default()).unwrap();
    let images: Vec<_> = ["dog.png", "horses.png", "zidane.png"]
        .iter()
        .map(|n| common::load_rgb(&shared.join("fixtures/images").join(n)))
        .collect();
    let views: Vec<_> = images
        .iter()
        .map(|i| RgbImageRef::new(i.width(), i.height(), i.as_raw()).unwrap())
        .collect();
    let batch = detector.detect_batch(&views).unwrap();
    assert_eq!(batch.len(), 3);
    for (view, batched) in views.iter().zip(&batch) {
        let single = detector.detect(*view).unwrap();
        assert_eq!(single.detections.len(), batched.detections.len());
        for (a, b) in single.detections.iter().zip(&batched.detections) {
            assert_eq!(a.class_id, b.class_id);
            assert!(a.bbox.iou(&b.bbox) > 0.999 && (a.score - b.score).abs() < 1e-4);
        }
    }
}
