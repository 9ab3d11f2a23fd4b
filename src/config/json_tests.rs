//! Tests of the spanned JSON parser: positions, escapes, numbers, errors and the depth cap.
use super::*;

fn root(text: &str) -> Spanned {
    match parse(text) {
        Ok(p) => p.root,
        Err(e) => panic!("unexpected parse error: {e:?}"),
    }
}

fn err(text: &str) -> ParseIssue {
    match parse(text) {
        Ok(p) => panic!("expected an error, parsed {:?}", p.root),
        Err(e) => e,
    }
}

fn member<'a>(v: &'a Spanned, key: &str) -> &'a Member {
    match v.get(key) {
        Some(m) => m,
        None => panic!("no key {key}"),
    }
}

#[test]
fn values_and_keys_carry_line_and_column() {
    let v = root("{\n  \"a\": 1,\n  \"b\": [true, null]\n}");
    assert_eq!(v.pos, Pos { line: 1, col: 1 });
    let a = member(&v, "a");
    assert_eq!(a.key_pos, Pos { line: 2, col: 3 });
    assert_eq!(a.value.pos, Pos { line: 2, col: 8 });
    let b = member(&v, "b");
    let Value::Array(items) = &b.value.value else {
        panic!("not an array")
    };
    let positions: Vec<Pos> = items.iter().map(|i| i.pos).collect();
    assert_eq!(
        positions,
        vec![Pos { line: 3, col: 9 }, Pos { line: 3, col: 15 }]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let v = root("{\"é€\": \"ü\", \"x\": 2}");
    // Counted in bytes this would be column 16.
    assert_eq!(member(&v, "x").key_pos, Pos { line: 1, col: 13 });
}

#[test]
fn escapes_are_decoded() {
    let v = root(r#"{"s": "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}"#);
    assert_eq!(
        member(&v, "s").value.value,
        Value::String("a\"b\\c/d\u{8}\u{c}\n\r\té😀".to_string())
    );
}

#[test]
fn unpaired_surrogates_become_replacement_characters() {
    let v = root(r#"{"s": "\ud83dx\udc00"}"#);
    assert_eq!(
        member(&v, "s").value.value,
        Value::String("\u{FFFD}x\u{FFFD}".to_string())
    );
}

#[test]
fn number_text_is_kept_exactly() {
    let v = root(r#"[0, -1, 1.50, 2e10, 12345678901234567890123]"#);
    let Value::Array(items) = v.value else {
        panic!("not an array")
    };
    let raw: Vec<Value> = items.into_iter().map(|i| i.value).collect();
    let want: Vec<Value> = ["0", "-1", "1.50", "2e10", "12345678901234567890123"]
        .iter()
        .map(|s| Value::Number(s.to_string()))
        .collect();
    assert_eq!(raw, want);
}

#[test]
fn conversion_to_serde_uses_integers_when_they_fit() {
    let v = root(r#"{"i": -5, "u": 18446744073709551615, "f": 1.5, "big": 1e3, "o": {"n": null}}"#);
    let j = v.to_json();
    assert_eq!(j["i"].as_i64(), Some(-5));
    assert_eq!(j["u"].as_u64(), Some(u64::MAX));
    assert_eq!(j["f"].as_f64(), Some(1.5));
    assert!(j["big"].is_f64());
    assert!(j["o"]["n"].is_null());
}

#[test]
fn malformed_numbers_are_rejected() {
    for bad in ["01", "-", "1.", ".5", "1e", "+1", "1e+"] {
        assert!(parse(bad).is_err(), "{bad} should fail");
    }
    assert!(err("1e400").message.contains("out of range"));
}

#[test]
fn duplicate_keys_keep_the_last_value_and_warn() {
    let parsed = match parse("{\"a\": 1,\n \"a\": 2}") {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(
        member(&parsed.root, "a").value.value,
        Value::Number("2".into())
    );
    let Value::Object(members) = &parsed.root.value else {
        panic!("not an object")
    };
    assert_eq!(members.len(), 1);
    assert_eq!(parsed.duplicates.len(), 1);
    let dup = parsed.duplicates.first().cloned();
    assert_eq!(dup.as_ref().map(|d| d.pos), Some(Pos { line: 2, col: 2 }));
    assert_eq!(dup.map(|d| d.path), Some("$.a".to_string()));
}

#[test]
fn syntax_errors_report_where_they_are() {
    let e = err("{\n  \"a\": 1,\n  \"b\" 2\n}");
    assert_eq!(e.pos, Pos { line: 3, col: 7 });
    assert!(e.message.contains("':'"), "{}", e.message);

    let e = err("{\"a\": [1, 2,]}");
    assert_eq!(e.pos, Pos { line: 1, col: 13 });
    assert_eq!(e.path, "$.a[2]");

    let e = err("{\"a\": 1,}");
    assert!(e.message.contains("object key"), "{}", e.message);
}

#[test]
fn strict_json_rejects_extensions() {
    for bad in [
        "{'a': 1}",
        "{a: 1}",
        "[1,]",
        "// c\n{}",
        "{} {}",
        "\"tab\there\"",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\"open",
        "tru",
        "",
        "\u{feff}{}",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn nesting_is_capped() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(err(&deep).message.contains("nesting"));
    let hostile = "[".repeat(1_000_000);
    assert!(parse(&hostile).is_err());
}

#[test]
fn odd_keys_are_quoted_in_paths() {
    assert_eq!(key_segment("timeout"), ".timeout");
    assert_eq!(key_segment("auth/validator"), "[\"auth/validator\"]");
}
