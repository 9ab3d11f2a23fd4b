//! `modifier/lua-endpoint`, `modifier/lua-proxy` and `modifier/lua-backend`: scripts written
//! for KrakenD run unchanged (the API as krakend-lua exposes it), a failing script answers a
//! status and never takes the gateway down, and a runaway or memory-hungry script is stopped
//! with a 500 while the same core keeps serving.
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
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A backend that answers what it received: method, path, query, headers and body.
fn echo() -> Backend {
    Backend::start(|r: &Recorded| {
        let headers: serde_json::Map<String, Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        Reply::json(
            &json!({
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "headers": headers,
                "body": String::from_utf8_lossy(&r.body),
                "list": [1, 2, 3],
                "obj": {"a": 1, "b": "two"},
            })
            .to_string(),
        )
    })
}

/// A Lua source file with this text, in a fresh folder.
fn source(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "proxy-lua-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One endpoint `/x` on backend `b` (`/echo`), with `backend_ns` on the backend and
/// `endpoint_ns` on the endpoint, error messages returned.
fn gateway_with(b: &Backend, endpoint_ns: Value, backend_ns: Value) -> Gateway {
    let mut cfg = service(vec![endpoint(
        "/x/{id}",
        "POST",
        vec![backend_with(
            &b.url(),
            "/echo/{id}",
            json!({"extra_config": backend_ns}),
        )],
    )]);
    cfg["endpoints"][0]["extra_config"] = endpoint_ns;
    cfg["endpoints"][0]["input_headers"] = json!(["*"]);
    cfg["endpoints"][0]["input_query_strings"] = json!(["*"]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    Gateway::start(&cfg.to_string())
}

fn post(g: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    request("POST", &g.url(path), headers, body.as_bytes())
}

#[test]
fn a_backend_script_changes_the_url_method_headers_and_body_the_backend_receives() {
    let b = echo();
    let pre = r#"
        local r = request.load()
        assert(r:method() == "POST", "method " .. r:method())
        assert(r:path() == "/echo/7", "path " .. r:path())
        assert(r:params("Id") == "7", "param Id")
        assert(r:params("id") == "7", "param id")
        assert(r:headers("x-in") == "a", "header")
        assert(r:headerList("X-In"):len() == 1, "headerList")
        assert(r:body() == "hello", "body " .. r:body())
        r:url(r:url() .. "/more?z=1")
        r:method("PUT")
        r:headers("X-Added", "yes")
        r:headers("X-In", nil)
        local l = luaList.new()
        l:set(0, "one")
        l:set(1, "two")
        r:headerList("X-Many", l)
        r:body(r:body() .. " world")
    "#;
    let g = gateway_with(&b, json!({}), json!({"modifier/lua-backend": {"pre": pre}}));
    let r = post(&g, "/x/7", &[("X-In", "a")], "hello");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = b.last_request();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path, "/echo/7/more");
    assert_eq!(seen.query, "z=1");
    assert_eq!(seen.header("x-added"), Some("yes"));
    assert_eq!(seen.header("x-in"), None);
    assert_eq!(seen.header_all("x-many"), ["one", "two"]);
    assert_eq!(seen.body, b"hello world");
}

#[test]
fn a_backend_post_script_reshapes_the_data_through_lua_table_and_lua_list() {
    let b = echo();
    let post_code = r#"
        local resp = response.load()
        assert(resp:isComplete(), "complete")
        assert(resp:statusCode() == 200, "status")
        local d = resp:data()
        assert(d:keyExists("obj") and not d:keyExists("nope"), "keyExists")
        local obj = d:get("obj")
        obj:set("c", true)
        obj:del("a")
        local list = d:get("list")
        list:set(3, 4)
        list:del(0)
        d:set("sum", list:get(0) + list:get(1) + list:get(2))
        d:set("n", list:len())
        d:set("native", {x = 1, y = {"p", "q"}})
        local keys = obj:keys()
        d:set("keys", keys)
        d:set("first", keys:get(0))
        for _, k in ipairs({"method", "path", "query", "headers", "body"}) do d:del(k) end
    "#;
    let g = gateway_with(
        &b,
        json!({}),
        json!({"modifier/lua-backend": {"post": post_code}}),
    );
    let r = post(&g, "/x/1", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "list": [2, 3, 4],
            "obj": {"b": "two", "c": true},
            "sum": 9,
            "n": 3,
            "native": {"x": 1, "y": {"1": "p", "2": "q"}},
            "keys": ["b", "c"],
            "first": "b",
        })
    );
}

