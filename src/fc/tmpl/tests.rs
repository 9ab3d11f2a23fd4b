#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use serde_json::json;

fn env_of(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("api.example.com".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn partial(name: &str) -> Result<String, String> {
    match name {
        "rate.json" => Ok("{\"max_rate\": 10}".into()),
        other => Err(format!("open {other}: no such file")),
    }
}

fn render_set(files: &[(&str, &str)], main: &str, data: Value) -> Result<String, String> {
    let mut set = Set::default();
    for (name, text) in files {
        set.add(name, name, text.to_string())
            .map_err(|e| show(&set, &e))?;
    }
    let env = Env {
        var: &env_of,
        include: &partial,
    };
    set.render(main, &data, &env)
        .map(|r| r.text)
        .map_err(|e| show(&set, &e))
}

fn show(set: &Set, e: &TmplError) -> String {
    let (f, l, c) = set.describe(e);
    format!("{f}:{l}:{c}: {}", e.message)
}

fn render(t: &str, data: Value) -> String {
    render_set(&[("t", t)], "t", data).unwrap()
}

fn render_err(t: &str, data: Value) -> String {
    render_set(&[("t", t)], "t", data).unwrap_err()
}

#[test]
fn fields_variables_and_pipelines() {
    let d = json!({"service": {"port": 8080.0, "name": "gw"}});
    assert_eq!(
        render("{{ .service.name }}:{{ .service.port }}", d.clone()),
        "gw:8080"
    );
    assert_eq!(
        render("{{ $s := .service }}{{ $s.name | upper }}", d.clone()),
        "GW"
    );
    assert_eq!(
        render(
            "{{ $.service.name }}{{ with .service }}{{ .name }}{{ end }}",
            d
        ),
        "gwgw"
    );
    assert_eq!(render("{{ .missing }}", json!({})), "<no value>");
}

#[test]
fn whitespace_trimming_and_comments() {
    assert_eq!(render("a  {{- 1 -}}  b", json!({})), "a1b");
    assert_eq!(render("a {{- /* note */ -}}\n b", json!({})), "ab");
    assert_eq!(render("a {{/* x */}} b", json!({})), "a  b");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(render("a {{-3}}", json!({})), "a -3");
}

#[test]
fn if_else_if_and_comparisons() {
    let t = "{{ if eq .x 1 }}one{{ else if gt .x 5 }}big{{ else }}other{{ end }}";
    assert_eq!(render(t, json!({"x": 1})), "one");
    assert_eq!(render(t, json!({"x": 7.0})), "big");
    assert_eq!(render(t, json!({"x": 3})), "other");
    assert_eq!(
        render(
            "{{ if and .a (not .b) }}y{{ end }}",
            json!({"a": true, "b": false})
        ),
        "y"
    );
    assert_eq!(render("{{ or .none \"fallback\" }}", json!({})), "fallback");
    assert_eq!(
        render("{{ if ne .s \"x\" }}diff{{ end }}", json!({"s": "y"})),
        "diff"
    );
    assert_eq!(
        render(
            "{{ if le 2 2 }}le{{ end }}{{ if lt \"a\" \"b\" }}lt{{ end }}",
            json!({})
        ),
        "lelt"
    );
}

#[test]
fn range_with_index_maps_in_key_order_else_break_continue() {
    let d = json!({"l": ["a", "b", "c"], "m": {"z": 1, "a": 2}, "e": []});
    assert_eq!(
        render(
            "{{ range $i, $e := .l }}{{ if $i }},{{ end }}{{ $e }}{{ end }}",
            d.clone()
        ),
        "a,b,c"
    );
    assert_eq!(
        render(
            "{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}",
            d.clone()
        ),
        "a=2;z=1;"
    );
    assert_eq!(
        render("{{ range .e }}x{{ else }}empty{{ end }}", d.clone()),
        "empty"
    );
    assert_eq!(
        render("{{ range .l }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ if eq . \"c\" }}{{ break }}{{ end }}{{ . }}{{ end }}", d),
        "a"
    );
}

#[test]
fn define_template_and_block() {
    let out = render_set(
        &[
            ("main.tmpl", "[{{ template \"item\" .a }},{{ template \"other.tmpl\" . }}]{{ define \"item\" }}<{{ . }}>{{ end }}"),
            ("other.tmpl", "{{ .b }}"),
        ],
        "main.tmpl",
        json!({"a": "A", "b": "B"}),
    )
    .unwrap();
    assert_eq!(out, "[<A>,B]");
    assert_eq!(
        render(
            "{{ block \"x\" . }}default {{ .v }}{{ end }}",
            json!({"v": 1})
        ),
        "default 1"
    );
}

#[test]
fn variables_are_scoped_to_their_block_and_can_be_reassigned() {
    assert_eq!(
        render(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            json!({})
        ),
        "2"
    );
    let e = render_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", json!({}));
    assert!(e.contains("undefined variable: $y"), "{e}");
}

#[test]
fn krakend_functions_marshal_and_include() {
    let d = json!({"cfg": {"b": [1, "x<y"], "a": 1.5, "n": null}});
    assert_eq!(
        render("{{ marshal .cfg }}", d),
        r#"{"a":1.5,"b":[1,"x\u003cy"],"n":null}"#
    );
    assert_eq!(
        render("{{ include \"rate.json\" }}", json!({})),
        "{\"max_rate\": 10}"
    );
    let e = render_err("\n  {{ include \"nope.json\" }}", json!({}));
    assert!(e.starts_with("t:2:6: open nope.json"), "{e}");
}

#[test]
fn sprig_functions() {
    let d = json!({"port": 8080.0, "list": ["a", "b"]});
    let cases = [
        ("{{ env \"HOST\" }}", "api.example.com"),
        ("{{ env \"NOPE\" | default \"local\" }}", "local"),
        ("{{ env \"EMPTY\" | default \"d\" }}", "d"),
        (
            "{{ expandenv \"https://$HOST/${HOST}\" }}",
            "https://api.example.com/api.example.com",
        ),
        ("{{ add .port 1 }}", "8081"),
        (
            "{{ sub 10 3 }}{{ mul 2 3 }}{{ div 7 2 }}{{ mod 7 2 }}{{ add1 1 }}",
            "76312",
        ),
        ("{{ \"hi\" | b64enc }}", "aGk="),
        ("{{ b64dec \"aGk=\" }}", "hi"),
        ("{{ toJson (list 1 \"a\" true) }}", "[1,\"a\",true]"),
        ("{{ toJson (dict \"b\" 1 \"a\" 2) }}", "{\"a\":2,\"b\":1}"),
        ("{{ join \",\" .list }}", "a,b"),
        ("{{ quote \"x\" }}", "\"x\""),
        ("{{ ternary \"y\" \"n\" true }}", "y"),
        ("{{ trimSuffix \"/\" \"http://a/\" }}", "http://a"),
        ("{{ replace \"a\" \"b\" \"aXa\" }}", "bXb"),
        ("{{ hasKey (dict \"a\" 1) \"a\" }}", "true"),
        ("{{ len .list }}{{ index .list 1 }}", "2b"),
        ("{{ printf \"%s:%d/%05.1f\" \"a\" 3 2.5 }}", "a:3/002.5"),
        ("{{ range until 3 }}{{ . }}{{ end }}", "012"),
        ("{{ coalesce .none \"\" \"c\" }}", "c"),
        ("{{ upper \"a\" | lower }}", "a"),
        ("{{ 1000000.0 }}|{{ 3.5 }}", "1e+06|3.5"),
    ];
    for (t, want) in cases {
        assert_eq!(render(t, d.clone()), want, "{t}");
    }
}

#[test]
fn errors_carry_file_line_and_column() {
    assert_eq!(
        render_err("{\n  \"a\": {{ .x.y }}\n}", json!({})),
        "t:2:11: nil pointer evaluating .x.y: .x is missing or null"
    );
    assert_eq!(
        render_err("ok\n{{ if .a }}x", json!({})),
        "t:2:1: this {{if}} has no {{end}}"
    );
    assert_eq!(
        render_err("\n\n  {{ nope 1 }}", json!({})),
        "t:3:6: function \"nope\" not defined"
    );
    // Also in a branch not taken today: Go checks functions at parse time.
    assert_eq!(
        render_err("{{ if false }}{{ (uper .x) }}{{ end }}", json!({})),
        "t:1:19: function \"uper\" not defined"
    );
    assert_eq!(
        render_err("{{ template \"gone\" }}", json!({})),
        "t:1:1: no such template \"gone\""
    );
    assert!(render_err("{{ \"abc }}", json!({})).starts_with("t:1:4: unterminated"));
    assert_eq!(
        render_err(
            "{{ define \"a\" }}{{ template \"a\" }}{{ end }}{{ template \"a\" }}",
            json!({})
        ),
        "t:1:17: exceeded maximum template depth (100)"
    );
}

#[test]
fn origins_map_output_bytes_back_to_the_source() {
    let mut set = Set::default();
    set.add("t", "t", "ab\n{{ .x }}\ncd".into()).unwrap();
    let env = Env {
        var: &env_of,
        include: &partial,
    };
    let r = set.render("t", &json!({"x": "XY"}), &env).unwrap();
    assert_eq!(r.text, "ab\nXY\ncd");
    assert_eq!(
        r.origins[0],
        Origin {
            out: 0,
            file: 0,
            src: 0,
            verbatim: true
        }
    );
    assert_eq!(
        r.origins[1],
        Origin {
            out: 3,
            file: 0,
            src: 3,
            verbatim: false
        }
    );
    assert_eq!(
        r.origins[2],
        Origin {
            out: 5,
            file: 0,
            src: 11,
            verbatim: true
        }
    );
}

#[test]
fn go_formatting_of_numbers_lists_and_json() {
    let d = json!({"f": 2.5, "big": 1e21, "l": [1, "a", null], "m": {"b": 1, "a": [true]}});
    assert_eq!(
        render("{{ .f }} {{ .l }} {{ .m }}", d.clone()),
        "2.5 [1 a <nil>] map[a:[true] b:1]"
    );
    assert_eq!(
        render("{{ marshal .big }}|{{ toPrettyJson .m }}", d.clone()),
        "1e+21|{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}"
    );
    assert_eq!(
        render(
            "{{ printf \"%-4s|%4d|%x|%q|%v\" \"ab\" 7 255 \"q\" .l }}",
            d.clone()
        ),
        "ab  |   7|ff|\"q\"|[1 a <nil>]"
    );
    assert_eq!(
        render("{{ print 1 2 \"a\" 3 }}|{{ println 1 \"a\" }}", d.clone()),
        "1 2a3|1 a\n"
    );
    assert_eq!(
        render("{{ slice .l 1 2 }}{{ index .m \"b\" }}{{ index .l 1 }}", d),
        "[a]1a"
    );
}

#[test]
fn else_with_chains_and_define_overrides_block() {
    assert_eq!(
        render(
            "{{ with .a }}A{{ else with .b }}B{{ . }}{{ else }}none{{ end }}",
            json!({"b": 2})
        ),
        "B2"
    );
    let out = render_set(
        &[
            ("t", "[{{ block \"x\" . }}default{{ end }}]"),
            ("u", "{{ define \"x\" }}custom{{ end }}"),
        ],
        "t",
        json!({}),
    )
    .unwrap();
    assert_eq!(out, "[custom]");
}

#[test]
fn a_template_that_spins_without_output_is_stopped() {
    let e = render_err(
        "{{ range until 1000000 }}{{ range until 1000000 }}{{ end }}{{ end }}",
        json!({}),
    );
    assert!(e.contains("runs more than 5000000 steps"), "{e}");
}
