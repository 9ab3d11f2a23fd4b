//! The cluster-wide token bucket against a real `redis-server` (started per test on a free
//! port, see `common::redis`): what one lease grants, what several processes sharing a key
//! get together, and what happens when Redis stalls, dies, restarts or forgets the script.
//! The library API is driven directly; the gateway wiring lives with the rate limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::wait_until;
use proxy::redis::resp::Reply;
use proxy::redis::{
    spawn, Client, ClusterBucket, ConnectOptions, FeederConfig, LocalBucket, RedisError,
};

fn opts(server: &RedisServer) -> ConnectOptions {
    let mut o = ConnectOptions::new(server.address());
    o.dial_timeout = Duration::from_millis(500);
    o.read_timeout = Duration::from_millis(200);
    o.write_timeout = Duration::from_millis(200);
    o
}

fn admin(server: &RedisServer) -> Client {
    Client::connect(&opts(server)).expect("admin connection")
}

/// A local bucket that spends every token at once (always hungry) and records what the
/// feeder told it.
#[derive(Default)]
struct Recorder {
    level: AtomicU64,
    deposited: AtomicU64,
    healthy: AtomicBool,
    to_healthy: AtomicU64,
    to_unhealthy: AtomicU64,
    hold: bool,
    /// Accept no more than this many tokens in all (a bucket that is full from then on).
    accept_at_most: Option<u64>,
}

impl LocalBucket for Recorder {
    fn level(&self) -> u64 {
        self.level.load(Ordering::Relaxed)
    }
    fn deposit(&self, tokens: u64) -> u64 {
        let before = self.deposited.load(Ordering::Relaxed);
        let accepted = match self.accept_at_most {
            Some(most) => tokens.min(most.saturating_sub(before)),
            None => tokens,
        };
        self.deposited.fetch_add(accepted, Ordering::Relaxed);
        if self.hold {
            self.level.fetch_add(accepted, Ordering::Relaxed);
        }
        accepted
    }
    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
        if healthy {
            self.to_healthy.fetch_add(1, Ordering::Relaxed);
        } else {
            self.to_unhealthy.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn a_lease_grants_at_most_the_capacity_at_once_then_only_the_rate() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut bucket = ClusterBucket::new(opts(&server), "t:burst", 100.0, 50).unwrap();
    let start = Instant::now();
    assert_eq!(
        bucket.lease(7).unwrap(),
        7,
        "less than is available: all of it"
    );
    let rest = bucket.lease(1000).unwrap();
    assert!(
        (43..=45).contains(&rest),
        "a full bucket holds the capacity (50), then refills at 100/s: {rest}"
    );
    let right_after = bucket.lease(1000).unwrap();
    assert!(
        right_after <= 2,
        "an emptied bucket refills at the rate only: {right_after}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let later = bucket.lease(1000).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let total = 7 + rest + right_after + later;
    let most = 50 + (100.0 * elapsed).ceil() as u64;
    assert!(later >= 25, "300 ms at 100/s refilled {later}");
    assert!(
        total <= most,
        "{total} tokens in {elapsed:.3}s; at most {most}"
    );
    assert_eq!(bucket.lease(0).unwrap(), 0);
}

#[test]
fn tokens_given_back_can_be_leased_again_up_to_the_capacity() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut bucket = ClusterBucket::new(opts(&server), "t:give", 0.001, 20).unwrap();
    assert_eq!(bucket.lease(100).unwrap(), 20);
    bucket.give_back(8).unwrap();
    assert_eq!(
        bucket.lease(100).unwrap(),
        8,
        "what was given back, no more"
    );
    bucket.give_back(500).unwrap();
    assert_eq!(bucket.lease(100).unwrap(), 20, "never above the capacity");
}

#[test]
fn a_local_bucket_that_refuses_tokens_has_them_given_back_to_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Always "hungry" (level 0) but full after 20 tokens: the worst case for a feeder.
    let local = Arc::new(Recorder {
        accept_at_most: Some(20),
        ..Recorder::default()
    });
    let (rate, capacity) = (10.0, 100);
    let cfg = FeederConfig {
        batch: 50,
        low_water: 50,
        ..FeederConfig::for_rate(rate, capacity)
    };
    let bucket = ClusterBucket::new(opts(&server), "t:refuse", rate, capacity).unwrap();
    let start = Instant::now();
    let feeder = spawn(bucket, Arc::clone(&local), cfg).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (granted, returned, leases) = (
        feeder.state().granted(),
        feeder.state().returned(),
        feeder.state().leases(),
    );
    drop(feeder);
    assert_eq!(local.deposited.load(Ordering::Relaxed), 20);
    assert_eq!(
        granted - returned,
        20,
        "granted {granted}, returned {returned}"
    );
    // The refused tokens are in Redis again for others; and a full local bucket does not
    // make the feeder spin (it waits one poll after each refusal).
    let mut other = ClusterBucket::new(opts(&server), "t:refuse", rate, capacity).unwrap();
    let left = other.lease(1000).unwrap();
    let refill = (rate * start.elapsed().as_secs_f64()).ceil() as u64;
    assert!(
        (80..=80 + refill).contains(&left),
        "{left} left of 100 after 20 were kept"
    );
    assert!(leases < 200, "{leases} leases in 400 ms");
}

