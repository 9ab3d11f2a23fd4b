//! JWK sets fetched from a `jwk_url` (https, verified as [`super::jwk_tls`] says; plain http
//! only with `disable_jwk_security`). One background std thread per set and process — never
//! an event loop — fetches with std::net (connect/read timeouts, bounded response; TLS as a
//! blocking rustls stream), parses the keys once, and publishes them through arc-swap; every
//! core reads the same keys.
//!
//! Schedule: the first fetch when `proxy run` starts (it waits for it briefly); a refresh at
//! 80% of `cache_duration`; on failure, retries with backoff (1 s doubling to 30 s). Keys
//! older than `cache_duration` are dropped (fail closed: 401) until a fetch succeeds. A token
//! naming an unknown key asks for a refetch, honoured at most once per
//! `failed_jwk_key_cooldown`, and the request waits (asynchronously) for its outcome.

use super::alg::Alg;
use super::jwk::{self, KeySet};
use super::jwk_tls::{self, JwkUrl};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest JWK set document read.
pub const MAX_BODY: usize = 1 << 20;
/// Connect, and each read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// One whole fetch.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The keys of one URL, shared by every core.
pub struct Remote {
    pub url: String,
    src: JwkUrl,
    alg: Alg,
    cache: Duration,
    cooldown: Duration,
    keys: ArcSwapOption<KeySet>,
    /// When the published keys stop being valid (ms since the epoch).
    expires_ms: AtomicI64,
    /// Bumped after every fetch attempt, successful or not.
    generation: AtomicU64,
    /// Successful fetches (tests and logs).
    fetches: AtomicU64,
    refetch: AtomicBool,
    /// Last refetch asked for an unknown key (ms since the epoch).
    last_unknown_ms: AtomicI64,
    started: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Every live remote set, so a reload with the same URL and settings keeps its keys and
/// thread (fetched once per process). Only touched while compiling a plan.
static REGISTRY: OnceLock<ArcSwap<Vec<Weak<Remote>>>> = OnceLock::new();

impl Remote {
    /// The shared set for this URL and settings (a new one, not started, if none is alive).
    pub fn shared(src: &JwkUrl, alg: Alg, cache: Duration, cooldown: Duration) -> Arc<Remote> {
        let reg = REGISTRY.get_or_init(|| ArcSwap::from_pointee(Vec::new()));
        let same = |r: &Remote| {
            r.src == *src && r.alg == alg && r.cache == cache && r.cooldown == cooldown
        };
        if let Some(r) = reg
            .load()
            .iter()
            .filter_map(Weak::upgrade)
            .find(|r| same(r))
        {
            return r;
        }
        let fresh = Arc::new(Remote {
            url: src.url.clone(),
            src: src.clone(),
            alg,
            cache,
            cooldown,
            keys: ArcSwapOption::empty(),
            expires_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            refetch: AtomicBool::new(false),
            last_unknown_ms: AtomicI64::new(i64::MIN / 2),
            started: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let weak = Arc::downgrade(&fresh);
        reg.rcu(|list| {
            let mut l: Vec<Weak<Remote>> = list
                .iter()
                .filter(|w| w.strong_count() > 0)
                .cloned()
                .collect();
            l.push(weak.clone());
            l
        });
        fresh
    }

    /// Start the fetch thread (once). Returns whether this call started it.
    pub fn start(self: &Arc<Self>) -> Result<bool, String> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        jwk_tls::warn_insecure("auth/validator", &self.src);
        let weak = Arc::downgrade(self);
        let t = std::thread::Builder::new()
            .name("proxy-jwk".into())
            .spawn(move || fetch_loop(weak))
            .map_err(|e| format!("cannot start the JWK fetch thread: {e}"))?;
        let _ = self.thread.set(t.thread().clone());
        Ok(true)
    }

    /// The keys, unless none were fetched or they expired.
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        let k = self.keys.load_full()?;
        (now_ms() < self.expires_ms.load(Ordering::Acquire)).then_some(k)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A token named a key the set lacks: ask for a refetch unless one was asked within the
    /// cooldown. Returns whether a refetch was asked (worth waiting for).
    pub fn unknown_key(&self) -> bool {
        let now = now_ms();
        let last = self.last_unknown_ms.load(Ordering::Acquire);
        if now.saturating_sub(last) < self.cooldown.as_millis() as i64 {
            return false;
        }
        if self
            .last_unknown_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false; // another core asked at the same moment
        }
        self.refetch.store(true, Ordering::Release);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        true
    }

