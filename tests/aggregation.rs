//! Endpoints with several backends (reference §4; lura `proxy/merging.go`): all backends are
//! called at once, their data is merged shallowly, a failing or slow backend gives a partial
//! 200 with `X-KrakenD-Completed: false`, all failing gives a 500, `return_error_details` turns a
//! failure into data, and every backend gets its own request built from the client's.
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
use std::time::{Duration, Instant};

/// A backend entry for `b` at `url_pattern`, with `extra` keys (an object) merged in.
fn be(b: &Backend, url_pattern: &str, extra: Value) -> Value {
    backend_with(&b.url(), url_pattern, extra)
}

/// A gateway with one `GET /e` endpoint over `backends`, after `tweak` on the endpoint.
fn start(backends: Vec<Value>, tweak: impl FnOnce(&mut Value)) -> Gateway {
    let mut ep = endpoint("/e", "GET", backends);
    tweak(&mut ep);
    Gateway::start(&service(vec![ep]).to_string())
}

/// A backend that answers `body` as JSON after `delay`.
fn slow_json(body: &'static str, delay: Duration) -> Backend {
    Backend::start(move |_| Reply::json(body).delay(delay))
}

#[test]
fn three_backends_are_called_concurrently() {
    let delay = Duration::from_millis(300);
    let a = slow_json(r#"{"a":1}"#, delay);
    let b = slow_json(r#"{"b":2}"#, delay);
    let c = slow_json(r#"{"c":3}"#, delay);
    let g = start(
        vec![
            be(&a, "/a", json!({})),
            be(&b, "/b", json!({})),
            be(&c, "/c", json!({})),
        ],
        |_| {},
    );
    let t0 = Instant::now();
    let r = get(&g.url("/e"));
    let took = t0.elapsed();
    eprintln!("3 x 300 ms backends answered in {took:?}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
    // One at a time would take at least 900 ms.
    assert!(took >= delay, "answered before the backends did: {took:?}");
    assert!(
        took < Duration::from_millis(750),
        "3 x 300 ms backends took {took:?}: not concurrent"
    );
    for x in [&a, &b, &c] {
        assert_eq!(x.requests().len(), 1);
    }
}

#[test]
fn merge_is_shallow_so_a_later_object_replaces_an_earlier_one_whole() {
    let a = Backend::json(r#"{"obj":{"x":1,"keep":true},"only_a":[1,2]}"#);
    let b = Backend::json(r#"{"obj":{"y":2},"only_b":"b"}"#);
    let g = start(
        vec![be(&a, "/a", json!({})), be(&b, "/b", json!({}))],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD (`combineData`): top-level keys only; nested objects are not deep-merged.
    assert_eq!(
        r.json(),
        json!({"obj": {"y": 2}, "only_a": [1, 2], "only_b": "b"})
    );
}

#[test]
fn a_key_collision_is_won_by_the_later_declared_backend_whatever_arrives_last() {
    let slow = Duration::from_millis(300);
    let first_slow = slow_json(r#"{"k":"first","from_first":1}"#, slow);
    let second_fast = Backend::json(r#"{"k":"second","from_second":2}"#);
    let first_fast = Backend::json(r#"{"k":"first","from_first":1}"#);
    let second_slow = slow_json(r#"{"k":"second","from_second":2}"#, slow);
    let g = Gateway::start(
        &service(vec![
            endpoint(
                "/slow-first",
                "GET",
                vec![
                    be(&first_slow, "/a", json!({})),
                    be(&second_fast, "/b", json!({})),
                ],
            ),
            endpoint(
                "/fast-first",
                "GET",
                vec![
                    be(&first_fast, "/a", json!({})),
                    be(&second_slow, "/b", json!({})),
                ],
            ),
        ])
        .to_string(),
    );
    // KrakenD merges in arrival order (the slowest wins); we merge in declaration order on
    // purpose so the same request always gives the same body. The later-declared backend
    // arrives first here, so arrival order would give "first".
    let r = get(&g.url("/slow-first"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"k": "second", "from_first": 1, "from_second": 2})
    );
    // And it is not "first arrival wins" either.
    let r = get(&g.url("/fast-first"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"k": "second", "from_first": 1, "from_second": 2})
    );
}

#[test]
fn a_backend_slower_than_the_timeout_gives_a_partial_answer_at_85_percent_of_it() {
    let fast = Backend::json(r#"{"fast":true}"#);
    let slow = slow_json(r#"{"slow":true}"#, Duration::from_secs(4));
    let g = start(
        vec![be(&fast, "/f", json!({})), be(&slow, "/s", json!({}))],
        |ep| {
            ep["timeout"] = json!("2s");
            ep["cache_ttl"] = json!("1h");
        },
    );
    let t0 = Instant::now();
    let r = get(&g.url("/e"));
    let took = t0.elapsed();
    eprintln!("partial answer with a 2 s timeout after {took:?}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"fast": true}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    // KrakenD: no Cache-Control on an incomplete answer (CE spec `timeout.json`).
    assert_eq!(r.header("cache-control"), None);
    // KrakenD: a merging endpoint gives its backends 85% of the endpoint timeout (1.7 s).
    assert!(
        took >= Duration::from_millis(1650),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1950),
        "waited past 85% of the 2 s timeout: {took:?}"
    );
}

#[test]
fn invalid_json_from_one_backend_gives_a_partial_answer() {
    let good = Backend::json(r#"{"good":1}"#);
    let bad = Backend::json(r#"{"bad":"#);
    let g = start(
        vec![be(&good, "/g", json!({})), be(&bad, "/b", json!({}))],
        |ep| ep["cache_ttl"] = json!("1h"),
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"good": 1}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn a_404_from_one_backend_gives_a_partial_answer_without_its_body() {
    let good = Backend::json(r#"{"good":1}"#);
    let missing = Backend::start(|_| {
        Reply::status(404)
            .header("Content-Type", "application/json")
            .body(r#"{"error":"not here"}"#)
    });
    let g = start(
        vec![be(&good, "/g", json!({})), be(&missing, "/m", json!({}))],
        |ep| ep["cache_ttl"] = json!("1h"),
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD: only 200/201 is success; the 404 body is not merged.
    assert_eq!(r.json(), json!({"good": 1}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn every_backend_failing_is_an_empty_500() {
    let broken = Backend::start(|_| Reply::status(500).body("boom"));
    let bad = Backend::json(r#"{"bad":"#);
    let g = start(
        vec![be(&broken, "/x", json!({})), be(&bad, "/y", json!({}))],
        |ep| ep["cache_ttl"] = json!("1h"),
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty(), "body {:?}", r.text());
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn every_backend_succeeding_is_completed_and_cacheable() {
    let a = Backend::json(r#"{"a":1}"#);
    let b = Backend::start(|_| {
        Reply::status(201)
            .header("Content-Type", "application/json")
            .body(r#"{"b":2}"#)
    });
    let g = start(
        vec![be(&a, "/a", json!({})), be(&b, "/b", json!({}))],
        |ep| ep["cache_ttl"] = json!("90s"),
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=90"));
}

#[test]
fn return_error_details_puts_the_failure_next_to_the_other_backends_data() {
    let ok = Backend::json(r#"{"foo":42}"#);
    let missing = Backend::start(|_| {
        Reply::status(404)
            .body("404 page not found\n")
            .header("Content-Type", "text/plain; charset=utf-8")
    });
    let g = start(
        vec![
            be(&ok, "/ok", json!({})),
            be(
                &missing,
                "/missing",
                json!({"extra_config": {"backend/http": {"return_error_details": "backend_b"}}}),
            ),
        ],
        |ep| ep["cache_ttl"] = json!("1h"),
    );
    let r = get(&g.url("/e"));
    // KrakenD: CE spec `detail_error.json`.
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({
            "foo": 42,
            "error_backend_b": {
                "http_status_code": 404,
                "http_body": "404 page not found\n",
                "http_body_encoding": "text/plain; charset=utf-8",
            }
        })
    );
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn return_error_details_on_a_succeeding_backend_adds_nothing() {
    let a = Backend::json(r#"{"a":1}"#);
    let b = Backend::json(r#"{"b":2}"#);
    let g = start(
        vec![
            be(&a, "/a", json!({})),
            be(
                &b,
                "/b",
                json!({"extra_config": {"backend/http": {"return_error_details": "b"}}}),
            ),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn each_backend_gets_its_own_path_query_and_headers_through_both_filters() {
    let one = Backend::json(r#"{"one":1}"#);
    let two = Backend::json(r#"{"two":2}"#);
    let g = Gateway::start(
        &service(vec![{
            let mut ep = endpoint(
                "/u/{id}",
                "GET",
                vec![
                    be(&one, "/one/{id}", json!({})),
                    be(
                        &two,
                        "/two/{id}/x?fixed=1",
                        json!({"input_query_strings": ["b"], "input_headers": ["X-Keep"]}),
                    ),
                ],
            );
            ep["input_query_strings"] = json!(["a", "b"]);
            ep["input_headers"] = json!(["X-Keep", "X-Other"]);
            ep
        }])
        .to_string(),
    );
    let r = request(
        "GET",
        &g.url("/u/7?b=2&a=1&c=3"),
        &[("X-Keep", "k"), ("X-Other", "o"), ("X-Drop", "d")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"one": 1, "two": 2}));

    let r1 = one.last_request();
    assert_eq!(r1.method, "GET");
    assert_eq!(r1.path, "/one/7");
    // KrakenD: the forwarded query is re-encoded with sorted keys (Go `url.Values.Encode`).
    assert_eq!(r1.query, "a=1&b=2");
    assert_eq!(r1.header("x-keep"), Some("k"));
    assert_eq!(r1.header("x-other"), Some("o"));
    assert_eq!(r1.header("x-drop"), None);
    assert_eq!(r1.header("x-forwarded-for"), Some("127.0.0.1"));

    let r2 = two.last_request();
    assert_eq!(r2.path, "/two/7/x");
    // The backend's own filter narrows the endpoint's; the literal query stays first.
    assert_eq!(r2.query, "fixed=1&b=2");
    assert_eq!(r2.header("x-keep"), Some("k"));
    assert_eq!(r2.header("x-other"), None);
    assert_eq!(r2.header("x-drop"), None);
    // KrakenD (`proxy/headers_filter.go`): the backend-level header filter also drops the
    // gateway's own X-Forwarded-For unless it is listed.
    assert_eq!(r2.header("x-forwarded-for"), None);
}

#[test]
fn a_post_body_reaches_every_backend() {
    let a = Backend::json(r#"{"a":1}"#);
    let b = Backend::json(r#"{"b":2}"#);
    let g = Gateway::start(
        &service(vec![endpoint(
            "/p",
            "POST",
            vec![be(&a, "/a", json!({})), be(&b, "/b", json!({}))],
        )])
        .to_string(),
    );
    let body = br#"{"name":"value"}"#;
    let r = request(
        "POST",
        &g.url("/p"),
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(r.status, 200);
    // KrakenD: with several non-GET backends the request body is cloned for each of them.
    for x in [&a, &b] {
        let rec = x.last_request();
        assert_eq!(rec.method, "POST");
        assert_eq!(rec.body, body);
    }
}

#[test]
fn bodies_that_do_not_decode_make_their_backend_fail() {
    let good = Backend::json(r#"{"good":1}"#);
    for (what, reply, extra) in [
        (
            "object for is_collection",
            Reply::json(r#"{"a":1}"#),
            json!({"is_collection": true}),
        ),
        ("array for json", Reply::json("[1,2]"), json!({})),
        ("empty 200 body", Reply::json(""), json!({})),
    ] {
        let bad = Backend::start(move |_| reply.clone());
        let g = start(
            vec![be(&good, "/g", json!({})), be(&bad, "/b", extra)],
            |_| {},
        );
        let r = get(&g.url("/e"));
        // KrakenD: a decode error fails that backend, so the answer is partial.
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(r.json(), json!({"good": 1}), "{what}");
        assert_eq!(r.header("x-krakend-completed"), Some("false"), "{what}");
    }
}

#[test]
fn an_unreachable_grouped_backend_leaves_no_group_key() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let good = Backend::json(r#"{"id":1}"#);
    let g = start(
        vec![
            be(&good, "/g", json!({"group": "good"})),
            json!({"host": [dead_url], "url_pattern": "/d", "group": "dead"}),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"good": {"id": 1}}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn every_backend_failing_with_return_error_details_still_answers_200() {
    let x = Backend::start(|_| Reply::status(404).body("no x"));
    let y = Backend::start(|_| Reply::status(503).body("no y"));
    let details =
        |name: &str| json!({"extra_config": {"backend/http": {"return_error_details": name}}});
    let g = start(
        vec![be(&x, "/x", details("x")), be(&y, "/y", details("y"))],
        |_| {},
    );
    let r = get(&g.url("/e"));
    // KrakenD: a detailed error is returned as data, not as an error, so the merge has data.
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["error_x"]["http_status_code"], json!(404));
    assert_eq!(body["error_x"]["http_body"], json!("no x"));
    assert_eq!(body["error_y"]["http_status_code"], json!(503));
    assert_eq!(body["error_y"]["http_body"], json!("no y"));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn a_single_backend_gets_the_whole_timeout() {
    let slow = slow_json(r#"{"slow":true}"#, Duration::from_secs(3));
    let g = start(vec![be(&slow, "/s", json!({}))], |ep| {
        ep["timeout"] = json!("1s")
    });
    let t0 = Instant::now();
    let r = get(&g.url("/e"));
    let took = t0.elapsed();
    assert_eq!(r.status, 500);
    // KrakenD: the 85% cut only applies to merging endpoints.
    assert!(took >= Duration::from_millis(950), "gave up after {took:?}");
    assert!(took < Duration::from_millis(1300), "took {took:?}");
}

#[test]
fn a_grouped_backend_answering_null_renders_a_null_group_and_the_merge_is_incomplete() {
    let a = Backend::json(r#"{"a":1}"#);
    let n = Backend::json("null");
    let g = start(
        vec![be(&a, "/a", json!({})), be(&n, "/n", json!({"group": "g"}))],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}", r.text());
    // KrakenD: `null` decodes into a nil map; under a group it stays null.
    assert_eq!(r.json(), json!({"a": 1, "g": null}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn a_backend_answering_null_without_a_group_makes_the_merge_incomplete() {
    let a = Backend::json(r#"{"a":1}"#);
    let n = Backend::json("null");
    let g = start(
        vec![be(&a, "/a", json!({})), be(&n, "/n", json!({}))],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"a": 1}));
    // KrakenD (lura combineData): a part with nil data is not complete.
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn a_flatmap_that_empties_a_backend_leaves_null_but_an_empty_one_stays_an_object() {
    let a = Backend::json(r#"{"a":1}"#);
    let s = Backend::start(|_| Reply::text("plain"));
    let e = Backend::json(r#"{"x":[1]}"#);
    let del = |what: &str| json!({"proxy": {"flatmap_filter": [{"type": "del", "args": [what]}]}});
    let g = start(
        vec![
            be(&a, "/a", json!({})),
            be(
                &s,
                "/s",
                json!({"encoding": "string", "group": "emptied", "extra_config": del("content")}),
            ),
            // `target` on a non-object gives an empty map, which the flatmap leaves empty.
            be(
                &e,
                "/e",
                json!({"target": "x", "group": "empty", "extra_config": del("nope")}),
            ),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"a": 1, "emptied": null, "empty": {}}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}
