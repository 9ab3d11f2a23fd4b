//! Question: how many instructions does validating a backend's JSON body cost, per shape?
//! Deterministic: run it under callgrind and read the inclusive count of each `shape_*`
//! function (each validates its body `RUNS` times):
//!
//! ```text
//! cargo build --profile fastrelease --bench json_validate
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/fastrelease/deps/json_validate-*
//! callgrind_annotate --inclusive=yes cg.out | grep shape_
//! ```
//!
//! Without valgrind it prints nanoseconds per validation instead (noisy on a shared machine).
//! Shapes: the mock backend's 1 KB body (`examples/mock_backend.rs`, the gateway's profiled
//! case), and others that must not get slower: arrays of objects, long strings, numbers,
//! nesting, escapes, non-ASCII text, pretty-printed JSON, a tiny body, 40-byte strings.

use std::hint::black_box;
use std::time::Instant;

const RUNS: usize = 100;

/// `examples/mock_backend.rs`'s `body(size)`.
fn mock(size: usize) -> String {
    let mut s = String::from(
        r#"{"id":42,"name":"Ada Lovelace","email":"ada@example.com","active":true,"score":97.5,"tags":["a","b","c"],"address":{"city":"London","zip":"N1"}"#,
    );
    let mut i = 0;
    while s.len() + 30 < size {
        s.push_str(&format!(r#","pad{i:04}":"{}""#, "x".repeat(12)));
        i += 1;
    }
    s.push('}');
    s
}

fn array_of_objects() -> String {
    let items: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"user {i}","active":{},"score":{}.5,"tags":["a","b"],"ref":null}}"#,
                i % 2 == 0,
                i * 3
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn long_strings() -> String {
    let long = "lorem ipsum dolor sit amet consectetur ".repeat(13);
    format!(r#"{{"a":"{long}","b":"{long}","c":"{long}","d":"{long}"}}"#)
}

fn numbers() -> String {
    let nums: Vec<String> = (0..150)
        .map(|i| match i % 4 {
            0 => format!("{}", i * 7919),
            1 => format!("-{}.{}", i, i * 13),
            2 => format!("{}.25e-{}", i, i % 9),
            _ => "0".into(),
        })
        .collect();
    format!(r#"{{"values":[{}]}}"#, nums.join(","))
}

fn nested() -> String {
    let one = r#"{"a":{"b":{"c":[{"d":[1,2,{"e":null}]},[],{}]},"f":[[["x"]]]}}"#;
    format!("[{}]", vec![one; 18].join(","))
}

fn escaped() -> String {
    let items: Vec<String> = (0..30)
        .map(|i| format!(r#""k{i}":"line \"{i}\"\n\ttab \\ back \u00e9\/""#))
        .collect();
    format!("{{{}}}", items.join(","))
}

fn non_ascii() -> String {
    let items: Vec<String> = (0..30)
        .map(|i| format!(r#""名前{i}":"Ünïcödé 日本語テキスト 😀 {i}""#))
        .collect();
    format!("{{{}}}", items.join(","))
}

fn tiny() -> String {
    r#"{"ok":true,"id":7}"#.to_string()
}

fn medium_strings() -> String {
    let items: Vec<String> = (0..20)
        .map(|i| {
            format!(r#""description_field_{i:02}":"a medium length value of forty bytes {i:02}""#)
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn pretty() -> String {
    let items: Vec<String> = (0..25)
        .map(|i| {
            format!("  \"field_{i}\": {{\n    \"id\": {i},\n    \"name\": \"value {i}\",\n    \"ok\": true\n  }}")
        })
        .collect();
    format!("{{\n{}\n}}\n", items.join(",\n"))
}

/// `shape` only keeps the per-shape functions apart: with identical bodies the compiler folds
/// them into one, and callgrind would report every shape under one name.
#[inline(always)]
fn run(body: &[u8], shape: u32) {
    black_box(shape);
    for _ in 0..RUNS {
        let r = proxy::json::validate_for_bench(black_box(body));
        assert!(r.is_ok());
        black_box(r.ok());
    }
}

// One function per shape, never inlined, so callgrind reports each on its own.
#[inline(never)]
fn shape_mock_1k(b: &[u8]) {
    run(b, 0)
}
#[inline(never)]
fn shape_array_objects(b: &[u8]) {
    run(b, 1)
}
#[inline(never)]
fn shape_long_strings(b: &[u8]) {
    run(b, 2)
}
#[inline(never)]
fn shape_numbers(b: &[u8]) {
    run(b, 3)
}
#[inline(never)]
fn shape_nested(b: &[u8]) {
    run(b, 4)
}
#[inline(never)]
fn shape_escaped(b: &[u8]) {
    run(b, 5)
}
#[inline(never)]
fn shape_non_ascii(b: &[u8]) {
    run(b, 6)
}
#[inline(never)]
fn shape_pretty(b: &[u8]) {
    run(b, 7)
}

#[inline(never)]
fn shape_tiny(b: &[u8]) {
    run(b, 8)
}
#[inline(never)]
fn shape_medium_strings(b: &[u8]) {
    run(b, 9)
}

type Shape = (&'static str, String, fn(&[u8]));

fn main() {
    let shapes: [Shape; 10] = [
        ("mock_1k", mock(1024), shape_mock_1k),
        ("array_objects", array_of_objects(), shape_array_objects),
        ("long_strings", long_strings(), shape_long_strings),
        ("numbers", numbers(), shape_numbers),
        ("nested", nested(), shape_nested),
        ("escaped", escaped(), shape_escaped),
        ("non_ascii", non_ascii(), shape_non_ascii),
        ("pretty", pretty(), shape_pretty),
        ("tiny", tiny(), shape_tiny),
        ("medium_strings", medium_strings(), shape_medium_strings),
    ];
    // `cargo bench` passes --bench; under callgrind nothing is passed and one round suffices.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        2000
    } else {
        1
    };
    for (name, body, f) in &shapes {
        let start = Instant::now();
        for _ in 0..rounds {
            f(body.as_bytes());
        }
        let ns = start.elapsed().as_nanos() as f64 / (rounds * RUNS) as f64;
        println!("{name:>14}: {:5} bytes, {ns:8.0} ns/validate", body.len());
    }
}
