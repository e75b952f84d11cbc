//! A tiny append-only builder for ONNX graphs.

use super::proto::*;

/// The ONNX operator set our graphs target: every operator we emit has had its current
/// semantics since opset 13, which ONNX Runtime ≥ 1.8, TensorRT and Triton all read.
pub const OPSET: i64 = 13;
/// IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 7;

/// One dimension of a graph input or output.
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    /// A named free dimension such as the batch size.
    Param(&'static str),
}

/// Collects nodes, weights and interface of one graph.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: DATA_TYPE_FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Dim::Fixed(v) => DimensionValue::DimValue(*v),
                                Dim::Param(p) => DimensionValue::DimParam(p.to_string()),
                            }),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a float input of the graph.
    pub fn input(&mut self, name: &str, dims: &[Dim]) {
        self.graph.input.push(value_info(name, dims));
    }

    /// Declares a float output of the graph.
    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        self.graph.output.push(value_info(name, dims));
    }

    /// Adds float weights; returns their name for use as a node input.
    pub fn weights_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, data.len());
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            dims: dims.to_vec(),
            data_type: DATA_TYPE_FLOAT,
            name: name.to_string(),
            raw_data,
        });
        name.to_string()
    }

    /// Adds a constant 1-D int64 tensor (shapes, slice bounds); returns its name.
    pub fn constant_i64(&mut self, name: &str, data: &[i64]) -> String {
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: DATA_TYPE_INT64,
            name: name.to_string(),
            raw_data,
        });
        name.to_string()
    }

    /// Appends one node. Nodes must be added in a topological order.
    pub fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: name.to_string(),
            op_type: op_type.to_string(),
            attribute,
            ..Default::default()
        });
    }

    /// Wraps the graph into a model with producer information and metadata.
    pub fn into_model(
        mut self,
        graph_name: &str,
        doc: &str,
        metadata: Vec<(String, String)>,
    ) -> ModelProto {
        self.graph.name = graph_name.to_string();
        self.graph.doc_string = doc.to_string();
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "deepoffload".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            metadata_props: metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto { key, value })
                .collect(),
            ..Default::default()
        }
    }
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}
