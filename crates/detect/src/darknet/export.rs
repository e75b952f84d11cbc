//! Darknet network + weights → an equivalent ONNX graph.
//!
//! The graph takes `images` [N, 3, H, W] (RGB, 0..1) and returns each detection head's raw
//! output [N, A·(5+C), h, w] in cfg order, exactly what Darknet feeds its `[yolo]`/`[region]`
//! layers. Decoding stays outside the graph (see `postprocess`), and the head descriptions travel
//! in the model's metadata (`deepoffload.heads`) so an exported file is self-describing.
//! Batch normalisation is folded into the convolution weights at import.

use super::network::{Activation, LayerKind, Network};
use super::weights::Weights;
use crate::onnx::proto::ModelProto;
use crate::onnx::{attr_float, attr_int, attr_ints, attr_string, Dim, GraphBuilder};

/// Name of the graph input.
pub const INPUT_NAME: &str = "images";

/// Darknet-compatible batch-norm epsilon (OpenCV's Darknet importer uses the same).
const BN_EPSILON: f32 = 1e-6;

/// Metadata key holding the JSON list of heads.
pub const META_HEADS: &str = "deepoffload.heads";
/// Metadata key holding the JSON list of class names.
pub const META_CLASS_NAMES: &str = "deepoffload.class_names";

/// Name of the k-th head output.
pub fn head_output_name(k: usize) -> String {
    format!("head_{k}")
}

/// Reads weights in file order.
struct Cursor<'a> {
    values: &'a [f32],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [f32] {
        let s = &self.values[self.pos..self.pos + n];
        self.pos += n;
        s
    }
}