#[test]
fn an_idle_bucket_expires_once_it_would_be_full_again() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut bucket = ClusterBucket::new(opts(&server), "t:ttl", 1000.0, 10).unwrap();
    bucket.lease(1).unwrap();
    let mut admin = admin(&server);
    let Reply::Integer(pttl) = admin.command(&[b"PTTL", b"t:ttl"]).unwrap() else {
        panic!("PTTL")
    };
    // capacity / rate = 10 ms, plus one second.
    assert!((900..=1010).contains(&pttl), "PTTL {pttl} ms");
}

#[test]
fn two_processes_on_one_key_together_get_the_rate_within_one_percent() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // The capacity is half a second of the rate, so a scheduler stall of the test machine
    // (2 shared cores) shorter than that loses no tokens and the lower bound stays exact.
    let (rate, capacity) = (1000.0, 500);
    let cfg = FeederConfig::for_rate(rate, capacity);
    let locals: Vec<Arc<Recorder>> = (0..2).map(|_| Arc::new(Recorder::default())).collect();
    let start = Instant::now();
    let feeders: Vec<_> = locals
        .iter()
        .map(|local| {
            let bucket = ClusterBucket::new(opts(&server), "t:shared", rate, capacity).unwrap();
            spawn(bucket, Arc::clone(local), cfg.clone()).unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let ran = start.elapsed().as_secs_f64();
    for f in &feeders {
        f.state().stop();
    }
    let leases: Vec<u64> = feeders.iter().map(|f| f.state().leases()).collect();
    drop(feeders); // joins both threads
    let joined = start.elapsed().as_secs_f64();
    let got: Vec<u64> = locals
        .iter()
        .map(|l| l.deposited.load(Ordering::Relaxed))
        .collect();
    let total = got.iter().sum::<u64>() as f64;
    // What was left in Redis: with it, every token the bucket made is accounted for.
    let mut probe = ClusterBucket::new(opts(&server), "t:shared", rate, capacity).unwrap();
    let left = probe.lease(1_000_000).unwrap() as f64;
    let drained = start.elapsed().as_secs_f64();

    let limit = rate * joined + capacity as f64;
    eprintln!(
        "granted {total} = {got:?} in {ran:.3}s..{joined:.3}s ({:.2}% of {limit:.0}), \
         {left} left in Redis, {leases:?} leases",
        100.0 * total / limit
    );
    assert!(
        total <= limit * 1.01,
        "granted {total} ({got:?}) in {joined:.3}s; the limit allows {limit:.0}"
    );
    let made = total + left;
    let most = rate * drained + capacity as f64;
    assert!(
        made <= most * 1.01,
        "{made} tokens made by {drained:.3}s; at most {most:.0}"
    );
    let least = rate * ran + capacity as f64;
    // Loose on purpose: a full bucket loses what a longer stall of this 2-core machine would
    // have made (seen: 0.7 s under a parallel build). The exact bound is the upper one.
    assert!(
        made >= least * 0.7,
        "only {made} tokens made of {least:.0} in {ran:.3}s: the bucket refills too slowly"
    );
    assert!(
        total >= rate * ran * 0.5 && got.iter().all(|&g| g > 0),
        "both processes lease, and take most of it: {got:?}"
    );
    // About one script call per batch, not one per token.
    assert!(
        leases.iter().sum::<u64>() < total as u64 / 2,
        "{leases:?} calls for {total} tokens"
    );
}

#[test]
fn a_local_bucket_above_its_low_water_mark_takes_no_further_leases() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let local = Arc::new(Recorder {
        hold: true,
        ..Recorder::default()
    });
    let cfg = FeederConfig {
        batch: 20,
        low_water: 15,
        ..FeederConfig::for_rate(1000.0, 100)
    };
    let bucket = ClusterBucket::new(opts(&server), "t:hold", 1000.0, 100).unwrap();
    let feeder = spawn(bucket, Arc::clone(&local), cfg).unwrap();
    assert!(wait_until(Duration::from_secs(2), || feeder.healthy()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        feeder.state().leases(),
        1,
        "one lease filled it above the mark"
    );
    assert_eq!(local.level(), 20);
    // Spend it: the feeder tops it up again.
    local.level.store(3, Ordering::Relaxed);
    assert!(wait_until(Duration::from_secs(2), || local.level() >= 15));
    assert_eq!(feeder.state().leases(), 2);
}

#[test]
fn a_stalled_redis_times_out_and_a_killed_one_is_redialled_after_its_restart() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let local = Arc::new(Recorder::default());
    let mut cfg = FeederConfig::for_rate(1000.0, 100);
    cfg.backoff_max = Duration::from_millis(300);
    let bucket = ClusterBucket::new(opts(&server), "t:down", 1000.0, 100).unwrap();
    let feeder = spawn(bucket, Arc::clone(&local), cfg).unwrap();
    assert!(wait_until(Duration::from_secs(2), || local
        .healthy
        .load(Ordering::Relaxed)));

    // Stalled: the socket stays open, nothing answers. A lease fails within the read timeout.
    let mut probe = ClusterBucket::new(opts(&server), "t:probe", 1000.0, 100).unwrap();
    probe.lease(1).unwrap();
    server.pause();
    let t = Instant::now();
    let err = probe.lease(1).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, RedisError::Timeout), "{err:?}");
    assert!(took < Duration::from_millis(600), "failed after {took:?}");
    // The feeder flags itself, then tells the local bucket: wait for both.
    assert!(wait_until(Duration::from_secs(2), || !feeder.healthy()
        && !local.healthy.load(Ordering::Relaxed)));

    // Dead: connections are refused; the feeder keeps retrying without re-reporting.
    server.resume();
    server.kill();
    let t = Instant::now();
    assert!(probe.lease(1).is_err());
    assert!(t.elapsed() < Duration::from_millis(600));
    let failures = feeder.state().failures();
    assert!(wait_until(Duration::from_secs(3), || feeder
        .state()
        .failures()
        >= failures + 3));
    assert_eq!(
        local.to_unhealthy.load(Ordering::Relaxed),
        1,
        "reported once"
    );
    let deposited = local.deposited.load(Ordering::Relaxed);

    // Back on the same port: the feeder redials by itself and feeds again.
    server.restart();
    assert!(
        wait_until(Duration::from_secs(5), || local
            .healthy
            .load(Ordering::Relaxed)),
        "reconnected after the restart"
    );
    assert!(wait_until(Duration::from_secs(2), || local
        .deposited
        .load(Ordering::Relaxed)
        > deposited));
    assert_eq!(local.to_healthy.load(Ordering::Relaxed), 2);
    assert_eq!(local.to_unhealthy.load(Ordering::Relaxed), 1);
    assert_eq!(
        probe.lease(1).unwrap(),
        1,
        "a plain bucket reconnects on its next call"
    );
}

