//! Typed Darknet layers with their tensor shapes at a chosen input size.

use super::cfg::{parse_sections, Options, Section};
use super::DarknetError;
use serde::{Deserialize, Serialize};

/// Channels × height × width of one layer's output (batch excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub fn elements(&self) -> usize {
        self.c * self.h * self.w
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// Activation functions Darknet applies after convolutions and shortcuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Leaky,
    Relu,
    Logistic,
    Mish,
    Swish,
    Tanh,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "linear" => Self::Linear,
            "leaky" => Self::Leaky,
            "relu" => Self::Relu,
            "logistic" => Self::Logistic,
            "mish" => Self::Mish,
            "swish" => Self::Swish,
            "tanh" => Self::Tanh,
            _ => return None,
        })
    }
}

/// How to decode one detection head's raw output into boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HeadKind {
    /// YOLOv3/v4 `[yolo]`: sigmoid x/y (stretched by `scale_x_y`), anchors in input pixels,
    /// independent sigmoid class scores.
    Yolo { scale_x_y: f32 },
    /// YOLOv2 `[region]`: sigmoid x/y, anchors in grid cells, softmax class scores.
    Region,
}

/// A detection head: which anchors it predicts with, over which grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    #[serde(flatten)]
    pub kind: HeadKind,
    /// (width, height) of each anchor this head predicts, in input pixels for `yolo`, in grid
    /// cells for `region`.
    pub anchors: Vec<[f32; 2]>,
    pub classes: usize,
    pub grid_w: usize,
    pub grid_h: usize,
}

impl Head {
    /// Values per anchor per cell: x, y, w, h, objectness, classes.
    pub fn stride_per_anchor(&self) -> usize {
        5 + self.classes
    }
}

/// One Darknet layer.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    Convolutional {
        filters: usize,
        size: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        batch_normalize: bool,
        activation: Activation,
    },
    MaxPool {
        size: usize,
        stride: usize,
        /// Darknet's total padding; `padding / 2` goes before, the rest after as needed.
        padding: usize,
    },
    Route {
        layers: Vec<usize>,
        groups: usize,
        group_id: usize,
    },
    Shortcut {
        from: usize,
        activation: Activation,
    },
    Upsample {
        stride: usize,
        scale: f32,
    },
    Reorg {
        stride: usize,
    },
    Dropout,
    Head(Head),
}

impl LayerKind {
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::Convolutional { .. } => "convolutional",
            LayerKind::MaxPool { .. } => "maxpool",
            LayerKind::Route { .. } => "route",
            LayerKind::Shortcut { .. } => "shortcut",
            LayerKind::Upsample { .. } => "upsample",
            LayerKind::Reorg { .. } => "reorg",
            LayerKind::Dropout => "dropout",
            LayerKind::Head(Head {
                kind: HeadKind::Yolo { .. },
                ..
            }) => "yolo",
            LayerKind::Head(Head {
                kind: HeadKind::Region,
                ..
            }) => "region",
        }
    }
}

/// A layer with its shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub kind: LayerKind,
    /// Line of its `[section]` header, for error messages.
    pub line: usize,
    /// Shape of the previous layer's output (what a convolution reads).
    pub input: Shape,
    pub output: Shape,
}

/// A whole Darknet network at one input size.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Name used in messages (usually the cfg file name).
    pub source: String,
    pub input: Shape,
    pub layers: Vec<Layer>,
}

/// Largest accepted input side, in pixels.
pub const MAX_INPUT: usize = 8192;
const MAX_CHANNELS: usize = 1 << 16;
const MAX_KERNEL: usize = 64;
const MAX_CLASSES: usize = 100_000;
const MAX_ANCHORS: usize = 1000;
/// Largest accepted tensor side and element count of any layer.
const MAX_SIDE: usize = 1 << 16;
const MAX_ELEMENTS: usize = 1 << 32;

const SUPPORTED: &str =
    "convolutional, maxpool, route, shortcut, upsample, yolo, region, reorg, dropout";

