//! `http_response.new` in Lua scripts (krakend-lua `decorator/http.go`): a script makes an HTTP
//! call and reads its status, headers and body, at every hook; a failed call is a script error
//! that `pcall` can catch; and a script waiting on its call does not hold up its core: other
//! requests are answered meanwhile, and two waiting runs of one script keep their own globals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, backend_with, endpoint, service};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The service a script calls: it answers what it received, after `?delay=MS`.
fn side() -> Backend {
    Backend::start(|r: &Recorded| {
        let delay = r
            .query_pairs()
            .iter()
            .find(|(k, _)| k == "delay")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(0);
        Reply::json(
            &json!({"method": r.method, "path": r.path, "body": String::from_utf8_lossy(&r.body)})
                .to_string(),
        )
        .header("X-Multi", "one")
        .header("X-Multi", "two")
        .delay(Duration::from_millis(delay))
    })
}

fn gateway(endpoints: Vec<Value>) -> Gateway {
    let mut cfg = service(endpoints);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    Gateway::start(&cfg.to_string())
}

/// `/x` on `main` (`/data`), with `ns` as the endpoint's extra_config.
fn scripted(main: &Backend, ns: Value) -> Value {
    let mut e = endpoint("/x", "GET", vec![backend(&main.url(), "/data")]);
    e["extra_config"] = ns;
    e["input_headers"] = json!(["*"]);
    e
}

#[test]
fn a_proxy_script_reads_the_status_headers_and_body_of_its_http_call() {
    let main = Backend::json(r#"{"own": true}"#);
    let side = side();
    let post = format!(
        r#"
local r = http_response.new("{}/info?q=1", "POST", "hello", {{["x-one"] = "1", ["X-Many"] = {{"a", "b"}}}})
local d = response.load():data()
d:set("status", r:statusCode())
d:set("type", r:headers("content-type"))
d:set("multi", r:headerList("x-multi"):len())
d:set("second", r:headerList("X-Multi"):get(1))
d:set("body", r:body())
r:close()
local ok, err = pcall(function() return r:body() end)
d:set("after_close", ok)
"#,
        side.url()
    );
    let g = gateway(vec![scripted(
        &main,
        json!({"modifier/lua-proxy": {"post": post}}),
    )]);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["own"], true);
    assert_eq!(j["status"], 200);
    assert_eq!(j["type"], "application/json");
    assert_eq!(j["multi"], 2);
    assert_eq!(j["second"], "two");
    assert_eq!(j["after_close"], false);
    let body: Value = serde_json::from_str(j["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body"], "hello");
    let seen = side.last_request();
    assert_eq!(seen.path, "/info");
    assert_eq!(seen.query_pairs(), vec![("q".into(), "1".into())]);
    assert_eq!(seen.header("X-One"), Some("1"));
    assert_eq!(seen.header_all("X-Many"), vec!["a", "b"]);
    assert!(
        seen.header("User-Agent")
            .is_some_and(|u| u.starts_with("KrakenD Version")),
        "{:?}",
        seen.header("User-Agent")
    );
}

#[test]
fn endpoint_and_backend_scripts_can_call_out_before_the_backend_is_called() {
    let main = Backend::start(|r: &Recorded| {
        Reply::json(
            &json!({"auth": r.header("Authorization"), "tag": r.header("X-Tag")}).to_string(),
        )
    });
    let token = Backend::start(|_| Reply::text("secret-token"));
    let mut e = endpoint(
        "/x",
        "GET",
        vec![backend_with(
            &main.url(),
            "/data",
            json!({"extra_config": {"modifier/lua-backend": {"pre": format!(
                r#"local t = http_response.new("{}/token"):body()
            request.load():headers("Authorization", "Bearer " .. t)"#,
                token.url()
            )}}}),
        )],
    );
    e["extra_config"] = json!({"modifier/lua-endpoint": {"pre": format!(
        r#"local c = ctx.load()
    c:headers("X-Tag", tostring(http_response.new("{}/token"):statusCode()))"#,
        token.url()
    )}});
    e["input_headers"] = json!(["X-Tag"]);
    let g = gateway(vec![e]);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["auth"], "Bearer secret-token");
    assert_eq!(r.json()["tag"], "200");
    assert_eq!(token.requests().len(), 2);
}

