//! A blocking Redis connection over `std::net::TcpStream`, with dial, read and write timeouts.
//!
//! Blocking on purpose: it runs only on a background thread (the lease feeder), never on a
//! monoio event loop, so a slow Redis can stall nothing but that thread. One request is in
//! flight at a time; there is no pipelining and no pool, because one lease per batch is the
//! whole load.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::resp::{self, Limits, Reply};
use super::RedisError;

/// Where and how to connect. Built by [`super::config`] from the `redis` namespace, or by hand.
/// Its `Debug` hides the password, so settings can be printed (`check -d`, logs).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `host:port`.
    pub address: String,
    /// `AUTH [user] password` after connecting, when set.
    pub user: Option<String>,
    pub password: Option<String>,
    /// `SELECT db` after connecting, when not 0.
    pub db: u32,
    /// `CLIENT SETNAME` after connecting, when set (how the connection shows in `CLIENT LIST`).
    pub client_name: Option<String>,
    pub dial_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("client_name", &self.client_name)
            .field("dial_timeout", &self.dial_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish()
    }
}

impl ConnectOptions {
    /// Options for `address` with no AUTH, db 0 and the default timeouts (see [`super::config`]).
    pub fn new(address: impl Into<String>) -> Self {
        ConnectOptions {
            address: address.into(),
            user: None,
            password: None,
            db: 0,
            client_name: None,
            dial_timeout: super::config::DEFAULT_DIAL_TIMEOUT,
            read_timeout: super::config::DEFAULT_IO_TIMEOUT,
            write_timeout: super::config::DEFAULT_IO_TIMEOUT,
        }
    }
}

/// A server-side script: its source and, once known, the SHA1 Redis filed it under.
#[derive(Debug)]
pub struct Script {
    source: &'static str,
    sha: Option<String>,
}

impl Script {
    pub const fn new(source: &'static str) -> Self {
        Script { source, sha: None }
    }
}

/// One connection. Any transport or protocol error leaves it in an unknown state (a reply may
/// be half read): drop it and connect again.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: Limits,
}

/// Never more than this many bytes buffered for one reply (the parser's limits are lower).
const MAX_BUFFER: usize = 1024 * 1024;

impl Client {
    /// Connect to the first address `address` resolves to that accepts within the dial
    /// timeout, then AUTH, SELECT and CLIENT SETNAME as the options ask.
    pub fn connect(opts: &ConnectOptions) -> Result<Client, RedisError> {
        let addrs = opts
            .address
            .to_socket_addrs()
            .map_err(|e| RedisError::Connect(format!("{}: {e}", opts.address)))?;
        let mut last = format!("{}: resolves to no address", opts.address);
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, opts.dial_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        let stream = stream.ok_or(RedisError::Connect(last))?;
        // Zero would mean "no timeout" to std; our config refuses it, but be sure.
        let nonzero = |d: Duration| Some(d.max(Duration::from_millis(1)));
        stream.set_read_timeout(nonzero(opts.read_timeout))?;
        stream.set_write_timeout(nonzero(opts.write_timeout))?;
        let _ = stream.set_nodelay(true);
        let mut client = Client {
            stream,
            buf: Vec::with_capacity(256),
            limits: Limits::default(),
        };
        if let Some(password) = &opts.password {
            let reply = match &opts.user {
                Some(user) => client.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => client.command(&[b"AUTH", password.as_bytes()])?,
            };
            expect_ok(reply, "AUTH")?;
        }
        if opts.db != 0 {
            let db = itoa::Buffer::new().format(opts.db).to_owned();
            expect_ok(client.command(&[b"SELECT", db.as_bytes()])?, "SELECT")?;
        }
        if let Some(name) = &opts.client_name {
            expect_ok(
                client.command(&[b"CLIENT", b"SETNAME", name.as_bytes()])?,
                "CLIENT SETNAME",
            )?;
        }
        Ok(client)
    }

    /// Send one command and read its reply. An error reply is `Ok(Reply::Error(..))`: the
    /// connection is still fine; the caller decides what the refusal means.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let mut out = Vec::with_capacity(64);
        resp::encode(args, &mut out);
        self.stream.write_all(&out)?;
        self.read_reply()
    }

    /// `PING`, expecting `PONG`.
    pub fn ping(&mut self) -> Result<(), RedisError> {
        match self.command(&[b"PING"])? {
            Reply::Simple(s) if s == "PONG" => Ok(()),
            other => Err(unexpected("PING", &other)),
        }
    }

    /// Run `script` with `EVALSHA`; when Redis does not know it (`NOSCRIPT`: first use, a
    /// restart, `SCRIPT FLUSH`), send the source with `EVAL`, which also caches it again.
    /// The SHA comes from `SCRIPT LOAD` on first use, so we never compute SHA1 ourselves.
    pub fn eval(
        &mut self,
        script: &mut Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply, RedisError> {
        let sha = match &script.sha {
            Some(sha) => sha.clone(),
            None => {
                let sha = match self.command(&[b"SCRIPT", b"LOAD", script.source.as_bytes()])? {
                    Reply::Bulk(Some(sha)) => String::from_utf8(sha)
                        .map_err(|_| RedisError::Unexpected("SCRIPT LOAD: non-UTF-8 SHA".into()))?,
                    Reply::Error(e) => return Err(RedisError::Server(e)),
                    other => return Err(unexpected("SCRIPT LOAD", &other)),
                };
                script.sha = Some(sha.clone());
                sha
            }
        };
        let reply = self.run(b"EVALSHA", sha.as_bytes(), keys, args)?;
        match reply {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => {
                self.run(b"EVAL", script.source.as_bytes(), keys, args)
            }
            other => Ok(other),
        }
    }

    fn run(
        &mut self,
        verb: &[u8],
        script: &[u8],
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply, RedisError> {
        let numkeys = itoa::Buffer::new().format(keys.len()).to_owned();
        let mut all: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        all.push(verb);
        all.push(script);
        all.push(numkeys.as_bytes());
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        self.command(&all)
    }

    fn read_reply(&mut self) -> Result<Reply, RedisError> {
        let mut chunk = [0u8; 4096];
        loop {
            if !self.buf.is_empty() {
                if let Some((reply, used)) = resp::parse(&self.buf, &self.limits)? {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
            }
            if self.buf.len() > MAX_BUFFER {
                return Err(RedisError::Protocol("reply larger than 1 MiB".into()));
            }
            let n = match self.stream.read(&mut chunk) {
                // A socket with a receive timeout fails with EINTR after the process is
                // stopped and continued (signal(7)); that is not a Redis failure.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Err(RedisError::Closed);
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn expect_ok(reply: Reply, what: &str) -> Result<(), RedisError> {
    match reply {
        Reply::Simple(s) if s == "OK" => Ok(()),
        Reply::Error(e) => Err(RedisError::Server(format!("{what}: {e}"))),
        other => Err(unexpected(what, &other)),
    }
}

pub(super) fn unexpected(what: &str, reply: &Reply) -> RedisError {
    let mut shown = format!("{reply:?}");
    if shown.len() > 120 {
        let cut = (0..=120)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    RedisError::Unexpected(format!("{what}: unexpected reply {shown}"))
}