#[test]
fn redis_that_is_down_at_startup_is_reported_unhealthy_at_once() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let o = opts(&server);
    server.kill();
    let local = Arc::new(Recorder::default());
    let bucket = ClusterBucket::new(o, "t:late", 100.0, 10).unwrap();
    let feeder = spawn(
        bucket,
        Arc::clone(&local),
        FeederConfig::for_rate(100.0, 10),
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(2), || local
        .to_unhealthy
        .load(Ordering::Relaxed)
        == 1));
    assert_eq!(local.to_healthy.load(Ordering::Relaxed), 0);
    server.restart();
    assert!(wait_until(Duration::from_secs(5), || feeder.healthy()));
    assert!(local.healthy.load(Ordering::Relaxed));
}

#[test]
fn a_flushed_script_is_sent_again_and_keeps_the_bucket() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut bucket = ClusterBucket::new(opts(&server), "t:flush", 1.0, 10).unwrap();
    assert_eq!(bucket.lease(4).unwrap(), 4);
    let mut admin = admin(&server);
    assert_eq!(
        admin.command(&[b"SCRIPT", b"FLUSH"]).unwrap(),
        Reply::Simple("OK".into())
    );
    assert_eq!(eval_calls(&mut admin), 0, "EVALSHA only so far");
    // The state survived the flush: 6 left (plus what 1/s added meanwhile).
    let left = bucket.lease(100).unwrap();
    assert!((6..=7).contains(&left), "{left}");
    assert_eq!(eval_calls(&mut admin), 1, "NOSCRIPT answered with EVAL");
    // EVAL cached it again: the next lease is an EVALSHA.
    bucket.lease(1).unwrap();
    assert_eq!(eval_calls(&mut admin), 1);
}

