//! The decision engine: from a profile and the network as it is right now, choose where each
//! frame runs and at what frame rate, resolution, bit rate and model.
//!
//! - [`Optimiser`]: exhaustive search over the profile's configurations (fast enough to rerun
//!   every window), maximising the app's utility under its requirements, or — when nothing is
//!   feasible — the least-violating configuration, flagged.
//! - [`NetworkEstimator`]: uplink throughput and round trip from delivered frames and pings.
//! - [`Controller`]: re-decides every window or on a large network change, with hysteresis and
//!   probing, and logs every decision with its reasons.
//!
//! This crate is pure (time is an argument, no I/O), so the same code drives the real client
//! and the trace-driven replay.

mod candidates;
mod controller;
mod estimator;
mod optimiser;

pub use candidates::{Candidate, CandidateKey, Candidates};
pub use controller::{Controller, ControllerSettings, DecisionLog, Hedge};
pub use estimator::{EstimatorSettings, NetEstimate, NetworkEstimator};
pub use optimiser::{
    Decision, Mode, NetState, Optimiser, Prediction, Requirements, Violation, ViolationKind,
};

/// Why a decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("{0}")]
    Profile(String),
}
