//! `proxy run | check | version`.
pub fn main() -> i32 {
    0
}
