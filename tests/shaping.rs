//! Response shaping seen by the client (reference §3; lura `proxy/formatter.go`,
//! `router/gin/render.go`): per backend `target` -> `allow` | `deny` -> `mapping` -> `group`,
//! or `target` -> `flatmap_filter` -> `group`; `is_collection`; the endpoint-level flatmap after
//! the merge; the `json-collection` and `string` output encodings; exact source text kept.
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

/// `GET /e` over one backend answering `body`, shaped by `extra` on the backend.
fn shaped(body: &str, extra: Value) -> Response {
    let b = Backend::json(body);
    let g = start(vec![be(&b, "/b", extra)], |_| {});
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

/// A user record with nested objects, for allow/deny/mapping.
const USER: &str = r#"{"id":1,"secret":"s","profile":{"name":"n","email":"e","address":{"city":"c","zip":"z"}},"tags":["a"]}"#;

#[test]
fn group_puts_each_of_three_backends_under_its_own_key() {
    let a = Backend::json(r#"{"id":1,"name":"a"}"#);
    let b = Backend::json(r#"{"id":2,"name":"b"}"#);
    let c = Backend::json(r#"{"id":3,"name":"c"}"#);
    let g = start(
        vec![
            be(&a, "/a", json!({"group": "first"})),
            be(&b, "/b", json!({"group": "second"})),
            be(&c, "/c", json!({"group": "third"})),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // The same keys in every backend no longer collide once grouped.
    assert_eq!(
        r.json(),
        json!({
            "first": {"id": 1, "name": "a"},
            "second": {"id": 2, "name": "b"},
            "third": {"id": 3, "name": "c"},
        })
    );
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn target_replaces_the_data_with_a_nested_object() {
    let r = shaped(
        r#"{"status":"ok","data":{"user":{"id":7,"name":"x"},"other":1}}"#,
        json!({"target": "data.user"}),
    );
    assert_eq!(r.json(), json!({"id": 7, "name": "x"}));
}

#[test]
fn target_runs_before_allow_mapping_and_group() {
    let r = shaped(
        r#"{"data":{"id":7,"name":"x","secret":"s"}}"#,
        json!({
            "target": "data",
            "allow": ["id", "name"],
            "mapping": {"name": "label"},
            "group": "user",
        }),
    );
    assert_eq!(r.json(), json!({"user": {"id": 7, "label": "x"}}));
}

#[test]
fn allow_keeps_only_the_listed_nested_paths() {
    let r = shaped(
        USER,
        json!({"allow": ["id", "profile.name", "profile.address.city"]}),
    );
    assert_eq!(
        r.json(),
        json!({"id": 1, "profile": {"name": "n", "address": {"city": "c"}}})
    );
}

#[test]
fn deny_removes_the_listed_nested_paths() {
    let r = shaped(
        USER,
        json!({"deny": ["secret", "tags", "profile.email", "profile.address.zip"]}),
    );
    assert_eq!(
        r.json(),
        json!({"id": 1, "profile": {"name": "n", "address": {"city": "c"}}})
    );
}

#[test]
fn allow_wins_over_deny_when_both_are_set() {
    let r = shaped(
        USER,
        json!({"allow": ["id", "secret"], "deny": ["secret", "id"]}),
    );
    // KrakenD: a non-empty allow list means the deny list is ignored.
    assert_eq!(r.json(), json!({"id": 1, "secret": "s"}));
}

#[test]
fn mapping_renames_top_level_keys_and_cuts_a_dotted_name_at_the_first_dot() {
    let r = shaped(
        USER,
        json!({
            "allow": ["id", "profile.name"],
            "mapping": {"id": "user_id", "profile": "person.details"},
        }),
    );
    // KrakenD: mapping works on top-level keys only; "person.details" becomes "person".
    assert_eq!(r.json(), json!({"user_id": 1, "person": {"name": "n"}}));
}

#[test]
fn is_collection_puts_the_array_under_collection_next_to_other_backends() {
    let list = Backend::json(r#"[{"id":1},{"id":2}]"#);
    let obj = Backend::json(r#"{"total":2}"#);
    let g = start(
        vec![
            be(&list, "/l", json!({"is_collection": true})),
            be(&obj, "/o", json!({})),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"collection": [{"id": 1}, {"id": 2}], "total": 2})
    );
}

#[test]
fn mapping_collection_to_items_renames_the_wrapped_array() {
    let r = shaped(
        r#"[{"id":1},{"id":2}]"#,
        json!({"is_collection": true, "mapping": {"collection": "items"}}),
    );
    assert_eq!(r.json(), json!({"items": [{"id": 1}, {"id": 2}]}));
}

#[test]
fn json_collection_output_returns_the_bare_array() {
    let list = Backend::json(r#"[{"id":1},{"id":2}]"#);
    let obj = Backend::json(r#"{"total":2}"#);
    let g = start(
        vec![
            be(&list, "/l", json!({"is_collection": true})),
            be(&obj, "/o", json!({})),
        ],
        |ep| ep["output_encoding"] = json!("json-collection"),
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD (`jsonCollectionRender`): only the `collection` value is written.
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[test]
fn json_collection_output_without_a_collection_is_an_empty_array() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = start(vec![be(&b, "/b", json!({}))], |ep| {
        ep["output_encoding"] = json!("json-collection")
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn string_output_writes_the_content_string_unescaped() {
    let b = Backend::json(r#"{"content":"caf\u00e9 \"quoted\"\nline 2","other":1}"#);
    let g = start(vec![be(&b, "/b", json!({}))], |ep| {
        ep["output_encoding"] = json!("string")
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "café \"quoted\"\nline 2");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn string_output_with_non_string_content_is_empty() {
    let b = Backend::json(r#"{"content":{"a":1}}"#);
    let g = start(vec![be(&b, "/b", json!({}))], |ep| {
        ep["output_encoding"] = json!("string")
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD (`stringRender`): `content` that is not a string renders as "".
    assert_eq!(r.text(), "");
}

#[test]
fn numbers_and_string_escapes_reach_the_client_as_the_backend_wrote_them() {
    let a =
        Backend::json(r#"{"big":12345678901234567890,"price":1.50,"word":"caf\u00e9\n","drop":0}"#);
    let b = Backend::json(r#"{"n":{"deep":1.50,"exp":1E+2,"other":1},"x":1}"#);
    let g = start(
        vec![
            be(&a, "/a", json!({"deny": ["drop"]})),
            be(
                &b,
                "/b",
                json!({"group": "g", "allow": ["n.deep", "n.exp"]}),
            ),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    let text = r.text();
    // KrakenD decodes numbers with UseNumber, so their literals survive. String escapes are
    // kept as written on purpose (KrakenD would re-encode `\u00e9` as a raw `é`; same value).
    for raw in [
        r#""big":12345678901234567890"#,
        r#""price":1.50"#,
        r#""word":"caf\u00e9\n""#,
        r#""deep":1.50"#,
        r#""exp":1E+2"#,
    ] {
        assert!(text.contains(raw), "{raw} missing from {text}");
    }
    assert!(!text.contains("drop") && !text.contains("other"), "{text}");
}

#[test]
fn backend_flatmap_moves_and_deletes_with_wildcards_and_indexes_instead_of_allow_and_deny() {
    let r = shaped(
        r#"{"items":[{"id":1,"secret":"x","name":"a"},{"id":2,"secret":"y","name":"b"}],"meta":{"total":2,"page":1},"list":[10,11,12,13]}"#,
        json!({
            // KrakenD: with a flatmap_filter, allow/deny/mapping are ignored (group still applies).
            "allow": ["nothing"],
            "deny": ["items"],
            "mapping": {"total": "count"},
            "group": "g",
            "extra_config": {"proxy": {"flatmap_filter": [
                {"type": "move", "args": ["items.*.id", "items.*.key"]},
                {"type": "del", "args": ["items.*.secret", "list.0", "list.2"]},
                {"type": "move", "args": ["meta.total", "total"]},
            ]}},
        }),
    );
    assert_eq!(
        r.json(),
        json!({"g": {
            "items": [{"key": 1, "name": "a"}, {"key": 2, "name": "b"}],
            "meta": {"page": 1},
            "total": 2,
            // KrakenD's flatmap: indexes are labels, so deleting "0" does not shift "2".
            "list": [11, 13],
        }})
    );
}

#[test]
fn backend_flatmap_runs_after_target() {
    let r = shaped(
        r#"{"data":{"a":{"b":1},"c":2},"outside":3}"#,
        json!({
            "target": "data",
            "extra_config": {"proxy": {"flatmap_filter": [
                {"type": "move", "args": ["a.b", "b"]},
                {"type": "del", "args": ["a"]},
            ]}},
        }),
    );
    assert_eq!(r.json(), json!({"b": 1, "c": 2}));
}

#[test]
fn endpoint_flatmap_on_two_backends_runs_after_the_merge() {
    let a = Backend::json(r#"{"a":{"x":1}}"#);
    let b = Backend::json(r#"{"y":2,"z":3}"#);
    let g = start(
        vec![be(&a, "/a", json!({})), be(&b, "/b", json!({"group": "b"}))],
        |ep| {
            ep["extra_config"] = json!({"proxy": {"flatmap_filter": [
                {"type": "move", "args": ["b", "a.b"]},
                {"type": "del", "args": ["a.b.z"]},
            ]}});
        },
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200, "{}", r.text());
    // Embedding the second backend's group into the first backend's object only works on the
    // merged result (run on either part alone, "x" or "b" would be missing).
    assert_eq!(r.json(), json!({"a": {"x": 1, "b": {"y": 2}}}));
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn flatmap_move_between_paths_of_equal_length_only_relabels_the_last_segment() {
    let r = shaped(
        r#"{"a":{"x":1},"b":{"y":2}}"#,
        json!({"extra_config": {"proxy": {"flatmap_filter": [
            {"type": "move", "args": ["b.y", "a.z"]},
        ]}}}),
    );
    // KrakenD (`krakend/flatmap` `Tree.Move`): when src and dst have the same length the edge
    // is relabelled where it is; the destination's parent path is ignored.
    assert_eq!(r.json(), json!({"a": {"x": 1}, "b": {"z": 2}}));
}

#[test]
fn endpoint_flatmap_is_ignored_on_a_one_backend_endpoint() {
    let b = Backend::json(r#"{"a":1,"b":2}"#);
    let g = start(vec![be(&b, "/b", json!({}))], |ep| {
        ep["extra_config"] = json!({"proxy": {"flatmap_filter": [
            {"type": "del", "args": ["a"]},
        ]}});
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD: the endpoint flatmap middleware is only installed with more than one backend.
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
}

#[test]
fn allow_paths_do_not_go_into_arrays() {
    let r = shaped(
        r#"{"items":[{"id":1,"x":2}],"n":1}"#,
        json!({"allow": ["items.id", "n"]}),
    );
    // KrakenD (`AllowlistPrune`): a nested allow only descends into objects, so an array under
    // a nested rule is dropped whole.
    assert_eq!(r.json(), json!({"n": 1}));
}

#[test]
fn deny_paths_do_not_go_into_arrays() {
    let r = shaped(
        r#"{"items":[{"id":1,"x":2}],"n":1}"#,
        json!({"deny": ["items.id", "n"]}),
    );
    // KrakenD: deny only descends into objects; the array is left as it is.
    assert_eq!(r.json(), json!({"items": [{"id": 1, "x": 2}]}));
}

#[test]
fn a_missing_target_leaves_only_the_group_key() {
    let a = Backend::json(r#"{"data":{"id":1}}"#);
    let b = Backend::json(r#"{"other":{"id":2}}"#);
    let g = start(
        vec![
            be(&a, "/a", json!({"target": "data", "group": "a"})),
            be(&b, "/b", json!({"target": "data", "group": "b"})),
        ],
        |_| {},
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    // KrakenD (`extractTarget`): a missing target gives empty data, which is then grouped.
    assert_eq!(r.json(), json!({"a": {"id": 1}, "b": {}}));
}

#[test]
fn endpoint_flatmap_is_skipped_when_a_backend_failed() {
    let a = Backend::json(r#"{"a":1,"b":2}"#);
    let broken = Backend::start(|_| Reply::status(500));
    let g = start(
        vec![be(&a, "/a", json!({})), be(&broken, "/x", json!({}))],
        |ep| {
            ep["extra_config"] = json!({"proxy": {"flatmap_filter": [
                {"type": "del", "args": ["a"]},
            ]}});
        },
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    // KrakenD: the merge returns its data together with a merge error, and the flatmap
    // middleware (`NewFlatmapMiddleware`, wrapped around the merge in `newMulti`) returns
    // early on any error, so a partial answer is not flatmapped.
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
}
