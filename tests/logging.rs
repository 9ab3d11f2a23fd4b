//! `telemetry/logging`: formats, outputs (stdout, syslog) and the access log, and the promise
//! that a stalled log output drops lines instead of stalling requests.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::one;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(logging: Option<Value>) -> (Backend, Gateway) {
    let b = Backend::json(r#"{"a":1}"#);
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    if let Some(l) = logging {
        cfg["extra_config"]["telemetry/logging"] = l;
    }
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

/// Wait until the gateway's output has a line for which `pred` holds.
fn wait_line(g: &Gateway, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(l) = g.output().lines().find(|l| pred(l)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no such line in:\n{}",
            g.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn access_lines_follow_gins_layout() {
    let (_b, g) = start(None);
    assert_eq!(get(&g.url("/e")).status, 200);
    let line = wait_line(&g, |l| l.starts_with("[GIN] "));
    assert!(line.contains(" | 200 | "), "{line}");
    assert!(
        line.contains("|       127.0.0.1 | GET     \"/e\""),
        "{line}"
    );
}

#[test]
fn access_lines_are_json_when_asked() {
    let (_b, g) = start(Some(json!({"level": "INFO", "access_log_format": "json"})));
    assert_eq!(get(&g.url("/e?x=1")).status, 200);
    let line = wait_line(&g, |l| l.starts_with("{\"time\""));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/e");
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert!(v["latency_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn default_format_prints_krakends_line_with_the_prefix_on_stdout() {
    let (_b, g) = start(Some(
        json!({"level": "DEBUG", "prefix": "[KRAKEND]", "stdout": true}),
    ));
    let line = wait_line(&g, |l| l.contains("Listening on port"));
    assert!(line.starts_with("[KRAKEND] "), "{line}");
    assert!(
        line.contains(" ▶ INFO [SERVICE: proxy] Listening on port: "),
        "{line}"
    );
    assert!(!line.starts_with("[stderr]"), "{line}");
}

#[test]
fn level_filters_application_lines() {
    let (_b, g) = start(Some(json!({"level": "ERROR", "stdout": true})));
    assert_eq!(get(&g.url("/e")).status, 200);
    wait_line(&g, |l| l.starts_with("[GIN] "));
    assert!(!g.output().contains("Listening on port"), "{}", g.output());
}

#[test]
fn logstash_format_prints_one_json_object_per_line() {
    let (_b, g) = start(Some(
        json!({"level": "INFO", "stdout": true, "format": "logstash", "prefix": "gw"}),
    ));
    let line = wait_line(&g, |l| l.contains("Listening on port"));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["module"], "gw");
    assert_eq!(v["@version"], 1);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("[SERVICE: proxy] Listening on port: "));
}

#[test]
fn custom_format_renders_the_pattern() {
    let (_b, g) = start(Some(json!({
        "level": "INFO", "stdout": true, "format": "custom",
        "custom_format": "CUSTOM %{level:.4s} <%{message}>"
    })));
    let line = wait_line(&g, |l| l.starts_with("CUSTOM "));
    assert!(
        line.starts_with("CUSTOM INFO <[SERVICE: proxy] Listening on port: "),
        "{line}"
    );
}

#[test]
fn a_bad_format_refuses_to_start() {
    let b = Backend::json("{}");
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    cfg["extra_config"]["telemetry/logging"] = json!({"level": "INFO", "format": "fancy"});
    let err = match Gateway::try_start_with(&cfg.to_string(), &[], &[]) {
        Ok(_) => panic!("started with format fancy"),
        Err(e) => e,
    };
    assert!(err.contains("telemetry/logging.format"), "{err}");
}

#[test]
fn syslog_gets_rfc3164_frames_with_the_facility_and_severity() {
    let dir = std::env::temp_dir().join(format!("proxy-syslog-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("log.sock");
    let _ = std::fs::remove_file(&path);
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (_b, _g) = start(Some(json!({
        "level": "INFO", "syslog": true, "syslog_facility": "local3",
        "prefix": "gw", "syslog_address": path.to_str().unwrap()
    })));
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let frame = loop {
        let n = sock.recv(&mut buf).expect("a syslog frame");
        let f = String::from_utf8_lossy(&buf[..n]).into_owned();
        if f.contains("Listening on port") {
            break f;
        }
        assert!(Instant::now() < deadline);
    };
    // local3 (19) * 8 + info (6) = 158
    assert!(frame.starts_with("<158>"), "{frame}");
    assert!(frame.contains(" gw["), "{frame}");
    assert!(frame.contains("]: "), "{frame}");
    let _ = std::fs::remove_file(&path);
}

/// One GET on a fresh connection; how long the answer took.
fn timed_get(addr: std::net::SocketAddr, path: &str) -> Duration {
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    t.elapsed()
}

#[test]
fn a_stalled_log_output_drops_lines_instead_of_stalling_requests() {
    let b = Backend::json(r#"{"a":1}"#);
    let mut cfg = one("/e/{id}", "GET", &b.url(), "/e");
    cfg["extra_config"]["telemetry/logging"] = json!({"level": "INFO", "stdout": true});
    let path = gateway::temp_config_path();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let mut child = Command::new(gateway::binary())
        .args(["run", "-c"])
        .arg(&path)
        .args(["--cores", "1", "-p", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no listening line");
        if let Some(a) = gateway::parse_listening(&line) {
            break a;
        }
    };
    // Nobody reads stdout now: the pipe (64 KiB) fills, then the writer blocks on it.
    // 4 KiB access lines: a few hundred fill the pipe, the writer's buffer and the queue.
    let long = format!("/e/{}", "x".repeat(4000));
    let mut worst = Duration::ZERO;
    let stalled = Instant::now();
    let mut sent = 0;
    while stalled.elapsed() < Duration::from_secs(3) || sent < 1000 {
        worst = worst.max(timed_get(addr, &long));
        sent += 1;
    }
    assert!(
        worst < Duration::from_secs(1),
        "a request waited {worst:?} on the stalled log"
    );
    // Read again: the writer gets going and reports what it dropped.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut l = String::new();
        while out.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
            if l.contains("log lines dropped") {
                let _ = tx.send(l.clone());
            }
            l.clear();
        }
    });
    let report = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let report = report.expect("a drop report once stdout is read again");
    assert!(report.contains("WARNIN"), "{report}");
}

#[test]
fn the_logstash_namespace_switches_lines_to_logstash_json() {
    let b = Backend::json("{}");
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    cfg["extra_config"]["telemetry/logging"] = json!({"level": "INFO", "stdout": true});
    cfg["extra_config"]["telemetry/logstash"] = json!({"enabled": true});
    let g = Gateway::start(&cfg.to_string());
    let line = wait_line(&g, |l| l.contains("Listening on port"));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["module"], "KRAKEND");
}

/// A gateway logging at DEBUG with the debug endpoint on, and `gelf` as its telemetry/gelf.
fn gelf_gateway(gelf: Value) -> (Backend, Gateway) {
    let b = Backend::json("{}");
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    cfg["debug_endpoint"] = json!(true);
    cfg["extra_config"]["telemetry/logging"] = json!({"level": "DEBUG"});
    cfg["extra_config"]["telemetry/gelf"] = gelf;
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

/// Text gzip barely shrinks: hex of a simple PRNG.
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

#[test]
fn gelf_over_udp_sends_gzipped_chunked_messages_that_reassemble() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (_b, g) = gelf_gateway(json!({"address": sock.local_addr().unwrap().to_string()}));
    let body = noise(20_000);
    let r = request("POST", &g.url("/__debug/x"), &[], body.as_bytes());
    assert_eq!(r.status, 200);
    // Collect datagrams until a chunked message is complete.
    let mut parts: std::collections::BTreeMap<u8, Vec<u8>> = Default::default();
    let mut buf = [0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(5);
    let packed = loop {
        assert!(Instant::now() < deadline, "no chunked message");
        let n = sock.recv(&mut buf).expect("a GELF datagram");
        let d = &buf[..n];
        assert!(n <= 1420, "datagram of {n} bytes");
        if d[..2] != [0x1e, 0x0f] {
            continue; // a short message, gzipped whole
        }
        let (seq, count) = (d[10], d[11]);
        parts.insert(seq, d[12..].to_vec());
        if parts.len() == count as usize {
            break parts.values().flatten().copied().collect::<Vec<u8>>();
        }
    };
    let mut json = String::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_string(&mut json)
        .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], "1.1");
    assert_eq!(v["level"], 7, "DEBUG is syslog severity 7");
    assert!(v["short_message"].as_str().unwrap().contains(&body), "{v}");
}

#[test]
fn gelf_over_tcp_sends_nul_terminated_json() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (_b, _g) = gelf_gateway(json!({
        "address": l.local_addr().unwrap().to_string(), "enable_tcp": true
    }));
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut msg = Vec::new();
        r.read_until(0, &mut msg).unwrap();
        assert_eq!(msg.pop(), Some(0), "a NUL-terminated message");
        let v: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(v["version"], "1.1");
        if v["short_message"]
            .as_str()
            .unwrap()
            .contains("[SERVICE: proxy] Listening on port")
        {
            assert_eq!(v["level"], 6);
            break;
        }
    }
}

#[test]
fn check_refuses_logging_options_run_would_refuse() {
    let b = Backend::json("{}");
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    cfg["extra_config"]["telemetry/logging"] = json!({
        "level": "INFO", "format": "custom", "custom_format": "%{shortfunc} %{message}"
    });
    let (code, _out, err) = gateway::check(&cfg.to_string());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("%{shortfunc}"), "{err}");
    cfg["extra_config"]["telemetry/logging"] = json!({"level": "INFO"});
    cfg["extra_config"]["telemetry/gelf"] = json!({"enable_tcp": true});
    let (code, _out, err) = gateway::check(&cfg.to_string());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("telemetry/gelf.address"), "{err}");
}