impl Network {
    /// Parses cfg text. `input_size` = (width, height) overrides the `[net]` size; both must be
    /// positive multiples of 32 (the total stride of every YOLO backbone).
    pub fn parse(
        text: &str,
        source: &str,
        input_size: Option<(usize, usize)>,
    ) -> Result<Network, DarknetError> {
        let sections = parse_sections(text, source)?;
        let Some((net, layers)) = sections.split_first() else {
            return Err(DarknetError::Cfg {
                file: source.into(),
                line: 1,
                message: "the file has no sections; a Darknet cfg starts with `[net]`".into(),
            });
        };
        if net.kind != "net" && net.kind != "network" {
            return Err(DarknetError::Cfg {
                file: source.into(),
                line: net.line,
                message: format!(
                    "the first section is `[{}]`, but a Darknet cfg must start with `[net]`",
                    net.kind
                ),
            });
        }
        let opts = Options {
            section: net,
            source,
            index: None,
        };
        let (width, height) = match input_size {
            Some(size) => size,
            None => (
                opts.positive("width", 416, MAX_INPUT)?,
                opts.positive("height", 416, MAX_INPUT)?,
            ),
        };
        let channels = opts.positive("channels", 3, MAX_CHANNELS)?;
        if width == 0
            || height == 0
            || width % 32 != 0
            || height % 32 != 0
            || width > MAX_INPUT
            || height > MAX_INPUT
        {
            return Err(DarknetError::InputSize {
                file: source.into(),
                width,
                height,
            });
        }
        let input = Shape {
            c: channels,
            h: height,
            w: width,
        };
        let mut built: Vec<Layer> = Vec::with_capacity(layers.len());
        for (index, section) in layers.iter().enumerate() {
            let opts = Options {
                section,
                source,
                index: Some(index),
            };
            let prev = built.last().map_or(input, |l| l.output);
            let layer = build_layer(&opts, index, prev, &built)?;
            built.push(layer);
        }
        if !built.iter().any(|l| matches!(l.kind, LayerKind::Head(_))) {
            return Err(DarknetError::Cfg {
                file: source.into(),
                line: layers.last().map_or(net.line, |s| s.line),
                message: "the network has no [yolo] or [region] layer, so it detects nothing"
                    .into(),
            });
        }
        Ok(Network {
            source: source.into(),
            input,
            layers: built,
        })
    }

    /// The detection heads in cfg order (the order of the model's outputs).
    pub fn heads(&self) -> Vec<Head> {
        self.layers
            .iter()
            .filter_map(|l| match &l.kind {
                LayerKind::Head(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    /// Number of float32 parameters the weights file must hold after its header.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l.kind {
                LayerKind::Convolutional {
                    filters,
                    size,
                    groups,
                    batch_normalize,
                    ..
                } => {
                    let bn = if batch_normalize { 3 * filters } else { 0 };
                    filters + bn + filters * (l.input.c / groups) * size * size
                }
                _ => 0,
            })
            .fold(0usize, usize::saturating_add)
    }

    /// Multiply-adds × 2 of all convolutions, in billions (Darknet's "BFLOPs").
    pub fn bflops(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| match l.kind {
                LayerKind::Convolutional { size, groups, .. } => {
                    2.0 * (l.output.elements() * (l.input.c / groups) * size * size) as f64
                }
                _ => 0.0,
            })
            .sum::<f64>()
            / 1e9
    }
}

fn resolve_index(
    opts: &Options<'_>,
    index: usize,
    value: i64,
    key: &str,
) -> Result<usize, DarknetError> {
    let abs = if value < 0 {
        index as i64 + value
    } else {
        value
    };
    if abs < 0 || abs >= index as i64 {
        return Err(opts.section_error(format!(
            "`{key}` refers to layer {value} (absolute {abs}), but only layers 0..{} come before it",
            index as i64 - 1
        )));
    }
    Ok(abs as usize)
}

