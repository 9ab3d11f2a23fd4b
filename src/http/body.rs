//! Body framing decoder, shared by requests and responses: `Content-Length`, chunked
//! (RFC 9112 §7.1), close-delimited. Incremental and sans-io: it is fed whatever bytes have
//! arrived (one at a time works) and keeps its place between calls. Every line it has to
//! look at is bounded, so garbage cannot make it buffer or loop without limit.
use super::{Framing, HttpError};
use bytes::{Buf, BytesMut};

/// Longest chunk-size line (size + extensions) or trailer line accepted.
pub const MAX_LINE_BYTES: usize = 4096;
/// Most trailer bytes (line terminators not counted) accepted after the last chunk; they
/// are discarded, so this bounds time spent on them, not memory.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// A chunk size is at most 16 hex digits (a `u64`).
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is inside a chunk-size line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizePhase {
    Digits,
    /// Whitespace after the digits (BWS before `;`).
    Space,
    /// Inside `;name=value` extensions (skipped, quoted strings included).
    Extension,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length {
        remaining: u64,
    },
    CloseDelimited,
    SizeLine {
        value: u64,
        digits: u8,
        line: usize,
        phase: SizePhase,
    },
    /// The CR ending a size line was seen.
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the empty line ending the message.
    TrailerStart {
        total: usize,
    },
    TrailerLine {
        total: usize,
        line: usize,
    },
    TrailerLf {
        total: usize,
    },
    FinalLf,
    Done,
}

/// Incremental body decoder: feed it the read buffer, it moves payload bytes out.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
    /// Payload bytes handed out so far; `max` is checked against this, not `out.len()`.
    decoded: u64,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => new_size_line(),
            Framing::CloseDelimited => State::CloseDelimited,
        };
        BodyDecoder { state, decoded: 0 }
    }

    /// The body has been read completely.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes decoded so far (over all calls).
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Consume as much of `buf` as belongs to this body and append the payload (de-chunked)
    /// to `out`. Bytes after the end of the body stay in `buf` (pipelining / keep-alive).
    /// Returns `Ok(true)` once the body is complete (for chunked: last chunk and trailers
    /// consumed). `Err(BodyTooLarge)` once the payload decoded *in total* (over all calls,
    /// see [`Self::decoded`]) would exceed `max`, so the caller may drain `out` between calls
    /// to stream. A `Content-Length` body larger than `max` fails on the first call, before
    /// any byte of it is read.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
        max: usize,
    ) -> Result<bool, HttpError> {
        let max = max as u64;
        loop {
            match self.state {
                State::Done => return Ok(true),
                State::Length { remaining } => {
                    if self.decoded.saturating_add(remaining) > max {
                        return Err(HttpError::BodyTooLarge);
                    }
                    let moved = self.move_payload(buf, out, remaining, max)?;
                    let remaining = remaining - moved;
                    self.state = if remaining == 0 {
                        State::Done
                    } else {
                        State::Length { remaining }
                    };
                    return Ok(remaining == 0);
                }
                State::CloseDelimited => {
                    self.move_payload(buf, out, u64::MAX, max)?;
                    return Ok(false);
                }
                State::Data { remaining } => {
                    // A chunk that cannot fit is refused now, not after its bytes arrive
                    // (which, for a client that never sends them, would be never).
                    if self.decoded.saturating_add(remaining) > max {
                        return Err(HttpError::BodyTooLarge);
                    }
                    let moved = self.move_payload(buf, out, remaining, max)?;
                    let remaining = remaining - moved;
                    if remaining > 0 {
                        self.state = State::Data { remaining };
                        return Ok(false);
                    }
                    self.state = State::DataCr;
                }
                state => {
                    let Some(&byte) = buf.first() else {
                        return Ok(false);
                    };
                    self.state = step(state, byte)?;
                    buf.advance(1);
                    // A size line's value only grows with more digits: refuse as soon as the
                    // digits so far exceed what the limit leaves.
                    if let State::SizeLine { value, .. } | State::SizeLf { value } = self.state {
                        if self.decoded.saturating_add(value) > max {
                            return Err(HttpError::BodyTooLarge);
                        }
                    }
                }
            }
        }
    }

    /// Move up to `limit` payload bytes from `buf` to `out`; returns how many moved.
    fn move_payload(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
        limit: u64,
        max: u64,
    ) -> Result<u64, HttpError> {
        let n = usize::try_from(limit).map_or(buf.len(), |l| l.min(buf.len()));
        let moved = n as u64;
        if self.decoded.saturating_add(moved) > max {
            return Err(HttpError::BodyTooLarge);
        }
        self.decoded += moved;
        if n > 0 {
            // O(1) when `out` is empty (it takes over the bytes), a copy otherwise.
            out.unsplit(buf.split_to(n));
        }
        Ok(moved)
    }

    /// The peer closed the connection. Ok for a close-delimited body (it is now complete);
    /// `Err(UnexpectedEof)` for any other unfinished body.
    pub fn eof(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done | State::CloseDelimited => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(HttpError::UnexpectedEof),
        }
    }
}

