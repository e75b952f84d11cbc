//! Every cfg under `../shared/models/` parses and builds with the right shapes; ONNX Runtime
//! agrees with our shapes; reorg equals Darknet's loops; bad cfg and weights give errors that
//! name the file and the problem.

mod common;

use deepoffload_assets::Store;
use deepoffload_detect::darknet::{to_onnx, HeadKind, Network, Weights};
use deepoffload_detect::{init_runtime, OrtModel};
use prost::Message;

fn cfg(rel: &str) -> (String, String) {
    let path = common::shared_dir().join("models").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, path.display().to_string())
}

/// Head output shape: channels, height, width.
type HeadShape = (usize, usize, usize);

/// (cfg, input size, expected head shapes, region heads?)
const CASES: &[(&str, usize, &[HeadShape], bool)] = &[
    (
        "yolov3-tiny/yolov3-tiny.cfg",
        416,
        &[(255, 13, 13), (255, 26, 26)],
        false,
    ),
    (
        "yolov4-tiny/yolov4-tiny.cfg",
        608,
        &[(255, 19, 19), (255, 38, 38)],
        false,
    ),
    (
        "cfg/yolov3-tiny.cfg",
        320,
        &[(255, 10, 10), (255, 20, 20)],
        false,
    ),
    (
        "cfg/yolov3.cfg",
        416,
        &[(255, 13, 13), (255, 26, 26), (255, 52, 52)],
        false,
    ),
    (
        "cfg/yolov3-spp.cfg",
        608,
        &[(255, 19, 19), (255, 38, 38), (255, 76, 76)],
        false,
    ),
    ("cfg/yolov2.cfg", 608, &[(425, 19, 19)], true),
    ("cfg/yolov2-tiny.cfg", 416, &[(425, 13, 13)], true),
];

#[test]
fn every_shared_cfg_parses_with_right_head_shapes() {
    for &(rel, size, shapes, region) in CASES {
        let (text, name) = cfg(rel);
        let net =
            Network::parse(&text, &name, Some((size, size))).unwrap_or_else(|e| panic!("{e}"));
        let heads: Vec<_> = net
            .layers
            .iter()
            .filter(|l| matches!(l.kind, deepoffload_detect::darknet::LayerKind::Head(_)))
            .map(|l| (l.output.c, l.output.h, l.output.w))
            .collect();
        assert_eq!(heads, shapes, "{rel}");
        assert!(
            net.heads()
                .iter()
                .all(|h| matches!(h.kind, HeadKind::Region) == region),
            "{rel}"
        );
    }
}

#[test]
fn parameter_counts_match_the_official_weights() {
    // Official file sizes: header (20 bytes) + 4 bytes per parameter.
    for (rel, bytes) in [
        ("yolov3-tiny/yolov3-tiny.cfg", 35_434_956usize),
        ("yolov4-tiny/yolov4-tiny.cfg", 24_251_276),
        ("cfg/yolov3.cfg", 248_007_048),
    ] {
        let (text, name) = cfg(rel);
        let net = Network::parse(&text, &name, None).unwrap();
        assert_eq!(20 + 4 * net.parameter_count(), bytes, "{rel}");
    }
}

#[test]
fn bflops_match_darknet() {
    // Darknet's own figures at 416 (../shared/models/README.md).
    for (rel, size, bflops) in [
        ("yolov3-tiny/yolov3-tiny.cfg", 416, 5.56),
        ("yolov4-tiny/yolov4-tiny.cfg", 416, 6.91),
        ("yolov4-tiny/yolov4-tiny.cfg", 608, 14.76),
    ] {
        let (text, name) = cfg(rel);
        let got = Network::parse(&text, &name, Some((size, size)))
            .unwrap()
            .bflops();
        assert!(
            (got - bflops).abs() / bflops < 0.01,
            "{rel}@{size}: {got:.3} BFLOPs, Darknet says {bflops}"
        );
    }
}