fn reject_head_input(
    opts: &Options<'_>,
    built: &[Layer],
    layer: usize,
) -> Result<(), DarknetError> {
    if let LayerKind::Head(_) = built[layer].kind {
        return Err(opts.section_error(format!(
            "uses the output of detection layer {layer}; only the raw input of [yolo]/[region] layers is exported, so this network is not supported"
        )));
    }
    Ok(())
}

fn padding(opts: &Options<'_>, default: i64) -> Result<usize, DarknetError> {
    let p = opts.int("padding", default)?;
    if !(0..=MAX_KERNEL as i64).contains(&p) {
        return Err(opts.section_error(format!("`padding={p}` must be in 0..={MAX_KERNEL}")));
    }
    Ok(p as usize)
}

fn activation(opts: &Options<'_>) -> Result<Activation, DarknetError> {
    let name = opts.string("activation", "linear");
    Activation::parse(name).ok_or_else(|| {
        opts.section_error(format!(
            "activation `{name}` is not supported (use linear, leaky, relu, logistic, mish, swish or tanh)"
        ))
    })
}

fn anchors(opts: &Options<'_>, num: usize) -> Result<Vec<[f32; 2]>, DarknetError> {
    let values = opts.float_list("anchors")?.unwrap_or_default();
    if values.len() != 2 * num {
        return Err(opts.section_error(format!(
            "`anchors` holds {} numbers but `num={num}` needs {} (a width and a height per anchor)",
            values.len(),
            2 * num
        )));
    }
    Ok(values.chunks(2).map(|p| [p[0], p[1]]).collect())
}

