//! Unit tests for shaping: one behaviour per test.

use super::*;
use crate::config::{Backend, Span};

fn backend() -> Backend {
    Backend {
        host: vec![],
        url_pattern: "/x".into(),
        method: "GET".into(),
        encoding: "json".into(),
        is_collection: false,
        target: String::new(),
        allow: vec![],
        deny: vec![],
        mapping: vec![],
        group: String::new(),
        sd: "static".into(),
        sd_scheme: String::new(),
        host_span: None,
        disable_host_sanitize: false,
        input_headers: vec![],
        input_query_strings: vec![],
        extra_config: Default::default(),
        span: Span::default(),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn shape(b: &Backend, body: &str) -> Result<Fields, JsonError> {
    BackendShape::compile(b)
        .map_err(JsonError::Syntax)?
        .apply(Bytes::from(body.to_owned()))
}

fn obj(f: &Fields) -> String {
    let mut out = Vec::new();
    f.write_object(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn value(f: &Fields) -> serde_json::Value {
    let mut out = Vec::new();
    f.write_object(&mut out);
    serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

fn with_flatmap(mut b: Backend, ops: serde_json::Value) -> Backend {
    b.extra_config
        .insert("proxy".into(), serde_json::json!({ "flatmap_filter": ops }));
    b
}

#[test]
fn plain_object_passes_through_with_exact_text() {
    let f = shape(
        &backend(),
        r#"{"a": 1.0e+2, "b": 12345678901234567890, "c": "x\u00e9\"y"}"#,
    )
    .unwrap_or_default();
    // Nothing to project: the validated body is passed on as written, whitespace included.
    assert_eq!(
        obj(&f),
        r#"{"a": 1.0e+2, "b": 12345678901234567890, "c": "x\u00e9\"y"}"#
    );
    // Once split into members (a merge), the members keep their exact text.
    let merged = merge(vec![f, Fields::new()]);
    assert_eq!(
        obj(&merged),
        r#"{"a":1.0e+2,"b":12345678901234567890,"c":"x\u00e9\"y"}"#
    );
}

#[test]
fn escaped_keys_keep_their_source_text_and_match_allow() {
    let mut b = backend();
    b.allow = strs(&["ab"]);
    let f = shape(&b, r#"{"\u0061b": 1, "c": 2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"ab":1}"#.replace("ab", r"\u0061b"));
}

#[test]
fn nested_allow_keeps_only_listed_paths() {
    let mut b = backend();
    b.allow = strs(&["a.b", "c", "d.x"]);
    let f = shape(&b, r#"{"a":{"b":1,"z":2},"c":[1],"d":{"y":1},"e":3}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"a":{"b":1},"c":[1]}"#));
}

#[test]
fn allow_into_a_non_object_drops_the_member() {
    let mut b = backend();
    b.allow = strs(&["a.b"]);
    let f = shape(&b, r#"{"a":[{"b":1}]}"#).unwrap_or_default();
    assert!(f.is_empty());
}

#[test]
fn allow_leaf_after_subtree_keeps_whole_value() {
    let mut b = backend();
    b.allow = strs(&["a.b", "a"]);
    let f = shape(&b, r#"{"a":{"b":1,"c":2}}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"a":{"b":1,"c":2}}"#));
}

#[test]
fn nested_deny_removes_only_listed_paths() {
    let mut b = backend();
    b.deny = strs(&["a.b.c", "d"]);
    let f = shape(&b, r#"{"a":{"b":{"c":1,"k":2},"x":3},"d":4,"e":5}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"a":{"b":{"k":2},"x":3},"e":5}"#));
}

#[test]
fn deny_into_non_object_leaves_it_alone() {
    let mut b = backend();
    b.deny = strs(&["a.b"]);
    let f = shape(&b, r#"{"a":"text"}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"a":"text"}"#);
}

#[test]
fn allow_wins_over_deny_when_both_are_set() {
    let mut b = backend();
    b.allow = strs(&["a"]);
    b.deny = strs(&["a"]);
    let f = shape(&b, r#"{"a":1,"b":2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"a":1}"#);
}

#[test]
fn target_extracts_nested_object() {
    let mut b = backend();
    b.target = "data.item".into();
    let f = shape(&b, r#"{"data":{"item":{"id":7}},"x":1}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"id":7}"#);
}

#[test]
fn missing_or_non_object_target_gives_empty_data() {
    let mut b = backend();
    b.target = "data.item".into();
    assert!(shape(&b, r#"{"data":{}}"#).unwrap_or_default().is_empty());
    assert!(shape(&b, r#"{"data":{"item":[1]}}"#)
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn mapping_renames_top_level_keys_and_cuts_dotted_targets() {
    let mut b = backend();
    b.mapping = vec![("a".into(), "x.y".into()), ("b".into(), "z".into())];
    let f = shape(&b, r#"{"a":1,"b":2,"c":3}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"x":1,"z":2,"c":3}"#));
}

#[test]
fn mapping_onto_an_existing_key_replaces_it() {
    let mut b = backend();
    b.mapping = vec![("a".into(), "c".into())];
    let f = shape(&b, r#"{"a":1,"c":3}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"c":1}"#));
}

#[test]
fn mapping_swaps_read_the_original_data() {
    let mut b = backend();
    b.mapping = vec![("a".into(), "b".into()), ("b".into(), "a".into())];
    let f = shape(&b, r#"{"a":1,"b":2}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"a":2,"b":1}"#));
}

#[test]
fn two_mappings_to_one_key_let_the_later_entry_win() {
    let mut b = backend();
    b.mapping = vec![("a".into(), "x".into()), ("b".into(), "x".into())];
    let f = shape(&b, r#"{"b":2,"a":1}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"x":2}"#));
}

#[test]
fn group_wraps_everything_after_mapping() {
    let mut b = backend();
    b.group = "g".into();
    b.allow = strs(&["a"]);
    b.mapping = vec![("a".into(), "b".into())];
    let f = shape(&b, r#"{"a":1,"c":2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"g":{"b":1}}"#);
}

#[test]
fn is_collection_wraps_array_and_rejects_objects() {
    let mut b = backend();
    b.is_collection = true;
    let f = shape(&b, r#" [1, {"a":2}] "#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"collection":[1, {"a":2}]}"#);
    let mut out = Vec::new();
    f.write_collection(&mut out);
    assert_eq!(out, br#"[1, {"a":2}]"#);
    assert_eq!(shape(&b, r#"{"a":1}"#), Err(JsonError::ExpectedArray));
}

#[test]
fn json_encoding_rejects_arrays_and_scalars() {
    assert_eq!(shape(&backend(), "[1]"), Err(JsonError::ExpectedObject));
    assert_eq!(shape(&backend(), "3"), Err(JsonError::ExpectedObject));
}

#[test]
fn json_null_body_is_a_nil_map_rendered_null() {
    let f = shape(&backend(), "null").unwrap_or_default();
    assert!(f.is_nil());
    let mut out = Vec::new();
    f.write_object(&mut out);
    assert_eq!(out, b"null");
    // `target` always leaves a map, even over a nil one.
    let mut b = backend();
    b.target = "a".into();
    assert_eq!(shape(&b, "null"), Ok(Fields::new()));
}

#[test]
fn safejson_handles_objects_arrays_and_scalars() {
    let mut b = backend();
    b.encoding = "safejson".into();
    assert_eq!(
        obj(&shape(&b, r#"{"a":1}"#).unwrap_or_default()),
        r#"{"a":1}"#
    );
    assert_eq!(
        obj(&shape(&b, "[1,2]").unwrap_or_default()),
        r#"{"collection":[1,2]}"#
    );
    assert_eq!(
        obj(&shape(&b, "1.50").unwrap_or_default()),
        r#"{"content":1.50}"#
    );
    assert_eq!(
        obj(&shape(&b, r#""hi""#).unwrap_or_default()),
        r#"{"content":"hi"}"#
    );
}

#[test]
fn string_encoding_puts_the_escaped_body_under_content() {
    let mut b = backend();
    b.encoding = "string".into();
    let body = "line1\n\"q\" <b>&\\";
    let f = shape(&b, body).unwrap_or_default();
    assert_eq!(value(&f), serde_json::json!({ "content": body }));
    assert_eq!(f.content_string(), body.as_bytes());
    assert!(obj(&f).contains(r"\u003cb\u003e\u0026"));
}

#[test]
fn invalid_json_is_an_error_even_in_dropped_fields() {
    let mut b = backend();
    b.allow = strs(&["a"]);
    assert!(matches!(
        shape(&b, r#"{"a":1,"b":[1,}"#),
        Err(JsonError::Syntax(_))
    ));
    assert!(matches!(
        shape(&b, r#"{"a":1,"b":tru}"#),
        Err(JsonError::Syntax(_))
    ));
    assert!(matches!(
        shape(&backend(), r#"{"a":"#),
        Err(JsonError::Syntax(_))
    ));
    assert!(matches!(shape(&backend(), ""), Err(JsonError::Syntax(_))));
}

#[test]
fn duplicate_keys_keep_the_last_one() {
    let mut b = backend();
    b.allow = strs(&["a.b"]);
    let f = shape(&b, r#"{"a":{"b":1},"a":{"c":2}}"#).unwrap_or_default();
    assert!(f.is_empty());
    // A projected or merged body drops the earlier duplicate, as Go's decoding does.
    let mut b = backend();
    b.deny = strs(&["x"]);
    let f = shape(&b, r#"{"a":1,"a":2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"a":2}"#);
    let f = shape(&backend(), r#"{"a":1,"a":2}"#).unwrap_or_default();
    assert_eq!(f.get("a").as_deref(), Some(&b"2"[..]));
    assert_eq!(obj(&merge(vec![f, Fields::new()])), r#"{"a":2}"#);
    // Passed through whole, the text is the backend's: the same JSON value for parsers that
    // keep the last duplicate (Go, JavaScript, Python, serde_json).
    let f = shape(&backend(), r#"{"a":1,"a":2}"#).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&obj(&f)).unwrap_or_default();
    assert_eq!(v, serde_json::json!({"a": 2}));
}

#[test]
fn merge_lets_later_parts_win_collisions() {
    let a = shape(&backend(), r#"{"x":1,"y":1}"#).unwrap_or_default();
    let b = shape(&backend(), r#"{"y":2,"z":2}"#).unwrap_or_default();
    let m = merge(vec![a.clone(), b.clone()]);
    assert_eq!(obj(&m), r#"{"x":1,"y":2,"z":2}"#);
    let m = merge(vec![b, a]);
    assert_eq!(value(&m), json(r#"{"x":1,"y":1,"z":2}"#));
    assert!(merge(vec![]).is_empty());
}

#[test]
fn merge_of_large_parts_follows_the_same_rule() {
    let big = |off: usize, v: &str| {
        let body: Vec<String> = (0..100).map(|i| format!("\"k{}\":{v}", i + off)).collect();
        shape(&backend(), &format!("{{{}}}", body.join(","))).unwrap_or_default()
    };
    let m = merge(vec![big(0, "1"), big(50, "2")]);
    assert_eq!(m.len(), 150);
    assert_eq!(m.get("k60").as_deref(), Some(b"2".as_ref()));
    assert_eq!(m.get("k10").as_deref(), Some(b"1".as_ref()));
}

#[test]
fn value_at_formats_like_go_percent_v() {
    let f = shape(
        &backend(),
        r#"{"s":"a\"b","n":1.50,"t":true,"z":null,"arr":[1,"x",null,[2,3]],"o":{"b":{"k":2},"a":"v"},"e":[]}"#,
    )
    .unwrap_or_default();
    assert_eq!(f.value_at("s").as_deref(), Some("a\"b"));
    assert_eq!(f.value_at("n").as_deref(), Some("1.50"));
    assert_eq!(f.value_at("t").as_deref(), Some("true"));
    assert_eq!(f.value_at("z").as_deref(), Some("<nil>"));
    assert_eq!(f.value_at("arr").as_deref(), Some("1,x,<nil>,[2 3]"));
    assert_eq!(f.value_at("o").as_deref(), Some("map[a:v b:map[k:2]]"));
    assert_eq!(f.value_at("o.b.k").as_deref(), Some("2"));
    assert_eq!(f.value_at("e").as_deref(), Some(""));
    assert_eq!(f.value_at("missing"), None);
}

#[test]
fn value_at_looks_up_the_last_key_where_the_walk_stopped() {
    let f = shape(&backend(), r#"{"id":1,"o":{"id":2}}"#).unwrap_or_default();
    // KrakenD: a missing parent leaves the lookup at the deepest object reached.
    assert_eq!(f.value_at("nope.id").as_deref(), Some("1"));
    assert_eq!(f.value_at("o.nope.id").as_deref(), Some("2"));
}

#[test]
fn from_value_renders_static_data() {
    let f = from_value(&serde_json::json!({"a": [1, "x"], "b<": {"c": null}}));
    assert_eq!(value(&f), json(r#"{"a":[1,"x"],"b<":{"c":null}}"#));
    assert!(from_value(&serde_json::json!([1])).is_empty());
}

#[test]
fn content_string_of_non_string_is_raw_and_absent_is_empty() {
    assert_eq!(
        from_value(&serde_json::json!({"content": 5})).content_string(),
        b"5"
    );
    assert!(Fields::new().content_string().is_empty());
    let mut out = Vec::new();
    Fields::new().write_collection(&mut out);
    assert_eq!(out, b"[]");
}

#[test]
fn flatmap_replaces_allow_deny_and_mapping() {
    let mut b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "del", "args": ["b"]}]),
    );
    b.allow = strs(&["a"]);
    b.mapping = vec![("a".into(), "z".into())];
    b.group = "g".into();
    let f = shape(&b, r#"{"a":1,"b":2,"c":3}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"g":{"a":1,"c":3}}"#));
}

#[test]
fn flatmap_move_relabels_inside_arrays_with_wildcards() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "move", "args": ["items.*.id", "items.*.key"]}]),
    );
    let f = shape(&b, r#"{"items":[{"id":1,"n":"a"},{"id":2}]}"#).unwrap_or_default();
    assert_eq!(
        value(&f),
        json(r#"{"items":[{"key":1,"n":"a"},{"key":2}]}"#)
    );
}

#[test]
fn flatmap_move_extracts_and_embeds() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([
            {"type": "move", "args": ["a.b.c", "c"]},
            {"type": "move", "args": ["x", "y.z"]}
        ]),
    );
    let f = shape(&b, r#"{"a":{"b":{"c":1,"d":2}},"x":[1]}"#).unwrap_or_default();
    assert_eq!(
        value(&f),
        json(r#"{"a":{"b":{"d":2}},"c":1,"y":{"z":[1]}}"#)
    );
}

#[test]
fn flatmap_del_with_index_and_wildcard() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "del", "args": ["list.0", "list.2", "objs.*.secret"]}]),
    );
    let f = shape(
        &b,
        r#"{"list":[10,11,12,13],"objs":[{"secret":1,"ok":1},{"secret":2,"ok":2}]}"#,
    )
    .unwrap_or_default();
    // KrakenD: indexes are labels, so deleting "0" does not shift "2".
    assert_eq!(
        value(&f),
        json(r#"{"list":[11,13],"objs":[{"ok":1},{"ok":2}]}"#)
    );
}

#[test]
fn flatmap_deleting_every_child_leaves_null() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "del", "args": ["a.*"]}]),
    );
    let f = shape(&b, r#"{"a":{"x":1},"b":[]}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"a":null,"b":[]}"#));
}

#[test]
fn flatmap_append_concatenates_and_removes_source() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "append", "args": ["extra", "items"]}]),
    );
    let f = shape(&b, r#"{"items":[1,2],"extra":[3,{"a":4}]}"#).unwrap_or_default();
    assert_eq!(value(&f), json(r#"{"items":[1,2,3,{"a":4}]}"#));
}

#[test]
fn flatmap_keeps_untouched_values_as_raw_text() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([{"type": "del", "args": ["a.x"]}]),
    );
    let f = shape(&b, r#"{"a":{"x":1,"y":1.0e+2},"b":12345678901234567890}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"a":{"y":1.0e+2},"b":12345678901234567890}"#);
}

#[test]
fn bad_flatmap_args_are_rejected_at_compile_time() {
    for ops in [
        serde_json::json!([{"type": "move", "args": ["a"]}]),
        serde_json::json!([{"type": "move", "args": ["a", 1]}]),
        serde_json::json!([{"type": "move", "args": ["a", "*.b"]}]),
        serde_json::json!([{"type": "append", "args": ["a.*", "b"]}]),
    ] {
        let b = with_flatmap(backend(), ops.clone());
        assert!(BackendShape::compile(&b).is_err(), "{ops}");
        assert!(
            EndpointFlatmap::compile(Some(&serde_json::json!({"flatmap_filter": ops}))).is_err()
        );
    }
}

#[test]
fn flatmap_ops_read_as_krakend_reads_them_extra_args_ignored_and_del_without_args_a_no_op() {
    let b = with_flatmap(
        backend(),
        serde_json::json!([
            {"type": "move", "args": ["a", "z", "ignored"]},
            {"type": "del"}
        ]),
    );
    let f = shape(&b, r#"{"a":1,"b":2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"z":1,"b":2}"#);
}

#[test]
fn empty_flatmap_filter_falls_back_to_allow() {
    let mut b = with_flatmap(backend(), serde_json::json!([]));
    b.allow = strs(&["a"]);
    let f = shape(&b, r#"{"a":1,"b":2}"#).unwrap_or_default();
    assert_eq!(obj(&f), r#"{"a":1}"#);
}

#[test]
fn endpoint_flatmap_runs_on_merged_fields() {
    let fm = EndpointFlatmap::compile(Some(&serde_json::json!({
        "flatmap_filter": [{"type": "move", "args": ["a", "b"]}]
    })))
    .unwrap_or_default();
    assert!(fm.is_active());
    let merged = merge(vec![
        shape(&backend(), r#"{"a":1}"#).unwrap_or_default(),
        shape(&backend(), r#"{"c":2}"#).unwrap_or_default(),
    ]);
    let out = fm.apply(merged).unwrap_or_default();
    assert_eq!(value(&out), json(r#"{"b":1,"c":2}"#));
    let none = EndpointFlatmap::compile(None).unwrap_or_default();
    assert!(!none.is_active());
}

#[test]
fn xml_and_rss_bodies_are_never_read_as_json() {
    for enc in ["xml", "rss"] {
        let mut b = backend();
        b.encoding = enc.into();
        let shape = BackendShape::compile(&b).unwrap();
        assert!(shape.apply(Bytes::from_static(br#"{"a":1}"#)).is_err());
    }
}