    /// One fetch now; publishes the keys on success.
    fn fetch_once(&self) -> Result<(), String> {
        let body = http_get(&self.src)?;
        let set = jwk::parse_set(&body, self.alg)?;
        for s in &set.skipped {
            crate::warn!("[JWK] {}: key skipped: {s}", self.url);
        }
        if set.keys.is_empty() {
            return Err(format!("no key usable with {}", self.alg.name()));
        }
        self.keys.store(Some(Arc::new(set)));
        let ttl = self.cache.as_millis() as i64;
        self.expires_ms
            .store(now_ms().saturating_add(ttl), Ordering::Release);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn fetch_loop(weak: Weak<Remote>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(r) = weak.upgrade() else { return };
        r.refetch.store(false, Ordering::Release);
        let wait = match r.fetch_once() {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                // Strictly before the keys expire, whatever `cache_duration` is (a 1 s floor
                // made a 1 s cache refresh at the very moment its keys expired, leaving a
                // window of 401s); the 100 ms floor only stops a zero duration from spinning.
                r.cache.mul_f64(0.8).max(Duration::from_millis(100))
            }
            Err(e) => {
                crate::error!("[JWK] fetching {} failed: {e}", r.url);
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                w
            }
        };
        r.generation.fetch_add(1, Ordering::AcqRel);
        drop(r);
        // Sleep until the refresh is due, a refetch is asked, or the plan drops the set
        // (checked every few seconds).
        let due = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::park_timeout((due - now).min(Duration::from_secs(2)));
            match weak.upgrade() {
                None => return,
                Some(r) if r.refetch.load(Ordering::Acquire) => break,
                Some(_) => {}
            }
        }
    }
}

/// Split `http[s]://host[:port]/path` into (host:port, host header, path, https).
fn split_url(url: &str) -> Result<(String, String, String, bool), String> {
    let (rest, https) = if let Some(r) = url.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("http://") {
        (r, false)
    } else {
        return Err("only http:// and https:// URLs are fetched".to_string());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("the URL has no host (or carries credentials)".into());
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:{}", if https { 443 } else { 80 })
    };
    Ok((addr, authority.to_string(), path, https))
}

/// GET over HTTP/1.1 with timeouts and a size bound; the body of a 200 answer whose
/// Content-Type is JSON.
pub fn http_get(src: &JwkUrl) -> Result<Vec<u8>, String> {
    let (addr, host, path, https) = split_url(&src.url)?;
    let deadline = Instant::now() + FETCH_DEADLINE;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))?;
    let s = TcpStream::connect_timeout(&sock, IO_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: \
         proxy-jwk/{}\r\nConnection: close\r\n\r\n",
        crate::VERSION
    );
    if https {
        // SNI and the verified name: the URL's host (the socket timeouts bound the handshake).
        let tls = jwk_tls::connect(s, jwk_tls::sni_host(&host), &src.tls)?;
        exchange(tls, &req, deadline)
    } else {
        exchange(s, &req, deadline)
    }
}

/// Send the request and read the whole answer (bounded in size and time).
fn exchange<S: Read + Write>(mut s: S, req: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        if Instant::now() >= deadline {
            return Err(format!("no complete answer within {FETCH_DEADLINE:?}"));
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            // A server closing without close_notify after a complete answer is common; the
            // answer is checked for completeness below either way.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if buf.len() > MAX_BODY + 16 * 1024 {
            return Err(format!("answer larger than {MAX_BODY} bytes"));
        }
        if complete(&buf) == Some(true) {
            break;
        }
    }
    parse_answer(&buf)
}

