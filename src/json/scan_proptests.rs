//! Differential property tests for the validating scanner: on generated and mutated inputs,
//! `scan::validate` (and the member and element iterators) accept exactly what serde_json
//! accepts, with the scanner's documented differences accounted for:
//!
//! - whatever follows the first value is ignored (KrakenD's `json.Decoder.Decode`), so the
//!   comparison is on "one value, then only whitespace", which is what `serde_json::from_slice`
//!   accepts;
//! - invalid UTF-8 inside a string is refused by the scanner, while serde's `IgnoredAny` never
//!   looks at string bytes: serde's answer counts only when the whole input is UTF-8;
//! - lone surrogate escapes (`"\ud800"`): Go and the scanner accept them, and so does serde's
//!   `IgnoredAny` (it checks only the four hex digits), so they need no exclusion;
//! - nesting deeper than `MAX_DEPTH`: never generated here (the unit tests pin the cap).
//!
//! The generators are biased towards the scanner's fast paths and their edges: compact members
//! (`,"key":"value"`) with keys and values around the 16- and 32-byte block sizes, numbers
//! around the 16-byte number block, whitespace and escapes in between, and every input is also
//! tried truncated and byte-mutated, which moves the end of the buffer across each fast path's
//! bounds check.

use super::scan::{self, Elements, Members};
use proptest::prelude::*;

/// serde_json's verdict on the whole input, adjusted as the module comment says.
fn expected(input: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(input).is_ok()
        && std::str::from_utf8(input).is_ok()
}

/// The scanner's verdict on the whole input: a valid first value and only whitespace after it.
fn scanned(input: &[u8]) -> bool {
    match scan::validate(input) {
        Ok(range) => input.get(range.end..).is_some_and(|rest| {
            rest.iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        }),
        Err(_) => false,
    }
}

/// Every check for one input: validate against serde, and the iterators against validate.
fn check(input: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        scanned(input),
        expected(input),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    let valid = scan::validate(input);
    let first = input
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    // The iterators validate every member or element: all of them come out Ok exactly when the
    // value is valid and of their kind, and their ranges lie inside the value.
    let members: Result<Vec<_>, _> = Members::new(input).collect();
    prop_assert_eq!(
        members.is_ok(),
        valid.is_ok() && first == Some(b'{'),
        "members of {:?}",
        String::from_utf8_lossy(input)
    );
    let elements: Result<Vec<_>, _> = Elements::new(input).collect();
    prop_assert_eq!(
        elements.is_ok(),
        valid.is_ok() && first == Some(b'['),
        "elements of {:?}",
        String::from_utf8_lossy(input)
    );
    if let (Ok(members), Ok(range)) = (&members, &valid) {
        for m in members {
            prop_assert!(range.start < m.key.start && m.value.end <= range.end);
            // A member's value is itself one valid value, exactly.
            let value = input.get(m.value.clone()).unwrap_or_default();
            prop_assert_eq!(scan::validate(value).map(|r| r.len()), Ok(value.len()));
        }
    }
    Ok(())
}

/// String contents: plain ASCII runs of block-edge lengths, escapes, non-ASCII, and the odd
/// byte that should be refused (controls, a bare backslash, invalid UTF-8).
fn string_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => (0usize..40).prop_map(|n| vec![b'x'; n]),
        2 => prop::sample::select(vec![
            &br#"\""#[..], br"\\", br"\/", br"\b", br"\f", br"\n", br"\r", br"\t",
            br"\u00e9", br"\uD83D\uDE00", br"\ud800", br"\uDFFF", br"\u12G4", br"\u12",
            br"\x", br"\", "é".as_bytes(), "日本".as_bytes(), "😀".as_bytes(),
            b"\x01", b"\x1f", b"\x7f", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\xe2\x82", b"\xc0\xaf", b" ", b"\t",
        ]).prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|v| v.concat())
}

