//! The HTTPS listener (service `tls`) against real clients — curl, `openssl s_client`, Python's
//! `ssl` — with certificates made by each test: versions, ECDSA and RSA keys, SNI, mTLS,
//! resumption, hostile input, and certificate reload on SIGHUP.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::service;
use common::gateway::run_cli;
use common::pki::{Alg, Files, Leaf, Pki};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tls_config(tls: Value) -> String {
    let mut cfg = service(vec![]);
    cfg["tls"] = tls;
    cfg.to_string()
}

fn pair(f: &Files) -> Value {
    json!({"public_key": f.cert(), "private_key": f.key()})
}

/// `openssl s_client` to the gateway: it handshakes, sends one request that closes the
/// connection (so TLS 1.3 tickets, sent after the handshake, are read), then quits. All output.
fn s_client(g: &Gateway, args: &[&str]) -> String {
    let port = g.addr().port().to_string();
    let mut child = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /__health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let out = child.wait_with_output().expect("openssl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether `s_client` completed a handshake.
fn handshaken(out: &str) -> bool {
    out.contains(", Cipher is ") && !out.contains("Cipher is (NONE)")
}

/// `curl` to `https://localhost:PORT/__health`: (status code, stderr).
fn curl(g: &Gateway, args: &[&str]) -> (String, String) {
    let url = format!("https://localhost:{}/__health", g.addr().port());
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", g.addr().port()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_gets_200_over_tls13_with_an_ecdsa_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("test CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let g = Gateway::start(&tls_config(pair(&leaf)));
    let (code, err) = curl(&g, &["--cacert", ca.files.cert()]);
    assert_eq!(code, "200", "{err}\n{}", g.output());
    let out = s_client(
        &g,
        &["-CAfile", ca.files.cert(), "-servername", "localhost"],
    );
    assert!(out.contains("TLSv1.3"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // ALPN offers http/1.1 and nothing else.
    let out = s_client(&g, &["-alpn", "h2,http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
}

#[test]
fn without_min_version_only_tls13_is_accepted_as_in_krakend() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let g = Gateway::start(&tls_config(pair(&leaf)));
    let out = s_client(&g, &["-tls1_2"]);
    assert!(!handshaken(&out), "{out}");
    assert!(out.contains("alert protocol version"), "{out}");
    let (code, _) = curl(&g, &["-k", "--tlsv1.2", "--tls-max", "1.2"]);
    assert_eq!(code, "000");
    let (code, _) = curl(&g, &["-k"]);
    assert_eq!(code, "200");
}

#[test]
fn min_version_tls12_serves_tls12_with_an_rsa_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("rsa CA");
    let leaf = pki.leaf(
        &ca,
        Leaf {
            alg: Alg::Rsa,
            ..Leaf::server(&["localhost"])
        },
    );
    let mut tls = pair(&leaf);
    tls["min_version"] = json!("TLS12");
    let g = Gateway::start(&tls_config(tls));
    let out = s_client(&g, &["-tls1_2", "-CAfile", ca.files.cert()]);
    assert!(out.contains("Protocol  : TLSv1.2"), "{out}");
    assert!(out.contains("ECDHE-RSA-AES"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let (code, err) = curl(
        &g,
        &["--cacert", ca.files.cert(), "--tlsv1.2", "--tls-max", "1.2"],
    );
    assert_eq!(code, "200", "{err}");
    let (code, err) = curl(&g, &["--cacert", ca.files.cert(), "--tlsv1.3"]);
    assert_eq!(code, "200", "{err}");
}

#[test]
fn cipher_suites_limit_tls12_to_the_listed_suite() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let mut tls = pair(&leaf);
    tls["min_version"] = json!("TLS12");
    tls["max_version"] = json!("TLS12");
    // 0xcca9: ECDHE-ECDSA-CHACHA20-POLY1305.
    tls["cipher_suites"] = json!([52393]);
    let g = Gateway::start(&tls_config(tls));
    let out = s_client(&g, &["-tls1_2"]);
    assert!(out.contains("ECDHE-ECDSA-CHACHA20-POLY1305"), "{out}");
    let out = s_client(&g, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(!handshaken(&out), "{out}");
}

#[test]
fn python_ssl_keeps_the_connection_alive_across_pipelined_requests() {
    let pki = Pki::new();
    let ca = pki.ca("py CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let g = Gateway::start(&tls_config(pair(&leaf)));
    // Two requests in one TLS record, then a third on the same connection after a pause.
    let script = format!(
        r#"
import socket, ssl, time
ctx = ssl.create_default_context(cafile={ca:?})
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
req = b"GET /__health HTTP/1.1\r\nHost: localhost\r\n\r\n"
s.sendall(req + req)
data = b""
while data.count(b"HTTP/1.1 200") < 2:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
time.sleep(0.7)
s.sendall(req)
more = s.recv(65536)
print(s.version(), data.count(b"HTTP/1.1 200"), more.count(b"HTTP/1.1 200"))
"#,
        ca = ca.files.cert(),
        port = g.addr().port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "TLSv1.3 2 1",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.output()
    );
}

#[test]
fn plain_http_to_the_tls_port_gets_gos_400_answer() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let g = Gateway::start(&tls_config(pair(&leaf)));
    let got = raw(g.addr(), b"GET /__health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
}

/// Send `bytes`, then read until the gateway closes (true) or 5 s pass (false).
fn closed_after(g: &Gateway, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(g.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
    }
}

#[test]
fn garbage_and_oversized_records_close_the_connection_and_the_listener_keeps_serving() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let g = Gateway::start(&tls_config(pair(&leaf)));
    // Not a TLS record at all.
    assert!(closed_after(
        &g,
        b"\x00\x01garbage garbage garbage garbage\r\n\r\n"
    ));
    // A handshake record header announcing 65,535 bytes (over 16 KiB + 256), then a flood.
    let mut big = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    big.extend(std::iter::repeat_n(0x41u8, 70_000));
    assert!(closed_after(&g, &big));
    // An application-data record before any handshake.
    assert!(closed_after(
        &g,
        &[0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]
    ));
    let (code, _) = curl(&g, &["-k"]);
    assert_eq!(code, "200", "{}", g.output());
    assert!(
        g.output().contains("TLS handshake error from 127.0.0.1"),
        "{}",
        g.output()
    );
}

#[test]
fn a_stalled_handshake_is_closed_at_the_read_header_timeout() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let mut cfg = service(vec![]);
    cfg["tls"] = pair(&leaf);
    cfg["read_header_timeout"] = json!("1s");
    let g = Gateway::start(&cfg.to_string());
    let start = Instant::now();
    // The start of a record header, then nothing.
    assert!(closed_after(&g, &[0x16, 0x03, 0x01, 0x00, 0x80, 0x01]));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn sni_picks_the_matching_certificate_from_keys() {
    let pki = Pki::new();
    let ca = pki.ca("sni CA");
    let a = pki.leaf(&ca, Leaf::server(&["a.test"]));
    let b = pki.leaf(&ca, Leaf::server(&["b.test"]));
    let g = Gateway::start(&tls_config(json!({"keys": [pair(&a), pair(&b)]})));
    let out = s_client(
        &g,
        &[
            "-servername",
            "b.test",
            "-CAfile",
            ca.files.cert(),
            "-verify_hostname",
            "b.test",
        ],
    );
    assert!(
        out.contains("CN = b.test") || out.contains("CN=b.test"),
        "{out}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let out = s_client(&g, &["-servername", "a.test"]);
    assert!(
        out.contains("CN = a.test") || out.contains("CN=a.test"),
        "{out}"
    );
    // No SNI (or an unknown name): the first one.
    let out = s_client(&g, &["-noservername"]);
    assert!(
        out.contains("CN = a.test") || out.contains("CN=a.test"),
        "{out}"
    );
}

#[test]
fn mtls_accepts_a_client_certificate_from_ca_certs_and_refuses_others_with_the_reason_logged() {
    let pki = Pki::new();
    let ca = pki.ca("server CA");
    let client_ca = pki.ca("client CA");
    let other_ca = pki.ca("other CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let good = pki.leaf(
        &client_ca,
        Leaf {
            client: true,
            ..Leaf::server(&["client.test"])
        },
    );
    let bad = pki.leaf(
        &other_ca,
        Leaf {
            client: true,
            ..Leaf::server(&["client.test"])
        },
    );
    let mut tls = pair(&leaf);
    tls["enable_mtls"] = json!(true);
    tls["ca_certs"] = json!([client_ca.files.cert()]);
    let g = Gateway::start(&tls_config(tls));
    let ca_arg = ["--cacert", ca.files.cert()];
    let (code, err) = curl(
        &g,
        &[&ca_arg[..], &["--cert", good.cert(), "--key", good.key()]].concat(),
    );
    assert_eq!(code, "200", "{err}\n{}", g.output());
    let (code, _) = curl(&g, &ca_arg);
    assert_eq!(code, "000");
    let (code, _) = curl(
        &g,
        &[&ca_arg[..], &["--cert", bad.cert(), "--key", bad.key()]].concat(),
    );
    assert_eq!(code, "000");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !g.output().contains("UnknownIssuer") {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = g.output();
    assert!(out.contains("TLS handshake error from 127.0.0.1"), "{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");
    assert!(
        out.contains("NoCertificatesPresented") || out.contains("certificate"),
        "{out}"
    );
}

#[test]
fn openssl_sessions_are_resumed_with_tls13_tickets_and_tls12_sessions() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let mut tls = pair(&leaf);
    tls["min_version"] = json!("TLS12");
    let g = Gateway::start(&tls_config(tls));
    for version in ["-tls1_3", "-tls1_2"] {
        let sess = pki.path(&format!("sess{version}"));
        let sess = sess.to_str().unwrap();
        let first = s_client(&g, &[version, "-sess_out", sess]);
        assert!(first.contains("New, TLSv1."), "{first}");
        let again = s_client(&g, &[version, "-sess_in", sess]);
        assert!(again.contains("Reused, TLSv1."), "{version}: {again}");
    }
}

#[test]
fn a_tls_block_without_keys_refuses_to_start_with_a_non_zero_exit() {
    let cfg = tls_config(json!({"min_version": "TLS12"}));
    let (code, _, err) = run_cli(&["check", "-c", &write_temp(&cfg)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("public key not defined"), "{err}");
    let r = Gateway::try_start_with(&cfg, &[], &[]);
    assert!(r.is_err());
}

fn write_temp(cfg: &str) -> String {
    let p = common::gateway::temp_config_path();
    std::fs::write(&p, cfg).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn check_names_the_file_and_the_position_of_a_missing_expired_or_mismatched_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("check CA");
    let good = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let other = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let expired = pki.leaf(
        &ca,
        Leaf {
            expired: true,
            ..Leaf::server(&["localhost"])
        },
    );
    let cases = [
        (
            json!({"public_key": "/nonexistent/cert.pem", "private_key": good.key()}),
            "No such file",
        ),
        (pair(&expired), "expired"),
        (
            json!({"public_key": good.cert(), "private_key": other.key()}),
            "does not match",
        ),
    ];
    for (tls, want) in cases {
        let text = format!("{{\n  \"version\": 3,\n  \"tls\": {tls},\n  \"endpoints\": []\n}}");
        let path = write_temp(&text);
        let (code, _, err) = run_cli(&["check", "-c", &path]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("{path}:3:")), "{err}");
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// The subject CN the gateway presents now.
fn presented_cn(g: &Gateway) -> String {
    let out = s_client(g, &["-servername", "localhost"]);
    out.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

#[test]
fn sighup_serves_new_certificates_to_new_connections_and_keeps_the_old_ones_on_a_bad_reload() {
    let pki = Pki::new();
    let ca = pki.ca("reload CA");
    let first = pki.leaf(&ca, Leaf::server(&["first.test"]));
    let second = pki.leaf(&ca, Leaf::server(&["second.test"]));
    let g = Gateway::start(&tls_config(pair(&first)));
    assert!(presented_cn(&g).contains("first.test"));
    // An open connection started before the reload keeps working after it.
    let mut open = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", g.addr().port()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    g.reload(&tls_config(pair(&second)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !presented_cn(&g).contains("second.test") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(presented_cn(&g).contains("second.test"), "{}", g.output());

    let stdin = open.stdin.as_mut().unwrap();
    stdin
        .write_all(b"GET /__health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = open.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 200"));

    // An expired certificate is refused on reload: the second one keeps serving.
    let expired = pki.leaf(
        &ca,
        Leaf {
            expired: true,
            ..Leaf::server(&["third.test"])
        },
    );
    g.reload(&tls_config(pair(&expired)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !g.output().contains("reload rejected") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(g.output().contains("expired"), "{}", g.output());
    assert!(presented_cn(&g).contains("second.test"));
}

#[test]
fn security_http_sees_requests_on_the_tls_listener_as_https() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let mut cfg = service(vec![]);
    cfg["tls"] = pair(&leaf);
    cfg["extra_config"] = json!({"security/http": {"ssl_redirect": true, "sts_seconds": 60}});
    let g = Gateway::start(&cfg.to_string());
    let url = format!("https://localhost:{}/__health", g.addr().port());
    let out = Command::new("curl")
        .args(["-sS", "-k", "-i", "--max-time", "10", "--resolve"])
        .arg(format!("localhost:{}:127.0.0.1", g.addr().port()))
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // No redirect loop to https: the request is HTTPS already; HSTS is sent over it.
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=60"),
        "{text}"
    );
}

#[test]
fn a_ticket_from_one_core_resumes_on_every_core_and_across_a_reload() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let cfg = tls_config(pair(&leaf));
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, &cfg).unwrap();
    let mut cmd = Command::new(common::gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", "2", "-p", "0"]);
    let g = Gateway::spawn(cmd, path).unwrap();
    let sess = pki.path("sess");
    let sess = sess.to_str().unwrap();
    let first = s_client(&g, &["-sess_out", sess]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    // Each connection lands on a core by its 4-tuple hash: with two cores, eight
    // connections all resuming means the ticket key is the process's, not a core's.
    for i in 0..8 {
        if i == 4 {
            g.reload(&cfg);
            std::thread::sleep(Duration::from_millis(300));
        }
        let again = s_client(&g, &["-sess_in", sess]);
        assert!(again.contains("Reused, TLSv1.3"), "connection {i}: {again}");
    }
}

#[test]
fn a_renegotiation_attempt_is_refused_and_the_listener_keeps_serving() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    let mut tls = pair(&leaf);
    tls["min_version"] = json!("TLS12");
    let g = Gateway::start(&tls_config(tls));
    // Interactive s_client: a line "R" asks for a TLS 1.2 renegotiation.
    let mut child = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-tls1_2", "-connect"])
        .arg(format!("127.0.0.1:{}", g.addr().port()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"GET /__health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"R\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let _ = stdin.write_all(b"GET /__health HTTP/1.1\r\nHost: x\r\n\r\n");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RENEGOTIATING"), "{err}");
    // One answer (before the attempt), none after it: the connection did not renegotiate.
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
    assert!(start.elapsed() < Duration::from_secs(8));
    let (code, _) = curl(&g, &["-k"]);
    assert_eq!(code, "200", "{}", g.output());
    assert!(
        g.output().contains("renegotiation refused"),
        "{}",
        g.output()
    );
}

#[test]
fn megabytes_go_both_ways_through_the_tls_listener_intact() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Ecdsa);
    // 3 MB of varied bytes back (no-op: relayed as it arrives), 2 MB up.
    let down: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let down2 = down.clone();
    let b = Backend::start(move |_| Reply::status(200).body(down2.clone()));
    let mut cfg = service(vec![
        json!({"endpoint": "/down", "output_encoding": "no-op",
               "backend": [{"host": [b.url()], "url_pattern": "/d", "encoding": "no-op"}]}),
        json!({"endpoint": "/up", "method": "POST", "output_encoding": "no-op",
               "backend": [{"host": [b.url()], "url_pattern": "/u", "encoding": "no-op"}]}),
    ]);
    cfg["tls"] = pair(&leaf);
    let g = Gateway::start(&cfg.to_string());
    let got = pki.path("down.bin");
    let url = |p: &str| format!("https://localhost:{}{p}", g.addr().port());
    let resolve = format!("localhost:{}:127.0.0.1", g.addr().port());
    let st = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "30", "--resolve", &resolve, "-o"])
        .arg(&got)
        .arg(url("/down"))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&got).unwrap() == down, "download differs");
    let up: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let upfile = pki.path("up.bin");
    std::fs::write(&upfile, &up).unwrap();
    let st = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "30",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", upfile.display()))
        .arg(url("/up"))
        .status()
        .unwrap();
    assert!(st.success());
    let posted = b.requests().into_iter().find(|r| r.path == "/u").unwrap();
    assert!(
        posted.body == up,
        "upload differs ({} bytes)",
        posted.body.len()
    );
}
