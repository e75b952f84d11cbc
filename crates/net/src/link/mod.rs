//! Network emulation in our own code (this kernel has no netem): bandwidth (token bucket),
//! one-way delay, jitter, loss and Mahimahi trace replay, per direction.
//!
//! [`model`] is the pure timing core (time is an argument), [`Relay`] the async shell that
//! forwards real TCP and UDP traffic through it.

pub mod model;
mod relay;
mod spec;

pub use model::{Direction, DirectionSpec, LossMode, Piece, Shaper, Trace, MTU};
pub use relay::{Relay, RelayStats};
pub use spec::{parse_shaper, LinkSpec};
