//! Framing, size limits and validation of protocol messages.
//!
//! Every envelope on the wire is a 4-byte big-endian length followed by protobuf bytes; the
//! length is checked before anything is allocated, and every field is checked against its limit
//! after decoding, so a peer cannot make us allocate or log unbounded data. [`Decoder`] does
//! this over bytes as they arrive, whatever carries them (a TCP stream, a QUIC stream, the
//! binary messages of a WebSocket).

use crate::messages::{envelope::Body, Envelope};
use crate::ProtoError;
use prost::Message;

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
/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;

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

/// Decodes and validates one envelope's bytes (without the length prefix).
pub fn decode(bytes: &[u8]) -> Result<Envelope, ProtoError> {
    let envelope = Envelope::decode(bytes)
        .map_err(|e| ProtoError::Protocol(format!("undecodable message: {e}")))?;
    validate(&envelope).map_err(ProtoError::Protocol)?;
    Ok(envelope)
}

/// Checks a length prefix before anything is allocated for the body.
pub fn check_length(len: usize) -> Result<(), ProtoError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(ProtoError::Protocol(format!(
            "message of {len} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
        )));
    }
    Ok(())
}

/// One envelope as it goes on the wire: length prefix, then the protobuf bytes.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    let len = envelope.encoded_len();
    let mut out = Vec::with_capacity(LENGTH_BYTES + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    envelope
        .encode(&mut out)
        .expect("a Vec grows to any length");
    out
}

/// Bytes an envelope takes on the wire, prefix included.
pub fn wire_len(envelope: &Envelope) -> usize {
    LENGTH_BYTES + envelope.encoded_len()
}

/// Wraps a message body into an envelope.
pub fn envelope(body: Body) -> Envelope {
    Envelope { body: Some(body) }
}

/// Envelopes out of bytes as they arrive, in whatever pieces: [`Decoder::push`] the bytes, then
/// take [`Decoder::decode_next`] until it says `Ok(None)`. A length over the limit is refused before
/// its body is buffered.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Where the unread bytes start (consumed bytes are dropped in batches, not per message).
    start: usize,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete envelope, `Ok(None)` when more bytes are needed. After an error the
    /// stream is out of step: the session must end.
    pub fn decode_next(&mut self) -> Result<Option<Envelope>, ProtoError> {
        let unread = &self.buffer[self.start..];
        if unread.len() < LENGTH_BYTES {
            return Ok(None);
        }
        let len = u32::from_be_bytes(unread[..LENGTH_BYTES].try_into().expect("4 bytes")) as usize;
        check_length(len)?;
        if unread.len() < LENGTH_BYTES + len {
            return Ok(None);
        }
        let envelope = decode(&unread[LENGTH_BYTES..LENGTH_BYTES + len]);
        self.start += LENGTH_BYTES + len;
        if self.start > self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        envelope.map(Some)
    }

    /// Bytes received but not yet part of a whole envelope (a clean end of stream has none).
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Frame, Hello, Ping};

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
    fn decoder_takes_envelopes_in_any_pieces() {
        let a = envelope(Body::Hello(Hello {
            protocol_version: 1,
            token: "t".into(),
            ..Default::default()
        }));
        let b = envelope(Body::Ping(Ping {
            nonce: 7,
            padding: vec![1; 1000],
            ..Default::default()
        }));
        let mut bytes = encode(&a);
        bytes.extend(encode(&b));
        assert_eq!(bytes.len(), wire_len(&a) + wire_len(&b));
        // One byte at a time, then all at once: the same two envelopes.
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for byte in &bytes {
            decoder.push(std::slice::from_ref(byte));
            while let Some(e) = decoder.decode_next().unwrap() {
                out.push(e);
            }
        }
        assert_eq!(out, vec![a.clone(), b.clone()]);
        assert_eq!(decoder.pending_bytes(), 0);
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.decode_next().unwrap(), Some(a));
        assert_eq!(decoder.decode_next().unwrap(), Some(b));
        assert_eq!(decoder.decode_next().unwrap(), None);
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut decoder = Decoder::new();
        decoder.push(&((MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes()));
        let err = decoder.decode_next().unwrap_err().to_string();
        assert!(err.contains("over the"), "{err}");
    }

    #[test]
    fn garbage_is_a_protocol_error_not_a_panic() {
        let mut decoder = Decoder::new();
        decoder.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decoder.decode_next(),
            Err(ProtoError::Protocol(_))
        ));
        // An empty envelope decodes but says nothing.
        let mut decoder = Decoder::new();
        decoder.push(&[0, 0, 0, 0]);
        assert!(decoder
            .decode_next()
            .unwrap_err()
            .to_string()
            .contains("empty envelope"));
    }
}