fn run_synthetic(text: &str, name: &str, size: usize, input: &[f32]) -> (Network, Vec<Vec<f32>>) {
    let store = Store::from_env();
    init_runtime(&store, None).expect("ONNX Runtime");
    let net = Network::parse(text, name, Some((size, size))).unwrap();
    let weights = Weights::synthetic(&net, 7);
    let bytes = to_onnx(&net, &weights, name, &[]).encode_to_vec();
    let mut model = OrtModel::from_bytes(&bytes, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    let outs = model
        .run(input, [1, net.input.c, size, size], |outs| {
            outs.iter().map(|o| o.to_vec()).collect()
        })
        .unwrap();
    (net, outs)
}

#[test]
fn onnx_runtime_agrees_with_our_shapes_for_every_cfg() {
    for &(rel, _, _, _) in CASES {
        let (text, name) = cfg(rel);
        let size = 160;
        let input: Vec<f32> = (0..3 * size * size)
            .map(|i| (i % 255) as f32 / 255.0)
            .collect();
        let (net, outs) = run_synthetic(&text, &name, size, &input);
        let heads: Vec<usize> = net
            .layers
            .iter()
            .filter(|l| matches!(l.kind, deepoffload_detect::darknet::LayerKind::Head(_)))
            .map(|l| l.output.elements())
            .collect();
        let got: Vec<usize> = outs.iter().map(Vec::len).collect();
        assert_eq!(got, heads, "{rel}");
        assert!(
            outs.iter().flatten().all(|v| v.is_finite()),
            "{rel}: non-finite output"
        );
    }
}

/// Darknet's `reorg_cpu(x, w, h, c, batch=1, stride, forward=0, out)`, transcribed loop for loop.
fn darknet_reorg(x: &[f32], w: usize, h: usize, c: usize, stride: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    let out_c = c / (stride * stride);
    for k in 0..c {
        for j in 0..h {
            for i in 0..w {
                let in_index = i + w * (j + h * k);
                let c2 = k % out_c;
                let offset = k / out_c;
                let w2 = i * stride + offset % stride;
                let h2 = j * stride + offset / stride;
                let out_index = w2 + w * stride * (h2 + h * stride * c2);
                out[in_index] = x[out_index];
            }
        }
    }
    out
}

#[test]
fn reorg_matches_darknet_loops() {
    // A 32x32x8 input, reorg stride 2 → 16x16x32 read raw through a region head
    // (32 channels = 2 anchors × (5 + 11 classes)).
    let text = "[net]\nwidth=32\nheight=32\nchannels=8\n[reorg]\nstride=2\n[region]\nanchors=1,1,2,2\nnum=2\nclasses=11\ncoords=4\nsoftmax=1\n";
    let input: Vec<f32> = (0..8 * 32 * 32)
        .map(|i| ((i * 7919) % 1000) as f32)
        .collect();
    let (_, outs) = run_synthetic(text, "reorg.cfg", 32, &input);
    assert_eq!(outs[0], darknet_reorg(&input, 32, 32, 8, 2));
}

#[test]
fn maxpool_size2_stride1_pads_right_and_bottom() {
    // Darknet pads a 2x2/1 max pool at the end only, keeping the size: out[y][x] = max of
    // the 2x2 window starting at (y, x), with -inf outside.
    let text = "[net]\nwidth=32\nheight=32\nchannels=6\n[maxpool]\nsize=2\nstride=1\n[yolo]\nmask=0\nanchors=1,1\nnum=1\nclasses=1\n";
    let input: Vec<f32> = (0..6 * 32 * 32).map(|i| ((i * 31) % 97) as f32).collect();
    let (_, outs) = run_synthetic(text, "pool.cfg", 32, &input);
    let at = |c: usize, y: usize, x: usize| {
        if y < 32 && x < 32 {
            input[(c * 32 + y) * 32 + x]
        } else {
            f32::MIN
        }
    };
    for c in 0..6 {
        for y in 0..32 {
            for x in 0..32 {
                let want = at(c, y, x)
                    .max(at(c, y, x + 1))
                    .max(at(c, y + 1, x))
                    .max(at(c, y + 1, x + 1));
                assert_eq!(outs[0][(c * 32 + y) * 32 + x], want, "c{c} y{y} x{x}");
            }
        }
    }
}

#[test]
fn bad_cfgs_give_located_errors() {
    let cases = [
        ("[net]\nwidth=416\nheight=416\n[conv2d]\nfilters=3\n", "bad.cfg:4:", "layer type `[conv2d]` is not supported"),
        ("[net]\nwidth 416\n", "bad.cfg:2:", "neither a `[section]`"),
        ("[convolutional]\nfilters=3\n[yolo]\n", "bad.cfg:1:", "must start with `[net]`"),
        ("", "bad.cfg:1:", "no sections"),
        ("[net]\n[convolutional]\nfilters=abc\n", "bad.cfg:3:", "must be an integer"),
        ("[net]\n[route]\nlayers=-5\n", "bad.cfg:2:", "refers to layer -5"),
        ("[net]\n[convolutional]\nfilters=18\nactivation=gelu\n[yolo]\nmask=0\nanchors=1,1\nnum=1\nclasses=1\n", "bad.cfg:2:", "activation `gelu`"),
        ("[net]\n[convolutional]\nfilters=17\n[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nnum=3\nclasses=1\n", "bad.cfg:4:", "need 18"),
        ("[net]\n[convolutional]\nfilters=6\n", "bad.cfg:2:", "no [yolo] or [region] layer"),
    ];
    for (text, location, message) in cases {
        let err = Network::parse(text, "bad.cfg", Some((416, 416)))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(location) && err.contains(message),
            "{text:?} gave: {err}"
        );
    }
    let err = Network::parse("[net]\n[yolo]\n", "bad.cfg", Some((100, 100)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("multiples of 32"), "{err}");
}

#[test]
fn truncated_and_foreign_weights_are_rejected_with_sizes() {
    let (text, name) = cfg("yolov3-tiny/yolov3-tiny.cfg");
    let net = Network::parse(&text, &name, None).unwrap();
    let path = common::shared_dir().join("models/yolov3-tiny/yolov3-tiny.weights");
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.weights");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let err = Weights::read(&cut, net.parameter_count(), &name)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.weights")
            && err.contains("35433956 bytes")
            && err.contains("needs 35434956 bytes"),
        "{err}"
    );
    // yolov4-tiny weights with the yolov3-tiny cfg.
    let other = common::shared_dir().join("models/yolov4-tiny/yolov4-tiny.weights");
    let err = Weights::read(&other, net.parameter_count(), &name)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("24251276 bytes") && err.contains("needs 35434956"),
        "{err}"
    );
}

