//! Backend names are resolved at run time, off the event loops, and refreshed every
//! `dns_cache_ttl`; `sd: dns` backends take their hosts from DNS SRV records, with lura's
//! priority and weight rules. The gateway asks a DNS server of the test's own
//! ([`DnsServer`], through `PROXY_DNS_SERVER`), whose answers the test changes while the
//! gateway runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend_with, endpoint, service};
use common::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;

/// A backend answering `{"from": name}` and recording what it got.
fn named(name: &'static str) -> Backend {
    Backend::start(move |_| Reply::json(&format!(r#"{{"from":"{name}"}}"#)))
}

fn named_on(addr: &str, name: &'static str) -> Backend {
    Backend::start_on(addr, move |_| {
        Reply::json(&format!(r#"{{"from":"{name}"}}"#))
    })
}

/// A gateway on `cfg` that asks `dns` for every name.
fn gateway(cfg: &Value, dns: &DnsServer) -> Gateway {
    let (k, v) = dns.env();
    Gateway::start_with(&cfg.to_string(), &[], &[(k, v.as_str())])
}

fn from(r: &Response) -> String {
    r.json()["from"].as_str().unwrap_or_default().to_string()
}

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[test]
fn a_config_whose_host_does_not_resolve_starts_and_fails_only_that_backend() {
    let dns = DnsServer::start();
    let good = named("good");
    let cfg = service(vec![
        endpoint(
            "/both",
            "GET",
            vec![
                backend_with(&good.url(), "/g", json!({})),
                backend_with("http://missing.test:8080", "/m", json!({})),
            ],
        ),
        endpoint(
            "/missing",
            "GET",
            vec![backend_with("http://missing.test:8080", "/m", json!({}))],
        ),
    ]);
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/both"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"from": "good"}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    let r = get(&g.url("/missing"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        dns.questions("missing.test", 1) > 0,
        "the name was never asked"
    );
}

#[test]
fn a_host_name_follows_dns_changes_without_a_reload() {
    let dns = DnsServer::start();
    let a = named("a");
    let port = a.addr().port();
    // The same port on another loopback address: only the DNS answer tells them apart.
    let b = named_on(&format!("127.0.0.2:{port}"), "b");
    dns.set("svc.test", vec![Rec::A(LOCAL)]);
    let mut cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            &format!("http://svc.test:{port}"),
            "/",
            json!({}),
        )],
    )]);
    cfg["dns_cache_ttl"] = json!("1s");
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/e"));
    assert_eq!((r.status, from(&r)), (200, "a".to_string()), "{}", r.text());
    assert_eq!(
        a.last_request().header("host"),
        Some(format!("svc.test:{port}").as_str())
    );
    dns.set("svc.test", vec![Rec::A(Ipv4Addr::new(127, 0, 0, 2))]);
    let moved = wait_until(Duration::from_secs(6), || from(&get(&g.url("/e"))) == "b");
    assert!(
        moved,
        "the new address was not used after the refresh interval"
    );
    assert!(!b.requests().is_empty());
}

#[test]
fn every_address_of_a_name_is_tried_before_failing() {
    let dns = DnsServer::start();
    let a = named("a");
    let port = a.addr().port();
    // Nothing listens on 127.0.0.3: that address refuses, the next one answers.
    dns.set(
        "svc.test",
        vec![Rec::A(Ipv4Addr::new(127, 0, 0, 3)), Rec::A(LOCAL)],
    );
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            &format!("http://svc.test:{port}"),
            "/",
            json!({}),
        )],
    )]);
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/e"));
    assert_eq!((r.status, from(&r)), (200, "a".to_string()), "{}", r.text());
}

#[test]
fn the_first_request_waits_for_the_first_lookup() {
    let dns = DnsServer::start();
    let a = named("a");
    dns.set("slow.test", vec![Rec::A(LOCAL)]);
    // Every answer takes 600 ms: the gateway is listening long before the first arrives.
    dns.set_delay(Duration::from_millis(600));
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            &format!("http://slow.test:{}", a.addr().port()),
            "/",
            json!({}),
        )],
    )]);
    let g = gateway(&cfg, &dns);
    let t0 = std::time::Instant::now();
    let r = get(&g.url("/e"));
    eprintln!("first request answered after {:?}", t0.elapsed());
    assert_eq!((r.status, from(&r)), (200, "a".to_string()), "{}", r.text());
}