fn build_layer(
    opts: &Options<'_>,
    index: usize,
    prev: Shape,
    built: &[Layer],
) -> Result<Layer, DarknetError> {
    let section: &Section = opts.section;
    // Every layer but a route reads the previous layer's output.
    if index > 0 && section.kind != "route" {
        reject_head_input(opts, built, index - 1)?;
    }
    let (kind, output) = match section.kind.as_str() {
        "convolutional" | "conv" => {
            opts.warn_unknown(&[
                "filters", "size", "stride", "pad", "padding", "groups", "batch_normalize",
                "activation", "dilation",
            ]);
            let filters = opts.positive("filters", 1, MAX_CHANNELS)?;
            let size = opts.positive("size", 1, MAX_KERNEL)?;
            let stride = opts.positive("stride", 1, MAX_KERNEL)?;
            let groups = opts.positive("groups", 1, MAX_CHANNELS)?;
            if opts.int("dilation", 1)? != 1 {
                return Err(opts.section_error("`dilation` other than 1 is not supported".into()));
            }
            let pad = if opts.int("pad", 0)? != 0 {
                size / 2
            } else {
                padding(opts, 0)?
            };
            if !prev.c.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
                return Err(opts.section_error(format!(
                    "`groups={groups}` must divide both the input channels ({}) and `filters` ({filters})",
                    prev.c
                )));
            }
            if prev.w + 2 * pad < size || prev.h + 2 * pad < size {
                return Err(opts.section_error(format!(
                    "kernel {size} is larger than the padded input {}x{}",
                    prev.w + 2 * pad,
                    prev.h + 2 * pad
                )));
            }
            let out = Shape {
                c: filters,
                h: (prev.h + 2 * pad - size) / stride + 1,
                w: (prev.w + 2 * pad - size) / stride + 1,
            };
            let kind = LayerKind::Convolutional {
                filters,
                size,
                stride,
                pad,
                groups,
                batch_normalize: opts.int("batch_normalize", 0)? != 0,
                activation: activation(opts)?,
            };
            (kind, out)
        }
        "maxpool" | "max" => {
            opts.warn_unknown(&["size", "stride", "padding"]);
            let stride = opts.positive("stride", 1, MAX_KERNEL)?;
            let size = opts.positive("size", stride as i64, MAX_KERNEL)?;
            let padding = padding(opts, size as i64 - 1)?;
            if prev.w + padding < size || prev.h + padding < size {
                return Err(opts.section_error(format!(
                    "pool size {size} is larger than the padded input"
                )));
            }
            let out = Shape {
                c: prev.c,
                h: (prev.h + padding - size) / stride + 1,
                w: (prev.w + padding - size) / stride + 1,
            };
            (LayerKind::MaxPool { size, stride, padding }, out)
        }
        "route" | "rout" => {
            opts.warn_unknown(&["layers", "groups", "group_id"]);
            let Some(values) = opts.int_list("layers")? else {
                return Err(opts.section_error("`layers=` is missing".into()));
            };
            if values.is_empty() {
                return Err(opts.section_error("`layers=` lists no layer".into()));
            }
            let groups = opts.positive("groups", 1, MAX_CHANNELS)?;
            let group_id = opts.int("group_id", 0)?;
            if group_id < 0 || group_id as usize >= groups {
                return Err(opts.section_error(format!(
                    "`group_id={group_id}` must be in 0..{groups}"
                )));
            }
            let mut layers = Vec::with_capacity(values.len());
            let mut out: Option<Shape> = None;
            for v in values {
                let l = resolve_index(opts, index, v, "layers")?;
                reject_head_input(opts, built, l)?;
                let s = built[l].output;
                if !s.c.is_multiple_of(groups) {
                    return Err(opts.section_error(format!(
                        "layer {l} has {} channels, which `groups={groups}` does not divide",
                        s.c
                    )));
                }
                out = Some(match out {
                    None => Shape { c: s.c / groups, ..s },
                    Some(o) if o.h == s.h && o.w == s.w => Shape {
                        c: o.c + s.c / groups,
                        ..o
                    },
                    Some(o) => {
                        return Err(opts.section_error(format!(
                            "cannot concatenate layer {l} ({s}) with the previous ones ({}x{} spatial)",
                            o.h, o.w
                        )))
                    }
                });
                layers.push(l);
            }
            let kind = LayerKind::Route {
                layers,
                groups,
                group_id: group_id as usize,
            };
            (kind, out.expect("at least one layer"))
        }
        "shortcut" | "shortcut_layer" => {
            opts.warn_unknown(&["from", "activation", "weights_type", "weights_normalization"]);
            if opts.string("weights_type", "none") != "none" {
                return Err(opts.section_error("weighted shortcuts (`weights_type`) are not supported".into()));
            }
            let Some(from) = opts.int_list("from")? else {
                return Err(opts.section_error("`from=` is missing".into()));
            };
            if from.len() != 1 {
                return Err(opts.section_error("`from=` must name exactly one layer".into()));
            }
            let from = resolve_index(opts, index, from[0], "from")?;
            reject_head_input(opts, built, from)?;
            let other = built[from].output;
            if other != prev {
                return Err(opts.section_error(format!(
                    "adds layer {from} ({other}) to the previous layer ({prev}); the shapes must match"
                )));
            }
            (
                LayerKind::Shortcut {
                    from,
                    activation: activation(opts)?,
                },
                prev,
            )
        }
        "upsample" => {
            opts.warn_unknown(&["stride", "scale"]);
            let stride = opts.int("stride", 2)?;
            if stride <= 0 || stride > MAX_KERNEL as i64 {
                return Err(opts.section_error(format!(
                    "`stride={stride}`: only up-sampling strides 1..={MAX_KERNEL} are supported"
                )));
            }
            let stride = stride as usize;
            let out = Shape {
                c: prev.c,
                h: prev.h * stride,
                w: prev.w * stride,
            };
            let scale = opts.float("scale", 1.0)?;
            (LayerKind::Upsample { stride, scale }, out)
        }
        "reorg" => {
            opts.warn_unknown(&["stride", "reverse", "flatten", "extra"]);
            let stride = opts.positive("stride", 1, MAX_KERNEL)?;
            if opts.int("reverse", 0)? != 0 || opts.int("flatten", 0)? != 0 || opts.int("extra", 0)? != 0 {
                return Err(opts.section_error("only the forward reorg of YOLOv2 is supported (no reverse/flatten/extra)".into()));
            }
            if !prev.h.is_multiple_of(stride) || !prev.w.is_multiple_of(stride) || !prev.c.is_multiple_of(stride * stride) {
                return Err(opts.section_error(format!(
                    "input {prev} is not divisible by the reorg stride {stride}"
                )));
            }
            let out = Shape {
                c: prev.c * stride * stride,
                h: prev.h / stride,
                w: prev.w / stride,
            };
            (LayerKind::Reorg { stride }, out)
        }
        "dropout" => {
            opts.warn_unknown(&["probability"]);
            (LayerKind::Dropout, prev)
        }
        "yolo" => {
            opts.warn_unknown(&["mask", "anchors", "classes", "num", "scale_x_y", "new_coords"]);
            let classes = opts.positive("classes", 20, MAX_CLASSES)?;
            let num = opts.positive("num", 1, MAX_ANCHORS)?;
            let all = anchors(opts, num)?;
            let mask = match opts.int_list("mask")? {
                Some(m) => m,
                None => (0..num as i64).collect(),
            };
            let mut selected = Vec::with_capacity(mask.len());
            for m in mask {
                if m < 0 || m as usize >= num {
                    return Err(opts.section_error(format!(
                        "`mask` index {m} is outside the {num} anchors"
                    )));
                }
                selected.push(all[m as usize]);
            }
            if opts.int("new_coords", 0)? != 0 {
                return Err(opts.section_error("`new_coords=1` (scaled-YOLOv4 decoding) is not supported".into()));
            }
            let need = selected.len() * (5 + classes);
            if prev.c != need {
                return Err(opts.section_error(format!(
                    "the layer before has {} channels, but {} anchors × (5 + {classes} classes) need {need}",
                    prev.c,
                    selected.len()
                )));
            }
            let head = Head {
                kind: HeadKind::Yolo {
                    scale_x_y: opts.float("scale_x_y", 1.0)?,
                },
                anchors: selected,
                classes,
                grid_w: prev.w,
                grid_h: prev.h,
            };
            (LayerKind::Head(head), prev)
        }
        "region" => {
            opts.warn_unknown(&["anchors", "classes", "num", "coords", "softmax"]);
            let classes = opts.positive("classes", 20, MAX_CLASSES)?;
            let num = opts.positive("num", 1, MAX_ANCHORS)?;
            let coords = opts.positive("coords", 4, MAX_KERNEL)?;
            if coords != 4 {
                return Err(opts.section_error(format!("`coords={coords}`: only 4 is supported")));
            }
            if opts.int("softmax", 0)? == 0 || opts.has("tree") {
                return Err(opts.section_error(
                    "only `softmax=1` regions without a class tree are supported".into(),
                ));
            }
            let need = num * (coords + 1 + classes);
            if prev.c != need {
                return Err(opts.section_error(format!(
                    "the layer before has {} channels, but {num} anchors × (5 + {classes} classes) need {need}",
                    prev.c
                )));
            }
            let head = Head {
                kind: HeadKind::Region,
                anchors: anchors(opts, num)?,
                classes,
                grid_w: prev.w,
                grid_h: prev.h,
            };
            (LayerKind::Head(head), prev)
        }
        other => {
            return Err(opts.section_error(format!(
                "layer type `[{other}]` is not supported; deepoffload imports detection networks built from {SUPPORTED}"
            )))
        }
    };
    if output.h == 0 || output.w == 0 {
        return Err(opts.section_error(format!(
            "output would be {output}: the input is too small for this network"
        )));
    }
    if output.h > MAX_SIDE
        || output.w > MAX_SIDE
        || output.c.saturating_mul(output.h).saturating_mul(output.w) > MAX_ELEMENTS
    {
        return Err(opts.section_error(format!(
            "output would be {output}, larger than any supported network"
        )));
    }
    Ok(Layer {
        kind,
        line: section.line,
        input: prev,
        output,
    })
}
