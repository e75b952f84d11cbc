//! Networking for deepoffload: TCP and QUIC transports of the wire protocol, and the link
//! emulator.
//!
//! The protocol itself — messages, framing, limits, and the sessions' rules as state machines
//! — is `deepoffload-proto`; this crate only moves its bytes.
//!
//! - [`proto`]: the messages (`deepoffload_proto::messages`).
//! - [`wire`]: the protocol's framing for tokio; [`stream`]: envelopes on any byte stream.
//! - [`client`]: the device side of a session; [`server`]: listeners and sessions for the edge.
//! - [`link`]: bandwidth / delay / jitter / loss / trace replay, as a pure model and a relay.
//!
//! Nothing here knows about detection or video beyond the message fields.

pub mod client;
pub mod link;
pub mod server;
pub mod stream;
pub mod tls;
pub mod wire;

pub use deepoffload_proto::messages as proto;
pub use deepoffload_proto::ProtoError;

pub use client::{ConnectOptions, Connection, Transport};

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to or listen on {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol (malformed message, limit exceeded, unexpected message).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("server error ({code:?}): {message}")]
    Remote {
        code: proto::error::Code,
        message: String,
    },
    /// The server refused the session (wrong token, version).
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("TLS: {0}")]
    Tls(String),
    /// The session has ended.
    #[error("connection closed")]
    Closed,
}

impl From<ProtoError> for NetError {
    fn from(e: ProtoError) -> Self {
        match e {
            ProtoError::Protocol(m) => NetError::Protocol(m),
            ProtoError::Remote { code, message } => NetError::Remote { code, message },
            ProtoError::Refused(m) => NetError::Refused(m),
            ProtoError::Closed => NetError::Closed,
        }
    }
}
