//! The protocol's framing for tokio: `deepoffload_proto::wire` (limits, validation, the
//! incremental decoder) behind `tokio_util::codec::Framed`.

pub use deepoffload_proto::wire::*;

use crate::proto::Envelope;
use crate::NetError;
use bytes::BytesMut;
use tokio_util::codec::{Decoder as TokioDecoder, Encoder};

/// Length-delimited envelopes for `tokio_util::codec::Framed`.
#[derive(Debug, Default)]
pub struct EnvelopeCodec {
    inner: Decoder,
}

impl TokioDecoder for EnvelopeCodec {
    type Item = Envelope;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope>, NetError> {
        // The protocol's own decoder owns the framing rules; tokio only hands it bytes.
        self.inner.push(src);
        src.clear();
        Ok(self.inner.decode_next()?)
    }
}

impl Encoder<Envelope> for EnvelopeCodec {
    type Error = NetError;

    fn encode(&mut self, item: Envelope, dst: &mut BytesMut) -> Result<(), NetError> {
        dst.extend_from_slice(&encode(&item));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{envelope::Body, Hello};

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
        codec.encode(msg.clone(), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg.clone()));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let mut huge = BytesMut::from(&((MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes())[..]);
        assert!(matches!(
            codec.decode(&mut huge),
            Err(NetError::Protocol(_))
        ));
    }
}