/// Builds the ONNX model. `weights` must hold exactly `network.parameter_count()` values
/// (as [`Weights::read`] guarantees).
pub fn to_onnx(
    network: &Network,
    weights: &Weights,
    model_name: &str,
    class_names: &[String],
) -> ModelProto {
    assert_eq!(
        weights.values.len(),
        network.parameter_count(),
        "weights were not checked against the network"
    );
    let mut g = GraphBuilder::new();
    let input = network.input;
    g.input(
        INPUT_NAME,
        &[
            Dim::Param("batch"),
            Dim::Fixed(input.c as i64),
            Dim::Fixed(input.h as i64),
            Dim::Fixed(input.w as i64),
        ],
    );
    let mut cursor = Cursor {
        values: &weights.values,
        pos: 0,
    };
    // Tensor name holding each layer's output.
    let mut names: Vec<String> = Vec::with_capacity(network.layers.len());
    let mut head_index = 0;
    for (i, layer) in network.layers.iter().enumerate() {
        let prev = if i == 0 {
            INPUT_NAME.to_string()
        } else {
            names[i - 1].clone()
        };
        let out = format!("l{i}");
        let name = match &layer.kind {
            LayerKind::Convolutional {
                filters,
                size,
                stride,
                pad,
                groups,
                batch_normalize,
                activation,
            } => {
                let (f, k, cin) = (*filters, *size, layer.input.c / groups);
                let biases = cursor.take(f);
                let bn = batch_normalize.then(|| (cursor.take(f), cursor.take(f), cursor.take(f)));
                let raw = cursor.take(f * cin * k * k);
                let mut w = raw.to_vec();
                let mut b = biases.to_vec();
                if let Some((scales, mean, var)) = bn {
                    let per_filter = cin * k * k;
                    for o in 0..f {
                        let s = scales[o] / (var[o] + BN_EPSILON).sqrt();
                        for v in &mut w[o * per_filter..(o + 1) * per_filter] {
                            *v *= s;
                        }
                        b[o] = biases[o] - mean[o] * s;
                    }
                }
                let wn = g.weights_f32(
                    &format!("l{i}.weight"),
                    &[f as i64, cin as i64, k as i64, k as i64],
                    &w,
                );
                let bname = g.weights_f32(&format!("l{i}.bias"), &[f as i64], &b);
                let conv_out = if *activation == Activation::Linear {
                    out.clone()
                } else {
                    format!("l{i}.conv")
                };
                let p = *pad as i64;
                g.node(
                    "Conv",
                    &format!("l{i}.conv"),
                    &[&prev, &wn, &bname],
                    &[&conv_out],
                    vec![
                        attr_ints("kernel_shape", &[k as i64, k as i64]),
                        attr_ints("strides", &[*stride as i64, *stride as i64]),
                        attr_ints("pads", &[p, p, p, p]),
                        attr_int("group", *groups as i64),
                    ],
                );
                activate(&mut g, i, &conv_out, &out, *activation);
                out
            }
            LayerKind::MaxPool {
                size,
                stride,
                padding,
            } => {
                let begin = padding / 2;
                let end_h =
                    ((layer.output.h - 1) * stride + size).saturating_sub(layer.input.h + begin);
                let end_w =
                    ((layer.output.w - 1) * stride + size).saturating_sub(layer.input.w + begin);
                let b = begin as i64;
                g.node(
                    "MaxPool",
                    &out,
                    &[&prev],
                    &[&out],
                    vec![
                        attr_ints("kernel_shape", &[*size as i64, *size as i64]),
                        attr_ints("strides", &[*stride as i64, *stride as i64]),
                        attr_ints("pads", &[b, b, end_h as i64, end_w as i64]),
                    ],
                );
                out
            }
            LayerKind::Route {
                layers,
                groups,
                group_id,
            } => {
                let mut parts = Vec::with_capacity(layers.len());
                for (j, &l) in layers.iter().enumerate() {
                    let src = names[l].clone();
                    if *groups == 1 {
                        parts.push(src);
                        continue;
                    }
                    let part = network.layers[l].output.c / groups;
                    let starts =
                        g.constant_i64(&format!("l{i}.starts{j}"), &[(group_id * part) as i64]);
                    let ends =
                        g.constant_i64(&format!("l{i}.ends{j}"), &[((group_id + 1) * part) as i64]);
                    let axes = g.constant_i64(&format!("l{i}.axes{j}"), &[1]);
                    let sliced = format!("l{i}.part{j}");
                    g.node(
                        "Slice",
                        &sliced,
                        &[&src, &starts, &ends, &axes],
                        &[&sliced],
                        vec![],
                    );
                    parts.push(sliced);
                }
                if parts.len() == 1 {
                    parts.pop().expect("one part")
                } else {
                    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                    g.node("Concat", &out, &refs, &[&out], vec![attr_int("axis", 1)]);
                    out
                }
            }
            LayerKind::Shortcut { from, activation } => {
                let sum = if *activation == Activation::Linear {
                    out.clone()
                } else {
                    format!("l{i}.sum")
                };
                g.node(
                    "Add",
                    &format!("l{i}.add"),
                    &[&prev, &names[*from]],
                    &[&sum],
                    vec![],
                );
                activate(&mut g, i, &sum, &out, *activation);
                out
            }
            LayerKind::Upsample { stride, scale } => {
                let s = *stride as f32;
                let scales = g.weights_f32(&format!("l{i}.scales"), &[4], &[1.0, 1.0, s, s]);
                let resized = if *scale == 1.0 {
                    out.clone()
                } else {
                    format!("l{i}.resized")
                };
                g.node(
                    "Resize",
                    &format!("l{i}.resize"),
                    &[&prev, "", &scales],
                    &[&resized],
                    vec![
                        attr_string("mode", "nearest"),
                        attr_string("coordinate_transformation_mode", "asymmetric"),
                        attr_string("nearest_mode", "floor"),
                    ],
                );
                if *scale != 1.0 {
                    let k = g.weights_f32(&format!("l{i}.scale"), &[], &[*scale]);
                    g.node("Mul", &out, &[&resized, &k], &[&out], vec![]);
                }
                out
            }
            LayerKind::Reorg { stride } => {
                // Darknet's reorg (reorg_cpu with forward=0) reads its input as
                // [C/s², H·s, W·s] and gathers s×s phases into channels; see the test
                // `reorg_matches_darknet_loops` for the loop it must equal.
                let (c, h, w, s) = (
                    layer.input.c as i64,
                    layer.input.h as i64,
                    layer.input.w as i64,
                    *stride as i64,
                );
                let shape1 =
                    g.constant_i64(&format!("l{i}.shape1"), &[-1, c / (s * s), h, s, w, s]);
                let shape2 =
                    g.constant_i64(&format!("l{i}.shape2"), &[-1, c * s * s, h / s, w / s]);
                let (a, t) = (format!("l{i}.view"), format!("l{i}.perm"));
                g.node("Reshape", &a, &[&prev, &shape1], &[&a], vec![]);
                g.node(
                    "Transpose",
                    &t,
                    &[&a],
                    &[&t],
                    vec![attr_ints("perm", &[0, 3, 5, 1, 2, 4])],
                );
                g.node("Reshape", &out, &[&t, &shape2], &[&out], vec![]);
                out
            }
            LayerKind::Dropout => prev,
            LayerKind::Head(_) => {
                let head_name = head_output_name(head_index);
                head_index += 1;
                g.node("Identity", &head_name, &[&prev], &[&head_name], vec![]);
                let s = layer.output;
                g.output(
                    &head_name,
                    &[
                        Dim::Param("batch"),
                        Dim::Fixed(s.c as i64),
                        Dim::Fixed(s.h as i64),
                        Dim::Fixed(s.w as i64),
                    ],
                );
                // Nothing may read a head's output (the parser rejects such networks).
                head_name
            }
        };
        names.push(name);
    }
    debug_assert_eq!(cursor.pos, weights.values.len());
    let heads = serde_json::to_string(&network.heads()).expect("heads serialise");
    let metadata = vec![
        (META_HEADS.to_string(), heads),
        (
            META_CLASS_NAMES.to_string(),
            serde_json::to_string(class_names).expect("names serialise"),
        ),
        ("deepoffload.source".to_string(), network.source.clone()),
        (
            "deepoffload.preprocess".to_string(),
            "RGB, plain resize to the input size (or letterbox), scaled to 0..1, NCHW".to_string(),
        ),
    ];
    let doc = format!(
        "{model_name} imported from Darknet {} at {}x{}; outputs are raw head tensors (see metadata {META_HEADS})",
        network.source, input.w, input.h
    );
    g.into_model(model_name, &doc, metadata)
}