#[test]
fn a_failed_call_is_a_script_error_that_pcall_catches() {
    let main = Backend::json(r#"{"own": true}"#);
    // A port nothing listens on: bind one, note it, close it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let caught = format!(
        r#"local ok, err = pcall(http_response.new, "http://{dead}/")
response.load():data():set("caught", err)
local ok2, err2 = pcall(http_response.new, "ftp://x/", "GET", "")
response.load():data():set("scheme", err2)"#
    );
    let mut uncaught = scripted(
        &main,
        json!({"modifier/lua-proxy": {"post": format!(r#"http_response.new("http://{dead}/")"#)}}),
    );
    uncaught["endpoint"] = json!("/raw");
    let g = gateway(vec![
        scripted(&main, json!({"modifier/lua-proxy": {"post": caught}})),
        uncaught,
    ]);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    let caught = r.json()["caught"].as_str().unwrap().to_string();
    assert!(
        caught.contains(&format!("Get \"http://{dead}/\"")),
        "{caught}"
    );
    assert!(
        caught.to_lowercase().contains("connection refused"),
        "{caught}"
    );
    assert!(
        r.json()["scheme"]
            .as_str()
            .unwrap()
            .contains("unsupported protocol scheme"),
        "{}",
        r.text()
    );
    let r = get(&g.url("/raw"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().to_lowercase().contains("connection refused"),
        "{}",
        r.text()
    );
}

#[test]
fn a_script_waiting_on_its_call_does_not_hold_up_its_core() {
    let main = Backend::json(r#"{"own": true}"#);
    let side = side();
    let slow = scripted(
        &main,
        json!({"modifier/lua-proxy": {"pre": format!(
            r#"http_response.new("{}/slow?delay=1500")"#,
            side.url()
        )}}),
    );
    let mut fast = endpoint("/fast", "GET", vec![backend(&main.url(), "/data")]);
    fast["extra_config"] = json!({});
    // One core: the waiting script and the other requests share it.
    let g = gateway(vec![slow, fast]);
    let url = g.url("/x");
    let waiting = std::thread::spawn(move || {
        let start = Instant::now();
        (get(&url).status, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(&g.url("/fast")).status, 200);
    }
    let fast_took = start.elapsed();
    let (status, slow_took) = waiting.join().unwrap();
    assert_eq!(status, 200);
    assert!(slow_took >= Duration::from_millis(1400), "{slow_took:?}");
    assert!(
        fast_took < Duration::from_millis(1000),
        "other requests waited on the script's call: {fast_took:?}"
    );
}

#[test]
fn two_waiting_runs_of_one_script_keep_their_own_globals() {
    let main = Backend::json(r#"{"own": true}"#);
    let side = side();
    // `who` is a global: each run must read back its own after the call, though the other
    // run set its own `who` meanwhile.
    let post = format!(
        r#"who = request.load():headers("X-Who")
http_response.new("{}/wait?delay=" .. request.load():headers("X-Delay"))
response.load():data():set("who", who)"#,
        side.url()
    );
    let g = gateway(vec![scripted(
        &main,
        json!({"modifier/lua-proxy": {"post": post}}),
    )]);
    let first = {
        let url = g.url("/x");
        std::thread::spawn(move || {
            request("GET", &url, &[("X-Who", "first"), ("X-Delay", "800")], b"")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let second = request(
        "GET",
        &g.url("/x"),
        &[("X-Who", "second"), ("X-Delay", "0")],
        b"",
    );
    let first = first.join().unwrap();
    assert_eq!(second.json()["who"], "second", "{}", second.text());
    assert_eq!(first.json()["who"], "first", "{}", first.text());
}

#[test]
fn calls_work_from_a_scripts_own_coroutines_and_under_the_budget() {
    let main = Backend::json(r#"{"own": true}"#);
    let side = side();
    let post = format!(
        r#"local co = coroutine.wrap(function()
  coroutine.yield("own yield")
  return http_response.new("{0}/a"):statusCode()
end)
local d = response.load():data()
d:set("first", co())
d:set("second", co())
local c2 = coroutine.create(function() return http_response.new("{0}/b"):statusCode() end)
local ok, s = coroutine.resume(c2)
d:set("resumed", s)"#,
        side.url()
    );
    let mut spin = scripted(
        &main,
        json!({"modifier/lua-proxy": {"post": format!(
            r#"http_response.new("{}/c")
        while true do end"#,
            side.url()
        )}}),
    );
    spin["endpoint"] = json!("/spin");
    let g = gateway(vec![
        scripted(&main, json!({"modifier/lua-proxy": {"post": post}})),
        spin,
    ]);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["first"], "own yield");
    assert_eq!(r.json()["second"], 200);
    assert_eq!(r.json()["resumed"], 200);
    let r = get(&g.url("/spin"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("instruction budget"), "{}", r.text());
}

#[test]
fn an_answer_larger_than_the_scripts_memory_limit_stops_it() {
    let main = Backend::json(r#"{"own": true}"#);
    let big = Backend::start(|_| Reply::text(&"x".repeat(300_000)));
    let g = gateway(vec![scripted(
        &main,
        json!({"modifier/lua-proxy": {
            "max_memory": 131072,
            "post": format!(r#"http_response.new("{}/big")"#, big.url())
        }}),
    )]);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("memory"), "{}", r.text());
}
