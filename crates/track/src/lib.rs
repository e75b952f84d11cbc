//! The on-device box tracker: detections arrive late (a remote result by a round trip, a local
//! one by the phone's inference time), so the tracker carries the latest ones to every displayed
//! frame, as Glimpse (SenSys '15) and EAAR (MobiCom '19) do.
//!
//! - [`GreyFrame`]: a camera frame shrunk to a small grey working size (longest side ~320 px).
//! - [`Tracker`]: keeps the pyramids of the last frames in a ring, moves each box by sparse
//!   pyramidal Lucas–Kanade flow (optical-flow-lk, with its forward-backward check) and the
//!   median-flow rule, drops boxes whose points fail, decays confidence with age, and brings a
//!   result for an older frame forward through the ring before it is shown.
//!
//! Nothing here reads a clock, a file or a socket, or starts a thread: frames and times are
//! arguments, so it builds for `wasm32-unknown-unknown`.

#![forbid(unsafe_code)]

mod frame;
mod motion;
mod tracker;

pub use frame::{FrameError, GreyFrame, MIN_WORKING_SIDE};
pub use tracker::{
    CatchUp, PushError, ResultError, SettingsError, TrackedBox, Tracker, TrackerSettings,
};
