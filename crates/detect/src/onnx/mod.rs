//! The subset of the ONNX format we write, and a small builder for graphs.
//!
//! The messages are declared by hand with `prost` derives instead of generated from `onnx.proto`:
//! that needs no `protoc` on the build machine, and we only ever write these few fields. Field
//! numbers follow `onnx/onnx.proto3` (IR version 8) exactly, so any ONNX consumer reads the result.

mod builder;
pub mod proto;

pub use builder::{
    attr_float, attr_int, attr_ints, attr_string, Dim, GraphBuilder, IR_VERSION, OPSET,
};
