//! The cluster-wide token bucket: one hash in Redis per limit, changed only by one Lua script
//! that Redis runs atomically, so any number of gateway processes share one exact bucket.
//!
//! A call *leases* up to `want` tokens: the script refills the bucket from the time elapsed
//! since the previous call, takes `min(want, floor(tokens))` and returns that count (possibly
//! 0). The clock is Redis' own `TIME`, read inside the script, so the processes' clocks never
//! meet and cannot disagree. Over any interval the tokens granted to everyone together are at
//! most `capacity + rate * elapsed`, whatever the batch sizes: batching moves *when* a process
//! holds tokens, never how many exist.
//!
//! The key expires once the bucket would have refilled to capacity anyway (`capacity / rate`
//! seconds, plus a second), so an idle limit leaves nothing behind, and a bucket that expired
//! is indistinguishable from one that sat full.

use super::client::{unexpected, Client, ConnectOptions, Script};
use super::resp::Reply;
use super::RedisError;

/// KEYS[1]: the bucket. ARGV: rate (tokens per second, decimal), capacity, want, and
/// optionally tokens given back (leased earlier, never spent).
/// Fields: `tokens` (fractional, as Lua prints it) and `ts` (Redis time in microseconds; a
/// double holds today's value, about 1.7e15, exactly).
const LEASE_SCRIPT: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local give = tonumber(ARGV[4] or '0')
if rate == nil or capacity == nil or want == nil or give == nil
   or rate <= 0 or capacity < 1 or want < 0 or give < 0 then
  return redis.error_reply('ERR proxy lease: bad arguments')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
elseif now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000000)
end
-- A clock that stepped back (failover to a skewed replica) refills nothing until it moves on.
tokens = math.min(capacity, tokens + give)
local grant = math.min(want, math.floor(tokens))
if grant < 0 then grant = 0 end
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%.0f', now))
local ttl = math.ceil(capacity / rate * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], math.min(ttl, 1000000000000))
return grant
"#;

/// A token bucket shared by every process that names the same key on the same Redis.
///
/// Blocking: call it from a background thread only (see [`super::feeder`]). It connects on
/// first use and after any failure, so a caller simply retries `lease` to reconnect.
pub struct ClusterBucket {
    opts: ConnectOptions,
    key: String,
    rate_arg: String,
    capacity_arg: String,
    rate: f64,
    capacity: u64,
    client: Option<Client>,
    script: Script,
}

impl std::fmt::Debug for ClusterBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the options: they carry the password.
        f.debug_struct("ClusterBucket")
            .field("address", &self.opts.address)
            .field("key", &self.key)
            .field("rate", &self.rate)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl ClusterBucket {
    /// A bucket refilling `rate` tokens per second up to `capacity`, stored under `key`.
    /// Does not connect yet. Refuses a rate that is not a positive finite number or a
    /// capacity of 0 (such a bucket would never grant anything).
    pub fn new(
        opts: ConnectOptions,
        key: impl Into<String>,
        rate: f64,
        capacity: u64,
    ) -> Result<ClusterBucket, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate must be a positive number, got {rate}"));
        }
        if capacity == 0 {
            return Err("capacity must be at least 1".into());
        }
        let key = key.into();
        if key.is_empty() {
            return Err("the bucket key must not be empty".into());
        }
        Ok(ClusterBucket {
            opts,
            key,
            // f64's Display is the shortest exact decimal, never an exponent: Lua reads it back.
            rate_arg: format!("{rate}"),
            capacity_arg: capacity.to_string(),
            rate,
            capacity,
            client: None,
            script: Script::new(LEASE_SCRIPT),
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Take up to `want` tokens from the shared bucket: one script call, whatever `want` is.
    /// Returns how many were granted (0 when the bucket is empty). On any error the
    /// connection is dropped and the next call dials again; the error arrives within the
    /// configured dial/read/write timeouts.
    pub fn lease(&mut self, want: u64) -> Result<u64, RedisError> {
        if want == 0 {
            return Ok(0);
        }
        self.call(want, 0)
    }

    /// Return `tokens` leased earlier that the process could not keep (its bucket was full),
    /// so other processes may use them; the shared bucket still never exceeds its capacity.
    pub fn give_back(&mut self, tokens: u64) -> Result<(), RedisError> {
        if tokens == 0 {
            return Ok(());
        }
        self.call(0, tokens).map(|_| ())
    }

    /// Connect (if not connected) and `PING`: a health probe that takes no tokens.
    pub fn ping(&mut self) -> Result<(), RedisError> {
        let result = self.connected().and_then(Client::ping);
        if result.is_err() {
            self.client = None;
        }
        result
    }

    fn connected(&mut self) -> Result<&mut Client, RedisError> {
        connect_once(&mut self.client, &self.opts)
    }

    fn call(&mut self, want: u64, give: u64) -> Result<u64, RedisError> {
        let result = self.try_call(want, give);
        if matches!(result, Err(ref e) if !matches!(e, RedisError::Server(_))) {
            // A transport or protocol failure may leave half a reply in the socket.
            self.client = None;
        }
        result
    }

    fn try_call(&mut self, want: u64, give: u64) -> Result<u64, RedisError> {
        let want_arg = want.to_string();
        let give_arg = give.to_string();
        let client = connect_once(&mut self.client, &self.opts)?;
        let reply = client.eval(
            &mut self.script,
            &[self.key.as_bytes()],
            &[
                self.rate_arg.as_bytes(),
                self.capacity_arg.as_bytes(),
                want_arg.as_bytes(),
                give_arg.as_bytes(),
            ],
        )?;
        match reply {
            Reply::Integer(n) if n >= 0 => Ok(u64::try_from(n).unwrap_or(0).min(want)),
            Reply::Error(e) => Err(RedisError::Server(e)),
            other => Err(unexpected("lease script", &other)),
        }
    }
}

fn connect_once<'a>(
    slot: &'a mut Option<Client>,
    opts: &ConnectOptions,
) -> Result<&'a mut Client, RedisError> {
    if slot.is_none() {
        *slot = Some(Client::connect(opts)?);
    }
    slot.as_mut()
        .ok_or_else(|| RedisError::Connect("not connected".into()))
}