fn activate(g: &mut GraphBuilder, i: usize, x: &str, out: &str, activation: Activation) {
    let name = format!("l{i}.act");
    match activation {
        Activation::Linear => {}
        Activation::Leaky => g.node(
            "LeakyRelu",
            &name,
            &[x],
            &[out],
            vec![attr_float("alpha", 0.1)],
        ),
        Activation::Relu => g.node("Relu", &name, &[x], &[out], vec![]),
        Activation::Logistic => g.node("Sigmoid", &name, &[x], &[out], vec![]),
        Activation::Tanh => g.node("Tanh", &name, &[x], &[out], vec![]),
        Activation::Mish => {
            // mish(x) = x · tanh(softplus(x)); spelled out because the Mish operator needs opset 18.
            let (sp, th) = (format!("l{i}.softplus"), format!("l{i}.tanh"));
            g.node("Softplus", &sp, &[x], &[&sp], vec![]);
            g.node("Tanh", &th, &[&sp], &[&th], vec![]);
            g.node("Mul", &name, &[x, &th], &[out], vec![]);
        }
        Activation::Swish => {
            let sg = format!("l{i}.sigmoid");
            g.node("Sigmoid", &sg, &[x], &[&sg], vec![]);
            g.node("Mul", &name, &[x, &sg], &[out], vec![]);
        }
    }
}