#[test]
fn a_proxy_script_changes_params_query_headers_and_body_then_the_response() {
    let b = echo();
    let pre = r#"
        local r = request.load()
        r:params("Id", "99")
        r:query("added=1&q=x")
        r:headers("X-Proxy", "p")
        r:body("from proxy")
    "#;
    let post_code = r#"
        local resp = response.load()
        local d = resp:data()
        d:set("seen_path", d:get("path"))
        resp:headers("X-Lua", "post")
        resp:isComplete(false)
    "#;
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {"pre": pre, "post": post_code}}),
        json!({}),
    );
    let r = post(&g, "/x/1?q=orig", &[], "client body");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = b.last_request();
    assert_eq!(seen.path, "/echo/99");
    assert_eq!(seen.query, "added=1&q=x");
    assert_eq!(seen.header("x-proxy"), Some("p"));
    assert_eq!(seen.body, b"from proxy");
    assert_eq!(r.json()["seen_path"], json!("/echo/99"));
    assert_eq!(r.header("x-lua"), Some("post"));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn custom_error_answers_its_status_message_and_content_type() {
    let b = echo();
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {
            "pre": "custom_error('{\"e\":1}', 409, 'application/json')"
        }}),
        json!({}),
    );
    let r = post(&g, "/x/1", &[], "");
    assert_eq!(r.status, 409);
    assert_eq!(r.text(), r#"{"e":1}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(b.requests().is_empty());
}

#[test]
fn a_script_error_is_a_500_with_its_message_and_the_gateway_keeps_serving() {
    let b = echo();
    let g = gateway_with(
        &b,
        json!({}),
        json!({"modifier/lua-backend": {"pre": "local x = nil; x.y = 1"}}),
    );
    for _ in 0..3 {
        let r = post(&g, "/x/1", &[], "");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("attempt to index"), "{}", r.text());
    }
    assert!(b.requests().is_empty());
}

#[test]
fn the_endpoint_hook_sees_ctx_and_its_changes_reach_the_backend() {
    let b = echo();
    let pre = r#"
        local c = ctx.load()
        assert(c:method() == "POST")
        assert(c:params("id") == "5", "param")
        assert(c:query("a") == "1", "query")
        assert(c:headers("X-In") == "v", "header")
        c:headers("X-From-Ctx", "yes")
        c:query("a", "2")
        c:params("id", "6")
        c:body("new body")
        if c:headers("X-Refuse") == "1" then custom_error("no", 403) end
    "#;
    let g = gateway_with(
        &b,
        json!({"modifier/lua-endpoint": {"pre": pre}}),
        json!({}),
    );
    let r = post(&g, "/x/5?a=1", &[("X-In", "v")], "old");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = b.last_request();
    assert_eq!(seen.path, "/echo/6");
    assert_eq!(seen.query, "a=2");
    assert_eq!(seen.header("x-from-ctx"), Some("yes"));
    assert_eq!(seen.body, b"new body");
    // KrakenD: the endpoint hook aborts with the error's status and no body.
    let r = post(&g, "/x/5?a=1", &[("X-In", "v"), ("X-Refuse", "1")], "");
    assert_eq!(r.status, 403);
    assert!(r.body.is_empty(), "{}", r.text());
}

