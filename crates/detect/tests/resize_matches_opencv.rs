//! Our plain resize must equal OpenCV's `resize(INTER_LINEAR)` byte for byte: the digests in
//! `data/cv2_resize_digests.json` were produced by OpenCV 4.11 with
//! `scripts/reference/cv2_resize_digests.py`.

mod common;

use deepoffload_core::RgbImageRef;
use deepoffload_detect::preprocess::resize_linear_cv;
use sha2::{Digest, Sha256};

#[test]
fn resize_is_bit_exact_with_opencv() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("data/cv2_resize_digests.json")).unwrap();
    let images = reference["images"].as_object().unwrap();
    assert!(images.len() >= 10);
    let dir = common::shared_dir().join("fixtures/images");
    let mut out = Vec::new();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (name, digests) in images {
        let img = common::load_rgb(&dir.join(name));
        let view = RgbImageRef::new(img.width(), img.height(), img.as_raw()).unwrap();
        for (size, digest) in digests.as_object().unwrap() {
            let (w, h) = size.split_once('x').unwrap();
            resize_linear_cv(view, w.parse().unwrap(), h.parse().unwrap(), &mut out);
            let ours = hex::encode(Sha256::digest(&out));
            if ours != digest.as_str().unwrap() {
                mismatches.push(format!("{name} → {size}"));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, images.len() * 6);
    assert!(mismatches.is_empty(), "differs from OpenCV: {mismatches:?}");
}
