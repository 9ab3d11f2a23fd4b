//! Tests of the scanner (scan.rs).
use super::*;

fn members(s: &str) -> Result<Vec<(String, String)>> {
    Members::new(s.as_bytes())
        .map(|m| {
            let m = m?;
            let text = |r: Range<usize>| s.get(r).unwrap_or("<bad range>").to_owned();
            Ok((text(m.key), text(m.value)))
        })
        .collect()
}

fn ok(s: &str) -> bool {
    validate(s.as_bytes()).is_ok()
}

#[test]
fn members_come_out_as_raw_key_and_value_text() {
    let got = members(r#" { "a" : 1.5e-3 , "b\"c":{"x":[1,{"y":null}]}, "d":"\u00e9" } "#);
    assert_eq!(
        got,
        Ok(vec![
            ("a".into(), "1.5e-3".into()),
            (r#"b\"c"#.into(), r#"{"x":[1,{"y":null}]}"#.into()),
            ("d".into(), r#""\u00e9""#.into()),
        ])
    );
}

#[test]
fn escaped_keys_are_flagged() {
    let flags: Vec<bool> = Members::new(br#"{"plain":1,"e\u0073c":2}"#)
        .filter_map(|m| m.ok().map(|m| m.key_escaped))
        .collect();
    assert_eq!(flags, vec![false, true]);
}

#[test]
fn bytes_after_the_first_value_are_ignored_like_go_decoder() {
    assert_eq!(members(r#"{"a":1} x"#), Ok(vec![("a".into(), "1".into())]));
    assert_eq!(members(r#"{"a":1}}"#), Ok(vec![("a".into(), "1".into())]));
    assert_eq!(validate(b" [1] ]"), Ok(1..4));
    assert_eq!(validate(b"123abc"), Ok(0..3));
    assert_eq!(validate(b"null x"), Ok(0..4));
}

#[test]
fn empty_object_has_no_members() {
    assert_eq!(members(" {\n} "), Ok(vec![]));
}

#[test]
fn valid_edge_cases_are_accepted() {
    for s in [
        "0",
        "-0",
        "-0.0e+0",
        "1E9",
        "12345678901234567890123",
        r#""""#,
        r#""\"\\\/\b\f\n\r\t\u00E9\uD83D\uDE00""#,
        // Go decodes a lone surrogate to U+FFFD instead of failing.
        r#""\ud800""#,
        "\"é 日本 😀\"",
        "[]",
        "{}",
        " [ [ ] , { } , [ { \"a\" : [ ] } ] ] ",
        "true",
        "false",
        "null",
        r#"{"a":{"b":{"c":[true,false,null,"x\"]}"]}}}"#,
        // Long strings cross the eight-byte fast path at every offset.
        r#"{"abcdefghijklmnopqrstuvwxyz":"0123456789abcdef\"0123456789"}"#,
    ] {
        assert!(ok(s), "{s:?} should be valid");
    }
}

#[test]
fn invalid_strings_are_rejected() {
    for s in [
        r#""abc"#,
        r#""abc\"#,
        r#""a\x""#,
        r#""\u12G4""#,
        r#""\u12""#,
        "\"a\u{1}b\"",
        "\"tab\there\"",
        "\"new\nline\"",
        "'single'",
    ] {
        assert!(!ok(s), "{s:?} should be invalid");
    }
}

#[test]
fn invalid_utf8_in_strings_is_rejected() {
    for s in [
        &b"\"\xff\""[..],
        b"\"\xc3\"",
        b"\"\xc0\xaf\"",
        b"\"\xed\xa0\x80\"",
        b"\"abcdefgh\xe9xyz\"",
        b"\"\xf5\x80\x80\x80\"",
    ] {
        assert!(validate(s).is_err(), "{s:?} should be invalid");
    }
}

#[test]
fn invalid_numbers_are_rejected() {
    for s in [
        "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "1.2.3", "--1", "1_000", "NaN",
        "Infinity", "- 1",
    ] {
        // Inside a container the byte after a number must be a delimiter.
        assert!(!ok(&format!(r#"{{"a":{s}}}"#)), "{s:?} in an object");
        assert!(!ok(&format!("[{s}]")), "{s:?} in an array");
    }
}

#[test]
fn invalid_structure_is_rejected() {
    for s in [
        "[1,]",
        r#"{"a":1,}"#,
        "[1}",
        r#"{"a":1]"#,
        "[[1]",
        r#"{"a":[1}"#,
        r#"{"a"}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        r#"{1:1}"#,
        "[1 2]",
        r#"{"a":1 "b":2}"#,
        "[,]",
        "[,1]",
        "tru",
        "nul",
        "True",
        "",
        "   ",
        "]",
        "}",
    ] {
        assert!(!ok(s), "{s:?} should be invalid");
    }
}

#[test]
fn dropped_members_are_validated_too() {
    for s in [
        r#"{"a":1,"b":[1,}"#,
        r#"{"a":1,"b":tru}"#,
        r#"{"a":1,"b":"x"#,
        r#"{"a":1,"b":01}"#,
        r#"{"a":1"#,
        r#"{"a":1,"#,
        r#"[1]"#,
    ] {
        assert!(members(s).is_err(), "{s:?} should be invalid");
    }
}

#[test]
fn nesting_is_capped_at_go_depth() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(ok(&deep(MAX_DEPTH)));
    assert!(!ok(&deep(MAX_DEPTH + 1)));
    // Mixed objects and arrays past the register-held levels keep their kind.
    let mixed = |n: usize| {
        let open: String = (0..n)
            .map(|i| if i % 3 == 0 { r#"{"k":"# } else { "[" })
            .collect();
        let close: String = (0..n)
            .rev()
            .map(|i| if i % 3 == 0 { "}" } else { "]" })
            .collect();
        format!("{open}1{close}")
    };
    assert!(ok(&mixed(500)));
    let mut wrong = mixed(500);
    // Swap the innermost closer for the other kind.
    if let Some(p) = wrong.find(['}', ']']) {
        let other = if wrong.get(p..=p) == Some("}") {
            "]"
        } else {
            "}"
        };
        wrong.replace_range(p..=p, other);
    }
    assert!(!ok(&wrong));
    let bomb = "[".repeat(1_000_000);
    assert!(!ok(&bomb));
}

#[test]
fn member_values_count_the_object_as_one_level() {
    let n = MAX_DEPTH - 1;
    let fits = format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    assert!(members(&fits).is_ok());
    let n = MAX_DEPTH;
    let over = format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    assert!(members(&over).is_err());
}

#[test]
fn digit_runs_end_at_the_first_non_digit_at_every_offset() {
    for len in 0..20 {
        for stop in [b'.', b'e', b',', b'/', b':', 0xFF, b' '] {
            let mut s = vec![b'7'; len];
            s.push(stop);
            s.extend_from_slice(b"12345678");
            assert_eq!(digits_end(&s, 0), len, "{len} digits then {stop:#x}");
        }
        assert_eq!(digits_end(&vec![b'0'; len], 0), len);
    }
}

#[test]
fn block_scans_find_the_first_special_byte_at_every_offset() {
    // Offsets across two 16-byte blocks, then the 8-byte words and bytes near the end (the
    // last few offsets would turn the closing quote into part of the test's own edit).
    for pos in 0..40 {
        // `"` + 44 x 'x' + `"`: the string body is bytes 1..45.
        let mut s = vec![b'"'];
        s.extend_from_slice(&[b'x'; 44]);
        s.push(b'"');
        assert_eq!(string_end(&s, 1), Ok((46, false)));
        let mut utf8 = s.clone();
        if let Some(b) = utf8.get_mut(pos + 1..pos + 3) {
            b.copy_from_slice("é".as_bytes());
        }
        assert_eq!(string_end(&utf8, 1), Ok((46, false)), "é at {pos}");
        if let Some(b) = utf8.get_mut(pos + 1) {
            *b = 0xFF;
        }
        assert_eq!(
            string_end(&utf8, 1).map_err(|e| (e.what, e.at)),
            Err(("invalid UTF-8", pos + 1))
        );
        let mut quote = s.clone();
        if let Some(b) = quote.get_mut(pos + 1) {
            *b = b'"';
        }
        assert_eq!(
            string_end(&quote, 1),
            Ok((pos + 2, false)),
            "quote at {pos}"
        );
        let mut control = s.clone();
        if let Some(b) = control.get_mut(pos + 1) {
            *b = 0x1f;
        }
        assert_eq!(
            string_end(&control, 1).map_err(|e| (e.what, e.at)),
            Err(("control character in a string", pos + 1))
        );
        let mut escape = s.clone();
        if let Some(b) = escape.get_mut(pos + 1) {
            *b = b'\\';
        }
        // `\x` is not an escape.
        assert_eq!(
            string_end(&escape, 1).map_err(|e| (e.what, e.at)),
            Err(("invalid escape", pos + 1))
        );
    }
}

#[test]
fn block_masks_match_the_byte_by_byte_reference() {
    // Every byte value at every position of a block, over a background of bytes near each
    // class boundary.
    let background: Vec<u8> = b"ab\"\\\x00\x1f \x7f\x80\xffz09\t\n\r:"
        .iter()
        .copied()
        .cycle()
        .take(32)
        .collect();
    for pos in 0..32 {
        for b in 0..=255u8 {
            let mut block = [0u8; 32];
            block.copy_from_slice(&background);
            if let Some(slot) = block.get_mut(pos) {
                *slot = b;
            }
            let (mut special, mut quote, mut high, mut space) = (0u32, 0u32, 0u32, 0u32);
            for (k, &c) in block.iter().enumerate() {
                if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
                    special |= 1 << k;
                }
                if c == b'"' {
                    quote |= 1 << k;
                }
                if c >= 0x80 {
                    high |= 1 << k;
                }
                if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                    space |= 1 << k;
                }
            }
            assert_eq!(masks32(&block), (special, high), "byte {b:#x} at {pos}");
            assert_eq!(masks32_quote(&block), (special, quote));
            assert_eq!(halves(&block, masks16), (special, high));
            assert_eq!(halves(&block, masks16_quote), (special, quote));
            assert_eq!(halves(&block, masks16_portable), (special, quote));
            #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
            assert_eq!(space32(&block), space);
            let _ = space;
        }
    }
}

#[test]
fn number_blocks_agree_with_the_general_number_scan() {
    let texts = [
        "0",
        "-0",
        "7",
        "-7",
        "10",
        "123456789012345",
        "1234567890123456",
        "0.5",
        "-0.25",
        "1.",
        "1.e5",
        ".5",
        "01",
        "-",
        "-a",
        "1e",
        "1e5",
        "1E+5",
        "1e-05",
        "1e+",
        "2.5e",
        "9.99e-300",
        "0.000000000001",
        "123.456e789",
        "1.2.3",
        "00",
        "-01",
        "1e5e5",
        "12345678901234.5",
    ];
    for text in texts {
        for tail in ["", ",", "]", "}", " ", "x", ".", "e", "0123456789012345678"] {
            let mut s = format!("{text}{tail}").into_bytes();
            // Short inputs get padding, so the fast path always has its block.
            s.resize(s.len().max(16), b' ');
            let Some(block) = s.first_chunk::<16>() else {
                continue;
            };
            let general = number_end(&s, 0);
            match number_fast(block) {
                Some(n) => assert_eq!(general, Ok(n), "{text:?}{tail:?}"),
                // The fast path gives up only on errors and numbers reaching the block's end.
                None => assert!(
                    general.is_err() || general.is_ok_and(|n| n >= 16),
                    "{text:?}{tail:?}: {general:?}"
                ),
            }
        }
    }
}