#[test]
fn a_service_level_endpoint_hook_runs_on_every_route_and_fails_with_a_500() {
    let b = echo();
    let mut cfg = service(vec![endpoint("/a", "GET", vec![backend(&b.url(), "/a")])]);
    cfg["extra_config"] = json!({"modifier/lua-endpoint": {
        "pre": "if ctx.load():headers('X-Bad') ~= '' then custom_error('bad', 418) end"
    }});
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/a")).status, 200);
    let r = request("GET", &g.url("/a"), &[("X-Bad", "1")], b"");
    assert_eq!(r.status, 500, "service level always aborts with 500");
    let r = request("GET", &g.url("/nope"), &[("X-Bad", "1")], b"");
    assert_eq!(r.status, 500, "it runs before routing, 404s included");
    // KrakenD registers the health check before the middleware.
    let r = request("GET", &g.url("/__health"), &[("X-Bad", "1")], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn a_runaway_script_is_stopped_with_a_500_and_the_core_keeps_serving() {
    let b = echo();
    let mut cfg = service(vec![
        endpoint(
            "/loop",
            "GET",
            vec![backend_with(
                &b.url(),
                "/a",
                json!({"extra_config": {"modifier/lua-backend": {
                    "pre": "while true do end"
                }}}),
            )],
        ),
        endpoint(
            "/catch",
            "GET",
            vec![backend_with(
                &b.url(),
                "/a",
                json!({"extra_config": {"modifier/lua-backend": {
                    "pre": "while true do pcall(function() while true do end end) end"
                }}}),
            )],
        ),
        endpoint("/ok", "GET", vec![backend(&b.url(), "/ok")]),
    ]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    // One core: the runaway and the other requests share it.
    let g = Gateway::start(&cfg.to_string());
    let addr = g.addr();
    let others = std::thread::spawn(move || {
        (0..20)
            .map(|_| try_request("GET", &format!("http://{addr}/ok"), &[], b"").map(|r| r.status))
            .collect::<Vec<_>>()
    });
    for path in ["/loop", "/catch"] {
        let start = Instant::now();
        let r = get(&g.url(path));
        assert_eq!(r.status, 500, "{path}: {}", r.text());
        assert!(
            r.text().contains("instruction budget"),
            "{path}: {}",
            r.text()
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: {:?}",
            start.elapsed()
        );
    }
    for status in others.join().unwrap() {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(get(&g.url("/ok")).status, 200);
}

#[test]
fn a_memory_hungry_script_is_stopped_with_a_500_and_the_core_keeps_serving() {
    let b = echo();
    let mut cfg = service(vec![
        endpoint(
            "/hog",
            "GET",
            vec![backend_with(
                &b.url(),
                "/a",
                json!({"extra_config": {"modifier/lua-backend": {
                    "pre": "local t = {} local s = string.rep('x', 65536) \
                            for i = 1, 1e9 do t[i] = s .. i end",
                    "max_memory": 16777216
                }}}),
            )],
        ),
        endpoint("/ok", "GET", vec![backend(&b.url(), "/ok")]),
    ]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    let g = Gateway::start(&cfg.to_string());
    for _ in 0..3 {
        let r = get(&g.url("/hog"));
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("memory limit"), "{}", r.text());
        assert_eq!(get(&g.url("/ok")).status, 200);
    }
}

#[test]
fn globals_a_script_sets_do_not_leak_into_the_next_request() {
    let b = echo();
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {
            "pre": "counter = (counter or 0) + 1; custom_error(tostring(counter), 418)"
        }}),
        json!({}),
    );
    for _ in 0..3 {
        let r = post(&g, "/x/1", &[], "");
        assert_eq!((r.status, r.text()), (418, "1".to_string()));
    }
}

#[test]
fn without_open_libs_io_and_os_are_absent_and_the_shared_libraries_are_read_only() {
    let b = echo();
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {
            "pre": "local r = request.load(); r:headers('X-Io', type(io) .. type(os) .. type(require)); \
                    local ok = pcall(function() string.upper = nil end); \
                    r:headers('X-Ro', tostring(ok)); r:headers('X-Str', ('a'):upper())"
        }}),
        json!({}),
    );
    let r = post(&g, "/x/1", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = b.last_request();
    assert_eq!(seen.header("x-io"), Some("nilnilnil"));
    assert_eq!(seen.header("x-ro"), Some("false"));
    assert_eq!(seen.header("x-str"), Some("A"));
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {
            "allow_open_libs": true,
            "pre": "request.load():headers('X-Os', type(os.time()) .. type(os.exit))"
        }}),
        json!({}),
    );
    assert_eq!(post(&g, "/x/1", &[], "").status, 200);
    // os.exit would end the gateway, not the request: it is left out.
    assert_eq!(b.last_request().header("x-os"), Some("numbernil"));
}

#[test]
fn sources_define_functions_for_pre_and_skip_next_leaves_the_backend_alone() {
    let b = echo();
    let lib = source("lib.lua", "function shout(s) return string.upper(s) end\n");
    let g = gateway_with(
        &b,
        json!({}),
        json!({"modifier/lua-backend": {
            "sources": [lib],
            "pre": "local r = request.load(); r:headers('X-Shout', shout('hi'))",
            "post": "response.load():data():set('skipped', true)",
            "skip_next": true
        }}),
    );
    let r = post(&g, "/x/1", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"skipped": true}));
    assert!(b.requests().is_empty());
}

#[test]
fn live_sources_are_read_again_on_every_request() {
    let b = echo();
    let lib = source("live.lua", "function v() return 'one' end\n");
    let g = gateway_with(
        &b,
        json!({"modifier/lua-proxy": {
            "sources": [lib.clone()],
            "live": true,
            "pre": "custom_error(v(), 418)"
        }}),
        json!({}),
    );
    assert_eq!(post(&g, "/x/1", &[], "").text(), "one");
    std::fs::write(&lib, "function v() return 'two' end\n").unwrap();
    assert_eq!(post(&g, "/x/1", &[], "").text(), "two");
}

