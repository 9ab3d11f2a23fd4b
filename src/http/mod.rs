//! HTTP/1.1 wire format, both directions: a sans-io codec (request and response heads, body
//! framing, encoders) plus the per-connection server loop ([`conn`]).
//!
//! The codec never touches a socket: it takes bytes and returns values, so it unit-tests and
//! fuzzes deterministically. Heads are parsed with `httparse`, then validated against the
//! request-smuggling rules a gateway must enforce (see [`request`]).

pub mod accept;
pub mod body;
pub mod conn;
pub mod date;
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
mod fast_head;
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
mod field_simd;
mod fields;
mod host;
#[cfg(test)]
mod proptests;
pub mod request;
pub mod response;
pub mod write;

use bytes::Bytes;

/// One header field. Both parts are slices of the frozen head buffer (zero-copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: Bytes,
    pub value: Bytes,
}

/// Header fields in arrival order, duplicates kept. Names are compared case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first value of `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value)
    }

    /// Whether any `name` field, read as a comma-separated list, holds `token` (ASCII
    /// case-insensitive), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        fields::list_has_token(self.get_all(name).map(|v| v.as_ref()), token)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How a message body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (no Content-Length / Transfer-Encoding on a request; HEAD, 1xx, 204, 304
    /// responses).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (final coding).
    Chunked,
    /// Response only: the body runs until the backend closes the connection.
    CloseDelimited,
}

/// Size limits applied while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the head (request line + fields + CRLFCRLF). KrakenD/Go default: 1 MiB.
    pub max_header_bytes: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// Decoded body bytes.
    pub max_body_bytes: usize,
    /// Bytes of a request's request-target (requests only). Checked while the request line
    /// is still arriving, so a huge target is refused without being read to its end.
    pub max_target_bytes: usize,
}

/// The default cap on a request-target: nginx's default `large_client_header_buffers` (4 8k)
/// let a request line be at most 8 KiB.
pub const DEFAULT_MAX_TARGET_BYTES: usize = 8 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 1 << 20,
            max_headers: 100,
            max_body_bytes: 64 << 20,
            max_target_bytes: DEFAULT_MAX_TARGET_BYTES,
        }
    }
}

/// Everything that can go wrong on the wire. [`HttpError::status`] is the one mapping to a
/// status code for the server side.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed or ambiguous message (smuggling-relevant framing, bad syntax). 400, close.
    BadRequest(&'static str),
    /// The head exceeds `max_header_bytes`. 431.
    HeadTooLarge,
    /// The request-target exceeds `max_target_bytes`. 414.
    UriTooLong,
    /// More than `max_headers` fields. 431.
    TooManyHeaders,
    /// The body exceeds `max_body_bytes`. 413.
    BodyTooLarge,
    /// A framing error in a chunked body (bad size line, missing CRLF...). 400.
    BadChunk(&'static str),
    /// The peer closed before the message was complete.
    UnexpectedEof,
    /// The response from a backend is not valid HTTP/1.x.
    BadResponse(&'static str),
    /// An `Expect` header other than `100-continue`. 417.
    // KrakenD: Go's net/http server answers 417 Expectation Failed to any other expectation.
    ExpectationFailed,
}

impl HttpError {
    /// The status the server answers with for this error (the connection is closed after).
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::ExpectationFailed => 417,
            HttpError::BadRequest(_)
            | HttpError::BadChunk(_)
            | HttpError::UnexpectedEof
            | HttpError::BadResponse(_) => 400,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
            HttpError::HeadTooLarge => f.write_str("request header fields too large"),
            HttpError::TooManyHeaders => f.write_str("too many header fields"),
            HttpError::UriTooLong => f.write_str("request-target too long"),
            HttpError::BodyTooLarge => f.write_str("body too large"),
            HttpError::BadChunk(why) => write!(f, "bad chunked encoding: {why}"),
            HttpError::UnexpectedEof => f.write_str("connection closed mid-message"),
            HttpError::BadResponse(why) => write!(f, "invalid HTTP response: {why}"),
            HttpError::ExpectationFailed => f.write_str("expectation failed"),
        }
    }
}

impl std::error::Error for HttpError {}