fn new_size_line() -> State {
    State::SizeLine {
        value: 0,
        digits: 0,
        line: 0,
        phase: SizePhase::Digits,
    }
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// One framing byte of a chunked body (everything except chunk data).
fn step(state: State, b: u8) -> Result<State, HttpError> {
    Ok(match state {
        State::SizeLine {
            value,
            digits,
            line,
            phase,
        } => {
            let line = line + 1;
            if line > MAX_LINE_BYTES {
                return Err(HttpError::BadChunk("chunk size line too long"));
            }
            size_line(value, digits, line, phase, b)?
        }
        State::SizeLf { value } => match b {
            b'\n' if value == 0 => State::TrailerStart { total: 0 },
            b'\n' => State::Data { remaining: value },
            _ => return Err(HttpError::BadChunk("bare CR in chunk size line")),
        },
        State::DataCr => match b {
            b'\r' => State::DataLf,
            _ => return Err(HttpError::BadChunk("missing CRLF after chunk data")),
        },
        State::DataLf => match b {
            b'\n' => new_size_line(),
            _ => return Err(HttpError::BadChunk("missing CRLF after chunk data")),
        },
        State::TrailerStart { total } => match b {
            b'\r' => State::FinalLf,
            b'\n' => return Err(HttpError::BadChunk("bare LF in trailer")),
            _ => trailer_byte(total, 0)?,
        },
        State::TrailerLine { total, line } => match b {
            b'\r' => State::TrailerLf { total },
            b'\n' | 0 => return Err(HttpError::BadChunk("bare LF or NUL in trailer")),
            _ => trailer_byte(total, line)?,
        },
        State::TrailerLf { total } => match b {
            b'\n' => State::TrailerStart { total },
            _ => return Err(HttpError::BadChunk("bare CR in trailer")),
        },
        State::FinalLf => match b {
            b'\n' => State::Done,
            _ => return Err(HttpError::BadChunk("bare CR after last chunk")),
        },
        // Payload states are handled by `decode`; reaching here would be a decoder bug, and a
        // framing error is the safe answer.
        State::Length { .. } | State::CloseDelimited | State::Data { .. } | State::Done => {
            return Err(HttpError::BadChunk("decoder out of step"))
        }
    })
}

fn trailer_byte(total: usize, line: usize) -> Result<State, HttpError> {
    let (total, line) = (total + 1, line + 1);
    if line > MAX_LINE_BYTES || total > MAX_TRAILER_BYTES {
        return Err(HttpError::BadChunk("trailer too long"));
    }
    Ok(State::TrailerLine { total, line })
}

fn size_line(
    value: u64,
    digits: u8,
    line: usize,
    phase: SizePhase,
    b: u8,
) -> Result<State, HttpError> {
    let next = |phase| State::SizeLine {
        value,
        digits,
        line,
        phase,
    };
    Ok(match (phase, b) {
        (SizePhase::Digits, _) if hex_value(b).is_some() => {
            let digits = digits + 1;
            if digits > MAX_SIZE_DIGITS {
                return Err(HttpError::BadChunk("chunk size too large"));
            }
            // 16 hex digits fit a u64 exactly: the shift cannot lose bits.
            let value = (value << 4) | hex_value(b).unwrap_or(0);
            State::SizeLine {
                value,
                digits,
                line,
                phase,
            }
        }
        (SizePhase::Digits, _) if digits == 0 => {
            return Err(HttpError::BadChunk("missing chunk size"))
        }
        (SizePhase::Digits | SizePhase::Space, b' ' | b'\t') => next(SizePhase::Space),
        (SizePhase::Digits | SizePhase::Space | SizePhase::Extension, b'\r') => {
            State::SizeLf { value }
        }
        (SizePhase::Digits | SizePhase::Space, b';') => next(SizePhase::Extension),
        (SizePhase::Digits | SizePhase::Space, _) => {
            return Err(HttpError::BadChunk("invalid chunk size"))
        }
        // Extensions are skipped up to the CR; only control bytes (bare LF included) fail.
        (SizePhase::Extension, b'\t') => next(SizePhase::Extension),
        (SizePhase::Extension, 0..=0x1f | 0x7f) => {
            return Err(HttpError::BadChunk("control byte in chunk extension"))
        }
        (SizePhase::Extension, _) => next(SizePhase::Extension),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in one go; returns (complete, payload, leftover).
    fn decode_all(framing: Framing, input: &[u8]) -> (Result<bool, HttpError>, Vec<u8>, Vec<u8>) {
        let mut dec = BodyDecoder::new(framing);
        let mut buf = BytesMut::from(input);
        let mut out = BytesMut::new();
        let r = dec.decode(&mut buf, &mut out, usize::MAX);
        (r, out.to_vec(), buf.to_vec())
    }

    /// Feed `input` one byte at a time; returns (result of the last call, payload).
    fn decode_bytewise(
        framing: Framing,
        input: &[u8],
        max: usize,
    ) -> (Result<bool, HttpError>, Vec<u8>) {
        let mut dec = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut last = Ok(false);
        for &b in input {
            buf.extend_from_slice(&[b]);
            last = dec.decode(&mut buf, &mut out, max);
            if last.is_err() {
                break;
            }
        }
        (last, out.to_vec())
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n6;name=value;q=\"a;b\\\"c\"\r\n world\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n";

    #[test]
    fn chunked_body_with_extensions_and_trailers_is_decoded() {
        let (r, out, rest) = decode_all(Framing::Chunked, CHUNKED);
        assert_eq!(r, Ok(true));
        assert_eq!(out, b"hello world");
        assert!(rest.is_empty());
    }

    #[test]
    fn chunked_body_fed_byte_by_byte_is_decoded() {
        let (r, out) = decode_bytewise(Framing::Chunked, CHUNKED, usize::MAX);
        assert_eq!(r, Ok(true));
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn bytes_after_the_last_chunk_stay_in_the_buffer() {
        let (r, out, rest) = decode_all(Framing::Chunked, b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1");
        assert_eq!((r, out), (Ok(true), b"abc".to_vec()));
        assert_eq!(rest, b"GET / HTTP/1.1");
    }

    #[test]
    fn hex_sizes_are_case_insensitive() {
        let mut input = b"A\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 10]);
        input.extend_from_slice(b"\r\n1f\r\n");
        input.extend_from_slice(&[b'y'; 31]);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let (r, out, _) = decode_all(Framing::Chunked, &input);
        assert_eq!(r, Ok(true));
        assert_eq!(out.len(), 41);
    }

    #[test]
    fn malformed_size_lines_are_bad_chunks() {
        for bad in [
            &b"\r\nabc\r\n"[..],
            b";ext\r\n",
            b"g\r\n",
            b"-1\r\n",
            b" 5\r\nhello\r\n",
            b"5 x\r\n",
            b"5\n",
            b"5\rx",
            b"10000000000000000\r\n",
            b"0x5\r\n",
        ] {
            let (r, _, _) = decode_all(Framing::Chunked, bad);
            assert!(
                matches!(r, Err(HttpError::BadChunk(_))),
                "{:?} -> {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn sixteen_hex_digits_are_accepted_but_then_capped_by_max() {
        let mut dec = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nabc"[..]);
        let mut out = BytesMut::new();
        assert_eq!(
            dec.decode(&mut buf, &mut out, 2),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn a_chunk_size_over_the_limit_fails_before_any_of_its_data() {
        let (r, _) = decode_bytewise(Framing::Chunked, b"ffffffff\r\n", 1024);
        assert_eq!(r, Err(HttpError::BodyTooLarge));
        // Already on the digits: the fourth one makes the size 0x1000 > 1024.
        let (r, _) = decode_bytewise(Framing::Chunked, b"1000", 1024);
        assert_eq!(r, Err(HttpError::BodyTooLarge));
        let (r, _) = decode_bytewise(Framing::Chunked, b"400", 1024);
        assert_eq!(r, Ok(false));
        // The limit is on the total: a second chunk that would pass it fails at its size.
        let (r, out) = decode_bytewise(Framing::Chunked, b"3\r\nabc\r\n3fe\r\n", 1024);
        assert_eq!((r, out), (Err(HttpError::BodyTooLarge), b"abc".to_vec()));
        let (r, _) = decode_bytewise(Framing::Chunked, b"3\r\nabc\r\n3fd\r\n", 1024);
        assert_eq!(r, Ok(false));
    }

    #[test]
    fn missing_crlf_after_chunk_data_is_a_bad_chunk() {
        let (r, _, _) = decode_all(Framing::Chunked, b"3\r\nabcd\r\n0\r\n\r\n");
        assert_eq!(r, Err(HttpError::BadChunk("missing CRLF after chunk data")));
        let (r, _, _) = decode_all(Framing::Chunked, b"3\r\nabc\rX");
        assert_eq!(r, Err(HttpError::BadChunk("missing CRLF after chunk data")));
    }

    #[test]
    fn endless_size_line_is_cut_off() {
        let mut input = b"5;".to_vec();
        input.resize(MAX_LINE_BYTES + 1, b'a');
        let (r, _, _) = decode_all(Framing::Chunked, &input);
        assert_eq!(r, Err(HttpError::BadChunk("chunk size line too long")));
        input.truncate(MAX_LINE_BYTES);
        let (r, _, _) = decode_all(Framing::Chunked, &input);
        assert_eq!(r, Ok(false));
    }

    #[test]
    fn endless_trailers_are_cut_off() {
        let mut long_line = b"0\r\nX: ".to_vec();
        long_line.resize(3 + MAX_LINE_BYTES + 1, b'a');
        let (r, _, _) = decode_all(Framing::Chunked, &long_line);
        assert_eq!(r, Err(HttpError::BadChunk("trailer too long")));

        let mut many = b"0\r\n".to_vec();
        while many.len() < MAX_TRAILER_BYTES * 2 {
            many.extend_from_slice(b"X-Trailer: 0123456789\r\n");
        }
        let (r, _, _) = decode_all(Framing::Chunked, &many);
        assert_eq!(r, Err(HttpError::BadChunk("trailer too long")));
    }

    #[test]
    fn length_body_moves_exactly_n_bytes() {
        let (r, out, rest) = decode_all(Framing::Length(4), b"abcdefg");
        assert_eq!(
            (r, out, rest),
            (Ok(true), b"abcd".to_vec(), b"efg".to_vec())
        );
        let (r, out) = decode_bytewise(Framing::Length(4), b"abcd", usize::MAX);
        assert_eq!((r, out), (Ok(true), b"abcd".to_vec()));
        let (r, out) = decode_bytewise(Framing::Length(4), b"abc", usize::MAX);
        assert_eq!((r, out), (Ok(false), b"abc".to_vec()));
    }

    #[test]
    fn no_body_is_complete_at_once_and_leaves_the_buffer_alone() {
        let (r, out, rest) = decode_all(Framing::None, b"next");
        assert_eq!((r, out, rest), (Ok(true), vec![], b"next".to_vec()));
    }

    #[test]
    fn close_delimited_body_ends_at_eof() {
        let mut dec = BodyDecoder::new(Framing::CloseDelimited);
        let mut out = BytesMut::new();
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"abc"[..]), &mut out, 100),
            Ok(false)
        );
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"def"[..]), &mut out, 100),
            Ok(false)
        );
        assert_eq!(dec.eof(), Ok(()));
        assert!(dec.is_done());
        assert_eq!(out.as_ref(), b"abcdef");
    }

    #[test]
    fn eof_before_the_end_of_a_framed_body_is_an_error() {
        let mut dec = BodyDecoder::new(Framing::Length(5));
        let _ = dec.decode(&mut BytesMut::from(&b"ab"[..]), &mut BytesMut::new(), 100);
        assert_eq!(dec.eof(), Err(HttpError::UnexpectedEof));
        let mut dec = BodyDecoder::new(Framing::Chunked);
        let _ = dec.decode(
            &mut BytesMut::from(&b"2\r\nab\r\n"[..]),
            &mut BytesMut::new(),
            100,
        );
        assert_eq!(dec.eof(), Err(HttpError::UnexpectedEof));
        let mut dec = BodyDecoder::new(Framing::Length(2));
        let _ = dec.decode(&mut BytesMut::from(&b"ab"[..]), &mut BytesMut::new(), 100);
        assert_eq!(dec.eof(), Ok(()));
    }

    #[test]
    fn max_applies_to_the_total_even_when_out_is_drained() {
        let mut dec = BodyDecoder::new(Framing::CloseDelimited);
        let mut out = BytesMut::new();
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"abc"[..]), &mut out, 5),
            Ok(false)
        );
        out.clear();
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"def"[..]), &mut out, 5),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(dec.decoded(), 3);
    }

    #[test]
    fn max_caps_chunked_bodies_fed_byte_by_byte() {
        let (r, out) = decode_bytewise(Framing::Chunked, CHUNKED, 10);
        assert_eq!(r, Err(HttpError::BodyTooLarge));
        // The 6-byte chunk cannot fit after the first 5: refused at its size line.
        assert_eq!(out, b"hello");
        let (r, _) = decode_bytewise(Framing::Chunked, CHUNKED, 11);
        assert_eq!(r, Ok(true));
    }

    #[test]
    fn declared_length_over_max_fails_before_reading() {
        let mut dec = BodyDecoder::new(Framing::Length(1000));
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert_eq!(
            dec.decode(&mut buf, &mut BytesMut::new(), 999),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(buf.len(), 3);
    }
}
