//! Length-delimited envelopes on any async byte stream (a QUIC stream, a test pipe), with the
//! protocol's framing rules.

use crate::proto::Envelope;
use crate::wire::{check_length, decode, encode, LENGTH_BYTES};
use crate::NetError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Writes one envelope: 4-byte big-endian length, then the protobuf bytes.
pub async fn write_envelope<W: AsyncWrite + Unpin>(
    w: &mut W,
    envelope: &Envelope,
) -> Result<(), NetError> {
    w.write_all(&encode(envelope)).await.map_err(NetError::Io)?;
    w.flush().await.map_err(NetError::Io)
}

/// Reads one envelope; `None` at a clean end of stream. The length is checked before any
/// allocation.
pub async fn read_envelope<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Envelope>, NetError> {
    let mut len = [0u8; LENGTH_BYTES];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(NetError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    check_length(len)?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.map_err(NetError::Io)?;
    Ok(decode(&buf).map(Some)?)
}