/// An `sd: dns` backend on `name`, with the host written bare as KrakenD's docs do.
fn srv_backend(name: &str) -> Value {
    backend_with(
        name,
        "/",
        json!({"sd": "dns", "disable_host_sanitize": true}),
    )
}

#[test]
fn srv_weights_spread_requests_as_krakend_does() {
    let dns = DnsServer::start();
    let a = named("a");
    let b = named("b");
    dns.set(
        "_api._tcp.svc.test",
        vec![
            Rec::srv(10, 10, b.addr().port(), "b.svc.test."),
            Rec::srv(10, 30, a.addr().port(), "a.svc.test."),
        ],
    );
    dns.set("a.svc.test", vec![Rec::A(LOCAL)]);
    dns.set("b.svc.test", vec![Rec::A(LOCAL)]);
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![srv_backend("_api._tcp.svc.test")],
    )]);
    let g = gateway(&cfg, &dns);
    for _ in 0..40 {
        let r = get(&g.url("/e"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // lura: weights 30 and 10 reduce to 3 and 1; one worker balances round robin over them.
    assert_eq!((a.requests().len(), b.requests().len()), (30, 10));
    // KrakenD: Go's SRV targets keep their trailing dot, and so does the Host header.
    assert_eq!(
        a.last_request().header("host"),
        Some(format!("a.svc.test.:{}", a.addr().port()).as_str())
    );
}

#[test]
fn only_the_lowest_srv_priority_gets_requests() {
    let dns = DnsServer::start();
    let main = named("main");
    let backup = named("backup");
    dns.set(
        "_api._tcp.svc.test",
        vec![
            Rec::srv(20, 100, backup.addr().port(), "backup.svc.test."),
            Rec::srv(10, 1, main.addr().port(), "main.svc.test."),
        ],
    );
    dns.set("main.svc.test", vec![Rec::A(LOCAL)]);
    dns.set("backup.svc.test", vec![Rec::A(LOCAL)]);
    // Written the sanitised way (`http://` added) it means the same.
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            "_api._tcp.svc.test",
            "/",
            json!({"sd": "dns"}),
        )],
    )]);
    let g = gateway(&cfg, &dns);
    for _ in 0..10 {
        let r = get(&g.url("/e"));
        assert_eq!(
            (r.status, from(&r)),
            (200, "main".to_string()),
            "{}",
            r.text()
        );
    }
    assert!(backup.requests().is_empty());
}

#[test]
fn a_changed_srv_answer_reaches_the_gateway_after_dns_cache_ttl() {
    let dns = DnsServer::start();
    let a = named("a");
    let b = named("b");
    dns.set(
        "_api._tcp.svc.test",
        vec![Rec::srv(0, 1, a.addr().port(), "a.svc.test.")],
    );
    dns.set("a.svc.test", vec![Rec::A(LOCAL)]);
    dns.set("b.svc.test", vec![Rec::A(LOCAL)]);
    let mut cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![srv_backend("_api._tcp.svc.test")],
    )]);
    cfg["dns_cache_ttl"] = json!("1s");
    let g = gateway(&cfg, &dns);
    assert_eq!(from(&get(&g.url("/e"))), "a");
    dns.set(
        "_api._tcp.svc.test",
        vec![Rec::srv(0, 1, b.addr().port(), "b.svc.test.")],
    );
    let moved = wait_until(Duration::from_secs(6), || from(&get(&g.url("/e"))) == "b");
    assert!(moved, "the new SRV answer was not used after dns_cache_ttl");
    // A failed refresh keeps the last good answer.
    dns.set("_api._tcp.svc.test", vec![]);
    std::thread::sleep(Duration::from_millis(2500));
    let r = get(&g.url("/e"));
    assert_eq!((r.status, from(&r)), (200, "b".to_string()), "{}", r.text());
}

#[test]
fn an_srv_name_that_does_not_resolve_fails_its_backend_with_a_500() {
    let dns = DnsServer::start();
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![srv_backend("_none._tcp.svc.test")],
    )]);
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(dns.questions("_none._tcp.svc.test", 33) > 0);
}

