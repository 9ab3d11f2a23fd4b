//! The `Date` header value, cached per thread and refreshed at most once a second.
use crate::runtime::clock;
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` is always 29 bytes (until the year 10000).
const DATE_LEN: usize = 29;

thread_local! {
    /// (whole seconds since the epoch, that second as IMF-fixdate). `u64::MAX` = never set.
    static CACHE: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
    /// Until when (on the monotonic clock) the cached second is still the current one.
    static VALID_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Call `f` with the current IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    // The wall clock is read once a second: within it, the per-poll monotonic instant
    // (already read for the request's deadlines) says whether the second has turned.
    let now = clock::now();
    if VALID_UNTIL.get().is_some_and(|u| now < u) {
        return f(&CACHE.get().1);
    }
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_nanos(u64::from(
        1_000_000_000 - wall.subsec_nanos().min(999_999_999),
    ));
    VALID_UNTIL.set(now.checked_add(left));
    with_date_at(wall.as_secs(), f)
}

fn with_date_at<R>(now_secs: u64, f: impl FnOnce(&[u8]) -> R) -> R {
    let (cached_secs, mut text) = CACHE.get();
    if cached_secs != now_secs {
        let formatted = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(now_secs));
        if let Ok(fresh) = <[u8; DATE_LEN]>::try_from(formatted.as_bytes()) {
            text = fresh;
            CACHE.set((now_secs, text));
        }
    }
    // The cell is not borrowed while `f` runs, so `f` may itself call `with_date`.
    f(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date_at(secs: u64) -> String {
        with_date_at(secs, |d| String::from_utf8_lossy(d).into_owned())
    }

    #[test]
    fn date_is_imf_fixdate_of_the_given_second() {
        assert_eq!(date_at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date_at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn cached_date_is_refreshed_when_the_second_changes() {
        let a = date_at(1_000_000_000);
        let b = date_at(1_000_000_000);
        let c = date_at(1_000_000_001);
        assert_eq!(a, b);
        assert_eq!(c, "Sun, 09 Sep 2001 01:46:41 GMT");
    }

    #[test]
    fn current_date_parses_back_to_now() {
        let text = with_date(|d| String::from_utf8_lossy(d).into_owned());
        let parsed = httpdate::parse_http_date(&text).ok();
        let age = parsed.and_then(|t| SystemTime::now().duration_since(t).ok());
        assert!(age.is_some_and(|a| a < Duration::from_secs(5)), "{text}");
    }

    #[test]
    fn cached_date_turns_with_the_wall_clock_second() {
        let first = with_date(|d| d.to_vec());
        std::thread::sleep(Duration::from_millis(1100));
        let second = with_date(|d| d.to_vec());
        assert_ne!(first, second);
        let text = String::from_utf8_lossy(&second).into_owned();
        let parsed = httpdate::parse_http_date(&text).ok();
        let age = parsed.and_then(|t| SystemTime::now().duration_since(t).ok());
        assert!(age.is_some_and(|a| a < Duration::from_secs(2)), "{text}");
    }

    #[test]
    fn with_date_may_be_nested() {
        let len = with_date(|outer| with_date(|inner| outer.len() + inner.len()));
        assert_eq!(len, 2 * DATE_LEN);
    }
}
