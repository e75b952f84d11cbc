//! Framing, size limits and validation of protocol messages.
//!
//! Every envelope on the wire is a 4-byte big-endian length followed by protobuf bytes; the
//! length is checked before anything is allocated, and every field is checked against its limit
//! after decoding, so a peer cannot make us allocate or log unbounded data.

use crate::proto::{envelope::Body, Envelope};
use crate::NetError;
use bytes::{Bytes, BytesMut};
use prost::Message;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest envelope accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Largest H.264 payload of one frame.
pub const MAX_FRAME_BYTES: usize = 4 << 20;
/// Limits of the text fields.
pub const MAX_TOKEN_BYTES: usize = 256;
pub const MAX_NAME_BYTES: usize = 128;
pub const MAX_MESSAGE_TEXT_BYTES: usize = 1024;
/// A probe ping's padding.
pub const MAX_PING_PADDING_BYTES: usize = 64 << 10;
/// Most detections in one result and class names in a welcome.
pub const MAX_DETECTIONS: usize = 1000;
pub const MAX_CLASSES: usize = 10_000;

fn check_len(what: &str, len: usize, max: usize) -> Result<(), String> {
    if len > max {
        return Err(format!("{what} is {len} bytes, over the limit of {max}"));
    }
    Ok(())
}

/// Checks every field of a decoded envelope against its limit.
pub fn validate(envelope: &Envelope) -> Result<(), String> {
    match envelope
        .body
        .as_ref()
        .ok_or("empty envelope (no message body)")?
    {
        Body::Hello(h) => {
            check_len("hello.token", h.token.len(), MAX_TOKEN_BYTES)?;
            check_len("hello.client_name", h.client_name.len(), MAX_NAME_BYTES)?;
            check_len("hello.device_class", h.device_class.len(), MAX_NAME_BYTES)
        }
        Body::Welcome(w) => {
            check_len("welcome.server_name", w.server_name.len(), MAX_NAME_BYTES)?;
            check_len("welcome.model", w.model.len(), MAX_NAME_BYTES)?;
            if w.class_names.len() > MAX_CLASSES {
                return Err(format!(
                    "welcome lists {} classes, over {MAX_CLASSES}",
                    w.class_names.len()
                ));
            }
            w.class_names
                .iter()
                .try_for_each(|n| check_len("class name", n.len(), MAX_NAME_BYTES))
        }
        Body::Frame(f) => {
            check_len("frame.h264", f.h264.len(), MAX_FRAME_BYTES)?;
            if let Some(c) = &f.config {
                check_len("config.placement", c.placement.len(), MAX_NAME_BYTES)?;
                check_len("config.model", c.model.len(), MAX_NAME_BYTES)?;
                if !c.fps.is_finite() || c.fps < 0.0 {
                    return Err(format!("config.fps {} is not a frame rate", c.fps));
                }
            }
            Ok(())
        }
        Body::Result(r) => {
            if r.detections.len() > MAX_DETECTIONS {
                return Err(format!(
                    "result carries {} detections, over {MAX_DETECTIONS}",
                    r.detections.len()
                ));
            }
            Ok(())
        }
        Body::Error(e) => check_len("error.message", e.message.len(), MAX_MESSAGE_TEXT_BYTES),
        Body::Goodbye(g) => check_len("goodbye.reason", g.reason.len(), MAX_MESSAGE_TEXT_BYTES),
        Body::Ping(p) => check_len("ping.padding", p.padding.len(), MAX_PING_PADDING_BYTES),
        Body::Pong(_) | Body::Cancel(_) => Ok(()),
    }
}

/// Decodes and validates one envelope's bytes.
pub fn decode(bytes: &[u8]) -> Result<Envelope, NetError> {
    let envelope = Envelope::decode(bytes)
        .map_err(|e| NetError::Protocol(format!("undecodable message: {e}")))?;
    validate(&envelope).map_err(NetError::Protocol)?;
    Ok(envelope)
}

/// Length-delimited envelopes for `tokio_util::codec::Framed`.
#[derive(Debug)]
pub struct EnvelopeCodec {
    inner: LengthDelimitedCodec,
}

impl Default for EnvelopeCodec {
    fn default() -> Self {
        Self {
            inner: LengthDelimitedCodec::builder()
                .max_frame_length(MAX_MESSAGE_BYTES)
                .new_codec(),
        }
    }
}

impl Decoder for EnvelopeCodec {
    type Item = Envelope;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope>, NetError> {
        match self.inner.decode(src) {
            Ok(Some(frame)) => decode(&frame).map(Some),
            Ok(None) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(NetError::Protocol(
                format!("message over the {MAX_MESSAGE_BYTES}-byte limit ({e})"),
            )),
            Err(e) => Err(NetError::Io(e)),
        }
    }
}

impl Encoder<Envelope> for EnvelopeCodec {
    type Error = NetError;

    fn encode(&mut self, item: Envelope, dst: &mut BytesMut) -> Result<(), NetError> {
        self.inner
            .encode(Bytes::from(item.encode_to_vec()), dst)
            .map_err(NetError::Io)
    }
}

/// Wraps a message body into an envelope.
pub fn envelope(body: Body) -> Envelope {
    Envelope { body: Some(body) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Frame, Hello};

    #[test]
    fn limits_are_enforced() {
        let hello = envelope(Body::Hello(Hello {
            token: "x".repeat(MAX_TOKEN_BYTES + 1),
            ..Default::default()
        }));
        assert!(validate(&hello).unwrap_err().contains("hello.token"));
        let frame = envelope(Body::Frame(Frame {
            h264: vec![0; MAX_FRAME_BYTES + 1],
            ..Default::default()
        }));
        assert!(validate(&frame).unwrap_err().contains("frame.h264"));
        assert!(validate(&Envelope { body: None }).is_err());
    }

    #[test]
    fn codec_round_trip_and_oversize() {
        let mut codec = EnvelopeCodec::default();
        let mut buf = BytesMut::new();
        let msg = envelope(Body::Hello(Hello {
            protocol_version: 1,
            token: "t".into(),
            ..Default::default()
        }));
        codec.encode(msg.clone(), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
        let mut huge = BytesMut::from(&((MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes())[..]);
        assert!(matches!(
            codec.decode(&mut huge),
            Err(NetError::Protocol(_))
        ));
    }
}
