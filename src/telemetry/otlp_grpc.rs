//! OTLP/gRPC: not built yet.

use super::otlp_wire::{SendError, Signal};
use std::net::TcpStream;

pub fn exchange(
    _s: &mut TcpStream,
    _authority: &str,
    _signal: Signal,
    _body: &[u8],
) -> Result<bool, SendError> {
    Err(SendError::Fatal("OTLP over gRPC is not built".into()))
}
