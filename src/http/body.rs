//! Body framing decoder, shared by requests and responses. OWNER: codec helper.
use super::{Framing, HttpError};
use bytes::BytesMut;

/// Incremental body decoder: feed it the read buffer, it moves payload bytes out.
#[derive(Debug)]
pub struct BodyDecoder {
    framing: Framing,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        BodyDecoder { framing }
    }

    /// Consume as much of `buf` as belongs to this body and append the payload (de-chunked)
    /// to `out`. Bytes after the end of the body stay in `buf` (pipelining / keep-alive).
    /// Returns `Ok(true)` once the body is complete (for chunked: last chunk and trailers
    /// consumed). `Err(BodyTooLarge)` if `out` would exceed `max` bytes.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
        max: usize,
    ) -> Result<bool, HttpError> {
        let _ = (buf, out, max);
        Ok(matches!(self.framing, Framing::None))
    }

    /// The peer closed the connection. Ok for a close-delimited body (it is now complete);
    /// `Err(UnexpectedEof)` for any other unfinished body.
    pub fn eof(&mut self) -> Result<(), HttpError> {
        Err(HttpError::UnexpectedEof)
    }
}