/// Whether `buf` holds a whole answer (Some(false) when the head is parsed but the body is
/// still coming; None when even the head is incomplete).
fn complete(buf: &[u8]) -> Option<bool> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(at) = resp.parse(buf).ok()? else {
        return None;
    };
    let body = buf.get(at..).unwrap_or(&[]);
    if let Some(len) = content_length(resp.headers) {
        return Some(body.len() >= len);
    }
    if is_chunked(resp.headers) {
        return Some(dechunk(body).is_ok());
    }
    Some(false)
}

fn content_length(h: &[httparse::Header<'_>]) -> Option<usize> {
    h.iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
}

fn is_chunked(h: &[httparse::Header<'_>]) -> bool {
    h.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.to_ascii_lowercase().ends_with(b"chunked")
    })
}

/// Decode a whole chunked body; Err when it is incomplete or malformed.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = memchr::memmem::find(body, b"\r\n").ok_or("incomplete chunk")?;
        let size_text = body.get(..line_end).unwrap_or(&[]);
        let size_text = size_text.split(|b| *b == b';').next().unwrap_or(&[]);
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or("bad chunk size")?;
        body = body.get(line_end + 2..).unwrap_or(&[]);
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_BODY || out.len() + size > MAX_BODY {
            return Err("chunked body too large".into());
        }
        let data = body.get(..size).ok_or("incomplete chunk")?;
        out.extend_from_slice(data);
        body = body.get(size + 2..).ok_or("incomplete chunk")?;
    }
}

fn parse_answer(buf: &[u8]) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let at = match resp.parse(buf) {
        Ok(httparse::Status::Complete(at)) => at,
        _ => return Err("malformed or incomplete HTTP answer".into()),
    };
    if resp.code != Some(200) {
        return Err(format!("status {}", resp.code.unwrap_or(0)));
    }
    // KrakenD: the JWK answer must say it is JSON.
    let ct = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.to_ascii_lowercase())
        .unwrap_or_default();
    let media = ct.split(|b| *b == b';').next().unwrap_or(&[]).trim_ascii();
    if media != b"application/json" && media != b"application/jwk-set+json" {
        return Err(format!(
            "Content-Type {:?} is not application/json",
            String::from_utf8_lossy(&ct)
        ));
    }
    let body = buf.get(at..).unwrap_or(&[]);
    let body = if let Some(len) = content_length(resp.headers) {
        body.get(..len)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else if is_chunked(resp.headers) {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err(format!("body larger than {MAX_BODY} bytes"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8081/jwk/symmetric").unwrap(),
            (
                "127.0.0.1:8081".into(),
                "127.0.0.1:8081".into(),
                "/jwk/symmetric".into(),
                false
            )
        );
        assert_eq!(
            split_url("http://keys.example").unwrap(),
            (
                "keys.example:80".into(),
                "keys.example".into(),
                "/".into(),
                false
            )
        );
        assert_eq!(
            split_url("https://keys.example/jwks").unwrap(),
            (
                "keys.example:443".into(),
                "keys.example".into(),
                "/jwks".into(),
                true
            )
        );
        assert_eq!(jwk_tls::sni_host("keys.example:8443"), "keys.example");
        assert_eq!(jwk_tls::sni_host("[::1]:8443"), "::1");
        assert!(split_url("ftp://x/").is_err());
        assert!(split_url("http://user@x/").is_err());
    }

    #[test]
    fn answers_must_be_200_json_and_chunked_bodies_are_decoded() {
        let ok =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_answer(ok).unwrap(), b"{}");
        let text = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
        assert!(parse_answer(text).unwrap_err().contains("Content-Type"));
        let e404 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_answer(e404).unwrap_err().contains("404"));
        let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
            Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(complete(chunked), Some(true));
        assert_eq!(parse_answer(chunked).unwrap(), b"{}");
        assert_eq!(complete(&chunked[..chunked.len() - 5]), Some(false));
    }
}