/// Numbers, mostly valid, some just outside Go's grammar, lengths around 16.
fn number() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<i64>()).prop_map(|n| n.to_string().into_bytes()),
        (any::<f64>()).prop_map(|f| format!("{f:e}").into_bytes()),
        (any::<f32>()).prop_map(|f| f.to_string().into_bytes()),
        (0usize..24, 0usize..20, 0usize..4).prop_map(|(a, b, e)| {
            let mut s = "1".repeat(a.max(1));
            if b > 0 {
                s.push('.');
                s.push_str(&"2".repeat(b - 1));
            }
            if e > 0 {
                s.push_str(["e", "E+", "e-"][e % 3]);
                s.push_str(&"3".repeat(e - 1));
            }
            s.into_bytes()
        }),
        prop::sample::select(vec![
            "0", "-0", "-", "01", "-01", "1.", ".5", "1e", "1e+", "1E-0", "0.0e0", "-0.5E+12",
            "1.5e", "0x1", "1_0", "+1", "--1", "1.2.3", "00",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// Whitespace between tokens: mostly none (compact JSON is the fast path), sometimes some.
fn gap() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(Vec::new()),
        1 => prop::sample::select(vec![" ", "\n  ", "\t", "\r\n", "    "])
            .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// JSON-ish text: a recursive value generator whose leaves are mostly valid.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let quoted = string_body().prop_map(|s| [&b"\""[..], &s, b"\""].concat());
    let leaf = prop_oneof![
        3 => quoted,
        2 => number(),
        1 => prop::sample::select(vec!["true", "false", "null", "tru", "nul", "True"])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    leaf.prop_recursive(6, 128, 8, |inner| {
        let member = (gap(), string_body(), gap(), gap(), inner.clone(), gap()).prop_map(
            |(g1, key, g2, g3, v, g4)| {
                [&g1[..], b"\"", &key, b"\"", &g2, b":", &g3, &v, &g4].concat()
            },
        );
        prop_oneof![
            prop::collection::vec(member, 0..8).prop_map(|ms| [
                &b"{"[..],
                &ms.join(&b","[..]),
                b"}"
            ]
            .concat()),
            prop::collection::vec((gap(), inner, gap()), 0..8).prop_map(|es| {
                let es: Vec<Vec<u8>> = es.into_iter().map(|(a, v, b)| [a, v, b].concat()).collect();
                [&b"["[..], &es.join(&b","[..]), b"]"].concat()
            }),
        ]
    })
}

/// A byte-level edit: replace, insert or delete one byte, at a position given per mille.
#[derive(Clone, Debug)]
enum Edit {
    Replace(u16, u8),
    Insert(u16, u8),
    Delete(u16),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the grammar, plus any byte.
    let byte = prop_oneof![
        prop::sample::select(b"{}[],:\"\\ \n0-.eE+tfnu\x00\x1f\x80\xff".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (0u16..=1000, byte.clone()).prop_map(|(p, b)| Edit::Replace(p, b)),
        (0u16..=1000, byte).prop_map(|(p, b)| Edit::Insert(p, b)),
        (0u16..=1000).prop_map(Edit::Delete),
    ]
}

fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |p: u16, len: usize| len * usize::from(p) / 1000;
        match *e {
            Edit::Replace(p, b) => {
                let i = at(p, input.len());
                if let Some(slot) = input.get_mut(i) {
                    *slot = b;
                }
            }
            Edit::Insert(p, b) => {
                let i = at(p, input.len());
                input.insert(i, b);
            }
            Edit::Delete(p) => {
                let i = at(p, input.len());
                if i < input.len() {
                    input.remove(i);
                }
            }
        }
    }
    input
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn generated_values_match_serde(v in value()) {
        check(&v)?;
        // Every truncation: the end of the buffer lands inside each token and fast path.
        for cut in 0..v.len() {
            check(v.get(..cut).unwrap_or_default())?;
        }
    }

    #[test]
    fn mutated_values_match_serde(v in value(), edits in prop::collection::vec(edit(), 1..4)) {
        check(&apply(v, &edits))?;
    }

    #[test]
    fn mock_backend_shapes_match_serde(
        keys in prop::collection::vec((0usize..24, 0usize..40), 1..40),
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        // The gateway's hot shape: a flat object of short string members.
        let members: Vec<String> = keys
            .iter()
            .map(|&(k, v)| format!(r#""{}":"{}""#, "k".repeat(k), "v".repeat(v)))
            .collect();
        let body = format!("{{{}}}", members.join(",")).into_bytes();
        check(&apply(body, &edits))?;
    }

    #[test]
    fn byte_soup_matches_serde(v in prop::collection::vec(
        prop_oneof![
            prop::sample::select(b"{}[],:\"\\ 0123456789-.eE+tfnrulse\t\n\xc3\xa9".to_vec()),
            any::<u8>(),
        ],
        0..64,
    )) {
        check(&v)?;
    }
}