#[test]
fn check_warns_about_names_that_do_not_resolve_now_and_exits_zero() {
    let dns = DnsServer::start();
    dns.set("ok.test", vec![Rec::A(LOCAL)]);
    let cfg = service(vec![
        endpoint(
            "/a",
            "GET",
            vec![backend_with(
                "http://missing.test:8080",
                "/",
                json!({"host": ["http://ok.test:8080", "http://missing.test:8080"]}),
            )],
        ),
        endpoint("/b", "GET", vec![srv_backend("_none._tcp.svc.test")]),
    ]);
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    let (k, v) = dns.env();
    let out = check_file_env(&text, &[], &[(k, v.as_str())]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // Positions point at each backend's `host` list.
    let at = |nth: usize| {
        let (line, l) = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("\"host\": ["))
            .nth(nth)
            .unwrap();
        format!(
            "{}:{}:{}:",
            out.path.display(),
            line + 1,
            l.find('[').unwrap() + 1
        )
    };
    let want = format!(
        "{} $.endpoints[0].backend[0].host[1]: warning: host \"http://missing.test:8080\" does not resolve now",
        at(0)
    );
    assert!(out.stderr.contains(&want), "{want}\nin:\n{}", out.stderr);
    let want = format!(
        "{} $.endpoints[1].backend[0].host[0]: warning: DNS SRV name \"_none._tcp.svc.test\" does not resolve now",
        at(1)
    );
    assert!(out.stderr.contains(&want), "{want}\nin:\n{}", out.stderr);
    assert!(!out.stderr.contains("ok.test"), "{}", out.stderr);
    assert!(out.stdout.contains("Syntax OK!"));
}

#[test]
fn an_sd_dns_backend_with_an_https_sd_scheme_calls_the_srv_hosts_over_tls_by_their_names() {
    let pki = common::pki::Pki::new();
    let ca = pki.ca("srv CA");
    let leaf = pki.leaf(&ca, common::pki::Leaf::server(&["node1.svc.test"]));
    let tls = common::tls_backend::TlsBackend::start(&leaf, None, r#"{"from":"tls"}"#);
    let dns = DnsServer::start();
    dns.set(
        "_api._tcp.svc.test",
        vec![Rec::srv(10, 10, tls.port(), "node1.svc.test.")],
    );
    dns.set("node1.svc.test", vec![Rec::A(LOCAL)]);
    let mut cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            "_api._tcp.svc.test",
            "/",
            json!({"sd": "dns", "sd_scheme": "https"}),
        )],
    )]);
    cfg["client_tls"] = json!({"ca_certs": [ca.files.cert()]});
    let (code, _, stderr) = check(&cfg.to_string());
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("sd_scheme"), "{stderr}");
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), g.output());
    assert_eq!(from(&r), "tls");
    // The SRV target's name, without its trailing dot, is the SNI name verified.
    assert_eq!(
        tls.seen.lock().unwrap().sni,
        vec![Some("node1.svc.test".to_string())]
    );
}

#[test]
fn a_redirect_to_a_host_name_is_resolved_off_the_event_loop() {
    let dns = DnsServer::start();
    let target = named("target");
    dns.set("moved.test", vec![Rec::A(LOCAL)]);
    let loc = format!("http://moved.test:{}/new", target.addr().port());
    let first = Backend::start(move |_| Reply::status(302).header("Location", &loc));
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(&first.url(), "/old", json!({}))],
    )]);
    let g = gateway(&cfg, &dns);
    let r = get(&g.url("/e"));
    assert_eq!(
        (r.status, from(&r)),
        (200, "target".to_string()),
        "{}",
        r.text()
    );
    assert_eq!(target.last_request().path, "/new");
    assert!(dns.questions("moved.test", 1) > 0);
}

#[test]
fn check_warns_about_an_unknown_sd_and_extra_srv_hosts() {
    let dns = DnsServer::start();
    dns.set(
        "_api._tcp.svc.test",
        vec![Rec::srv(0, 1, 8080, "localhost.")],
    );
    let cfg = service(vec![
        endpoint(
            "/a",
            "GET",
            vec![backend_with(
                "http://127.0.0.1:8080",
                "/",
                json!({"sd": "consul"}),
            )],
        ),
        endpoint(
            "/b",
            "GET",
            vec![backend_with(
                "_api._tcp.svc.test",
                "/",
                json!({"sd": "dns", "host": ["_api._tcp.svc.test", "_other._tcp.svc.test"]}),
            )],
        ),
    ]);
    let (k, v) = dns.env();
    let out = check_file_env(&cfg.to_string(), &[], &[(k, v.as_str())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("$.endpoints[0].backend[0].sd: warning: unknown sd \"consul\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("$.endpoints[1].backend[0].sd: warning: with \"sd\": \"dns\" only the first host is looked up"),
        "{}",
        out.stderr
    );
    // The first SRV name resolves (its target is localhost): no lookup warning.
    assert!(!out.stderr.contains("does not resolve"), "{}", out.stderr);
}