fn eval_calls(admin: &mut Client) -> u64 {
    let Reply::Bulk(Some(info)) = admin.command(&[b"INFO", b"commandstats"]).unwrap() else {
        panic!("INFO")
    };
    let info = String::from_utf8(info).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_eval:calls="))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn auth_and_select_are_sent_and_a_wrong_password_is_an_error() {
    let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        return;
    };
    let mut o = opts(&server);
    o.password = Some("s3cret".into());
    o.db = 3;
    let mut bucket = ClusterBucket::new(o.clone(), "t:db", 10.0, 10).unwrap();
    assert_eq!(bucket.lease(2).unwrap(), 2);
    bucket.ping().unwrap();
    let mut admin = Client::connect(&o).unwrap();
    assert_eq!(
        admin.command(&[b"EXISTS", b"t:db"]).unwrap(),
        Reply::Integer(1)
    );
    assert_eq!(
        admin.command(&[b"SELECT", b"0"]).unwrap(),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        admin.command(&[b"EXISTS", b"t:db"]).unwrap(),
        Reply::Integer(0)
    );

    o.password = Some("wrong".into());
    let mut bad = ClusterBucket::new(o.clone(), "t:db", 10.0, 10).unwrap();
    assert!(matches!(bad.lease(1), Err(RedisError::Server(e)) if e.contains("AUTH")));
    o.password = None;
    let mut none = ClusterBucket::new(o, "t:db", 10.0, 10).unwrap();
    assert!(matches!(none.lease(1), Err(RedisError::Server(e)) if e.contains("NOAUTH")));
}

/// A TCP server that answers every connection with `reply` (or nothing) and keeps it open.
fn fake_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply);
                std::thread::sleep(Duration::from_secs(5));
            });
        }
    });
    addr
}

#[test]
fn a_server_that_speaks_garbage_is_an_error_not_a_panic() {
    for garbage in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        b"$99999999999\r\n",
        b":12x\r\n",
    ] {
        let mut o = ConnectOptions::new(fake_server(garbage));
        o.read_timeout = Duration::from_millis(200);
        let mut bucket = ClusterBucket::new(o, "k", 1.0, 1).unwrap();
        let err = bucket.lease(1).unwrap_err();
        assert!(
            matches!(err, RedisError::Protocol(_)),
            "{garbage:?}: {err:?}"
        );
    }
}

#[test]
fn a_server_that_never_answers_times_out_within_the_read_timeout() {
    let mut o = ConnectOptions::new(fake_server(b""));
    o.read_timeout = Duration::from_millis(150);
    let mut bucket = ClusterBucket::new(o, "k", 1.0, 1).unwrap();
    let t = Instant::now();
    assert!(matches!(bucket.lease(1), Err(RedisError::Timeout)));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[test]
fn nonsense_bucket_parameters_are_refused() {
    let o = ConnectOptions::new("127.0.0.1:1");
    assert!(ClusterBucket::new(o.clone(), "k", 0.0, 1).is_err());
    assert!(ClusterBucket::new(o.clone(), "k", f64::NAN, 1).is_err());
    assert!(ClusterBucket::new(o.clone(), "k", 1.0, 0).is_err());
    assert!(ClusterBucket::new(o, "", 1.0, 1).is_err());
}
