//! Generates the protocol types from `proto/deepoffload.proto` with prost-build, using the
//! `protoc` shipped by `protoc-bin-vendored` so no system package is needed.

fn main() {
    let protoc = protoc_bin_vendored::protoc_bin_path()
        .expect("protoc-bin-vendored has a protoc for this platform");
    // SAFETY: single-threaded build script; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/deepoffload.proto");
    prost_build::Config::new()
        .compile_protos(&["proto/deepoffload.proto"], &["proto"])
        .expect("compile proto/deepoffload.proto");
}