/// A network of 1x1 convolutions on a 32x32 input, with hand-set weights, so every exported
/// operator can be checked against Darknet's formula value by value.
fn run_with_weights(text: &str, values: Vec<f32>, input: &[f32]) -> Vec<f32> {
    let store = Store::from_env();
    init_runtime(&store, None).expect("ONNX Runtime");
    let net = Network::parse(text, "ops.cfg", Some((32, 32))).unwrap();
    assert_eq!(values.len(), net.parameter_count());
    let weights = Weights {
        header: Weights::synthetic(&net, 0).header,
        values,
    };
    let bytes = to_onnx(&net, &weights, "ops", &[]).encode_to_vec();
    let mut model = OrtModel::from_bytes(&bytes, 1).unwrap();
    model
        .run(input, [1, net.input.c, 32, 32], |outs| outs[0].to_vec())
        .unwrap()
}

const HEAD6: &str = "[yolo]\nmask=0\nanchors=1,1\nnum=1\nclasses=1\n";

#[test]
fn activations_match_darknet_formulas() {
    let input: Vec<f32> = (0..32 * 32)
        .map(|i| (i as f32 / 1024.0 - 0.5) * 8.0)
        .collect();
    type Formula = fn(f32) -> f32;
    let cases: [(&str, Formula); 7] = [
        ("linear", |x| x),
        ("leaky", |x| if x > 0.0 { x } else { 0.1 * x }),
        ("relu", |x| x.max(0.0)),
        ("logistic", |x| 1.0 / (1.0 + (-x).exp())),
        ("tanh", f32::tanh),
        ("mish", |x| x * ((1.0 + x.exp()).ln()).tanh()),
        ("swish", |x| x / (1.0 + (-x).exp())),
    ];
    for (name, f) in cases {
        // 6 filters of one 1x1 weight each: y_k = act(w_k·x + b_k).
        let text = format!(
            "[net]\nchannels=1\n[convolutional]\nfilters=6\nsize=1\nactivation={name}\n{HEAD6}"
        );
        let (w, b): (Vec<f32>, Vec<f32>) = (
            (0..6).map(|k| 0.5 + k as f32 * 0.3).collect(),
            (0..6).map(|k| k as f32 * 0.1 - 0.2).collect(),
        );
        let mut values = b.clone();
        values.extend(&w);
        let out = run_with_weights(&text, values, &input);
        for k in 0..6 {
            for (i, &x) in input.iter().enumerate() {
                let want = f(w[k] * x + b[k]);
                let got = out[k * 1024 + i];
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{name} filter {k} x={x}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn batch_norm_and_shortcut_match_darknet_formulas() {
    // conv A (bn, linear) → conv B (linear) → shortcut from A → head.
    let text = format!(
        "[net]\nchannels=1\n[convolutional]\nbatch_normalize=1\nfilters=6\nsize=1\nactivation=linear\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[shortcut]\nfrom=-2\nactivation=linear\n{HEAD6}"
    );
    let input: Vec<f32> = (0..32 * 32).map(|i| (i % 17) as f32 / 17.0).collect();
    let (beta, gamma, mean, var): (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) = (
        (0..6).map(|k| 0.1 * k as f32).collect(),
        (0..6).map(|k| 1.0 + 0.2 * k as f32).collect(),
        (0..6).map(|k| 0.05 * k as f32).collect(),
        (0..6).map(|k| 0.5 + 0.25 * k as f32).collect(),
    );
    let wa: Vec<f32> = (0..6).map(|k| 1.0 - 0.1 * k as f32).collect();
    // B: 6x6 1x1 kernel, bias.
    let wb: Vec<f32> = (0..36)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    let bb: Vec<f32> = (0..6).map(|k| 0.01 * k as f32).collect();
    let mut values = Vec::new();
    for v in [&beta, &gamma, &mean, &var, &wa, &bb, &wb] {
        values.extend(v.iter());
    }
    let out = run_with_weights(&text, values, &input);
    for (i, &x) in input.iter().enumerate() {
        let a: Vec<f32> = (0..6)
            .map(|k| gamma[k] * (wa[k] * x - mean[k]) / (var[k] + 1e-6).sqrt() + beta[k])
            .collect();
        for o in 0..6 {
            let bsum: f32 = bb[o] + (0..6).map(|c| wb[o * 6 + c] * a[c]).sum::<f32>();
            let want = bsum + a[o];
            let got = out[o * 1024 + i];
            assert!(
                (got - want).abs() < 1e-4,
                "channel {o} x={x}: {got} vs {want}"
            );
        }
    }
}