fn lua_config(ns: Value) -> String {
    let mut cfg = service(vec![endpoint(
        "/x",
        "GET",
        vec![backend("http://127.0.0.1:9", "/a")],
    )]);
    cfg["endpoints"][0]["extra_config"] = ns;
    cfg.to_string()
}

#[test]
fn a_syntax_error_in_a_source_is_a_check_error_with_file_and_line() {
    let bad = source("bad.lua", "function ok() end\nfunction broken(\n");
    let (code, out, err) = check(&lua_config(
        json!({"modifier/lua-proxy": {"sources": [bad.clone()], "pre": "ok()"}}),
    ));
    assert_ne!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains(&format!("{}:3:", bad.display()))
            || text.contains(&format!("{}:2:", bad.display())),
        "{text}"
    );
    let (code, out, err) = check(&lua_config(
        json!({"modifier/lua-proxy": {"pre": "if then"}}),
    ));
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("pre:1:"), "{out}{err}");
}

#[test]
fn a_missing_source_or_a_wrong_md5_refuses_the_config() {
    let (code, out, err) = check(&lua_config(
        json!({"modifier/lua-proxy": {"sources": ["/nonexistent/x.lua"]}}),
    ));
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("/nonexistent/x.lua"),
        "{out}{err}"
    );
    let f = source("sum.lua", "x = 1\n");
    let name = f.to_str().unwrap().to_string();
    let (code, out, err) = check(&lua_config(json!({"modifier/lua-proxy": {
        "sources": [name.clone()],
        "md5": {name.clone(): "00000000000000000000000000000000"}
    }})));
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("wrong checksum"),
        "{out}{err}"
    );
    // The right sum (of "x = 1\n") is accepted.
    let (code, out, err) = check(&lua_config(json!({"modifier/lua-proxy": {
        "sources": [name.clone()],
        "md5": {name: "3253b41059cac6e987c5a5e9233ea5d0"}
    }})));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn scripts_on_a_no_op_endpoint_change_the_request_and_the_whole_answer() {
    let b = echo();
    let mut be = backend_with(
        &b.url(),
        "/echo/{id}",
        json!({"encoding": "no-op", "extra_config": {"modifier/lua-backend": {
            "pre": "request.load():headers('X-Backend-Pre', 'b')"
        }}}),
    );
    be["method"] = json!("POST");
    let mut cfg = service(vec![endpoint("/x/{id}", "POST", vec![be])]);
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    cfg["endpoints"][0]["extra_config"] = json!({"modifier/lua-proxy": {
        "pre": "request.load():headers('X-Proxy-Pre', 'p')",
        "post": "local r = response.load(); r:statusCode(202); r:headers('X-Post', 'yes'); \
                 r:body('[' .. r:body() .. ']')"
    }});
    let g = Gateway::start(&cfg.to_string());
    let r = post(&g, "/x/3", &[], "");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("x-post"), Some("yes"));
    let body = r.json();
    assert_eq!(body[0]["path"], json!("/echo/3"));
    let seen = b.last_request();
    assert_eq!(seen.header("x-proxy-pre"), Some("p"));
    assert_eq!(seen.header("x-backend-pre"), Some("b"));
}

#[test]
fn data_a_script_builds_outside_the_lua_heap_counts_against_its_memory_limit() {
    let b = echo();
    let mut cfg = service(vec![
        endpoint(
            "/hoard",
            "GET",
            vec![backend_with(
                &b.url(),
                "/a",
                json!({"extra_config": {"modifier/lua-backend": {
                    "post": "local d = response.load():data() local s = string.rep('x', 4096) \
                             for i = 1, 1e6 do d:set('k' .. i, s) end",
                    "max_memory": 8388608
                }}}),
            )],
        ),
        endpoint(
            "/loop",
            "GET",
            vec![backend_with(
                &b.url(),
                "/a",
                json!({"extra_config": {"modifier/lua-backend": {
                    // A table that holds itself twice would render to 2^256 nodes.
                    "post": "local d = response.load():data() local t = luaTable.new() \
                             t:set('a', t) t:set('b', t) d:set('t', t)"
                }}}),
            )],
        ),
        endpoint("/ok", "GET", vec![backend(&b.url(), "/ok")]),
    ]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/hoard"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("memory limit"), "{}", r.text());
    let start = Instant::now();
    let r = get(&g.url("/loop"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(get(&g.url("/ok")).status, 200);
}
