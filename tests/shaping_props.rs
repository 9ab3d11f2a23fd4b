//! Property: the zero-copy shaping path gives the same JSON *value* as a straightforward
//! `serde_json::Value` reference implementation of KrakenD's rules, for random documents and
//! random target/allow/deny/mapping/group/flatmap configurations.

// The reference implementation is test code: indexing and unwrap keep it short and obvious.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::prelude::*;
use proxy::config::{Backend, Span};
use proxy::json::BackendShape;
use serde_json::{Map, Value};

const KEYS: &[&str] = &["a", "b", "c", "0", "1"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "[a-z\"\\\\\n<é\u{1}]{0,6}".prop_map(Value::String),
    ]
}

fn doc() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn top_doc() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), doc()), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(key(), 1..3).prop_map(|v| v.join("."))
}

fn fm_path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![key(), Just("*".to_owned())], 1..4)
}

#[derive(Clone, Debug)]
enum FmOp {
    Del(Vec<String>),
    Relabel(Vec<String>, String),
}

#[derive(Clone, Debug)]
struct Cfg {
    target: String,
    allow: Vec<String>,
    deny: Vec<String>,
    mapping: Vec<(String, String)>,
    group: String,
    flatmap: Option<FmOp>,
}

fn cfg() -> impl Strategy<Value = Cfg> {
    (
        prop_oneof![Just(String::new()), path()],
        prop::collection::vec(path(), 0..3),
        prop::collection::vec(path(), 0..3),
        prop::collection::btree_map(key(), key(), 0..3),
        prop_oneof![Just(String::new()), key()],
        prop_oneof![
            3 => Just(None),
            1 => fm_path().prop_map(|p| Some(FmOp::Del(p))),
            1 => (fm_path(), key()).prop_map(|(p, l)| {
                // The last source segment is matched literally; keep it a key.
                let mut p = p;
                if p.last().map(String::as_str) == Some("*") {
                    p.pop();
                    p.push("a".into());
                }
                Some(FmOp::Relabel(p, l))
            }),
        ],
    )
        .prop_map(|(target, allow, deny, mapping, group, flatmap)| Cfg {
            target,
            allow,
            deny,
            mapping: mapping.into_iter().collect(),
            group,
            flatmap,
        })
}

fn backend(c: &Cfg) -> Backend {
    let mut b = Backend {
        host: vec![],
        url_pattern: "/p".into(),
        method: "GET".into(),
        encoding: "json".into(),
        is_collection: false,
        target: c.target.clone(),
        allow: c.allow.clone(),
        deny: c.deny.clone(),
        mapping: c.mapping.clone(),
        group: c.group.clone(),
        sd: "static".into(),
        sd_scheme: String::new(),
        host_span: None,
        disable_host_sanitize: false,
        input_headers: vec![],
        input_query_strings: vec![],
        extra_config: Default::default(),
        span: Span::default(),
    };
    if let Some(op) = &c.flatmap {
        let op = match op {
            FmOp::Del(p) => serde_json::json!({"type": "del", "args": [p.join(".")]}),
            FmOp::Relabel(p, l) => {
                let mut dst = p.clone();
                dst.pop();
                dst.push(l.clone());
                serde_json::json!({"type": "move", "args": [p.join("."), dst.join(".")]})
            }
        };
        b.extra_config.insert(
            "proxy".into(),
            serde_json::json!({ "flatmap_filter": [op] }),
        );
    }
    b
}

// ---- the reference implementation, on serde_json::Value ----

fn target(mut data: Map<String, Value>, t: &str) -> Map<String, Value> {
    if t.is_empty() {
        return data;
    }
    for seg in t.split('.') {
        match data.remove(seg) {
            Some(Value::Object(m)) => data = m,
            _ => return Map::new(),
        }
    }
    data
}

#[derive(Default)]
struct Tree(Vec<(String, Option<Tree>)>);

impl Tree {
    fn get(&self, k: &str) -> Option<&Option<Tree>> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, t)| t)
    }
    fn slot(&mut self, k: &str) -> &mut Option<Tree> {
        if let Some(i) = self.0.iter().position(|(n, _)| n == k) {
            return &mut self.0[i].1;
        }
        self.0.push((k.to_owned(), None));
        let last = self.0.len() - 1;
        &mut self.0[last].1
    }
}

fn allow_tree(paths: &[String]) -> Tree {
    let mut root = Tree::default();
    for p in paths {
        let segs: Vec<&str> = p.split('.').collect();
        let mut node = &mut root;
        for s in &segs[..segs.len() - 1] {
            let slot = node.slot(s);
            if slot.is_none() {
                *slot = Some(Tree::default());
            }
            node = slot.as_mut().unwrap();
        }
        *node.slot(segs[segs.len() - 1]) = None;
    }
    root
}

fn deny_tree(paths: &[String]) -> Tree {
    let mut root = Tree::default();
    'outer: for p in paths {
        let segs: Vec<&str> = p.split('.').collect();
        let mut node = &mut root;
        for s in &segs[..segs.len() - 1] {
            let existed = node.get(s).is_some();
            let slot = node.slot(s);
            if !existed {
                *slot = Some(Tree::default());
            }
            match slot {
                Some(t) => node = t,
                None => continue 'outer,
            }
        }
        *node.slot(segs[segs.len() - 1]) = None;
    }
    root
}

fn allow(t: &Tree, m: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        match t.get(&k) {
            None => {}
            Some(None) => {
                out.insert(k, v);
            }
            Some(Some(sub)) => {
                if let Value::Object(inner) = v {
                    let kept = allow(sub, inner);
                    if !kept.is_empty() {
                        out.insert(k, Value::Object(kept));
                    }
                }
            }
        }
    }
    out
}

fn deny(t: &Tree, m: &mut Map<String, Value>) {
    for (k, rule) in &t.0 {
        match rule {
            None => {
                m.remove(k);
            }
            Some(sub) => {
                if let Some(Value::Object(inner)) = m.get_mut(k) {
                    deny(sub, inner);
                }
            }
        }
    }
}

fn mapping(m: Map<String, Value>, map: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut renamed = Vec::new();
    for (k, v) in m {
        match map.iter().position(|(f, _)| *f == k) {
            Some(i) => renamed.push((i, v)),
            None => {
                out.insert(k, v);
            }
        }
    }
    renamed.sort_by_key(|(i, _)| *i);
    for (i, v) in renamed {
        let to = map[i].1.split('.').next().unwrap_or_default().to_owned();
        out.insert(to, v);
    }
    out
}

fn fm_del(v: &mut Value, ks: &[String]) {
    let Some((first, rest)) = ks.split_first() else {
        return;
    };
    let was_nonempty = match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => return,
    };
    if !was_nonempty {
        return;
    }
    match v {
        Value::Object(m) => {
            if first == "*" {
                if rest.is_empty() {
                    m.clear();
                } else {
                    m.values_mut().for_each(|c| fm_del(c, rest));
                }
            } else if rest.is_empty() {
                m.shift_remove(first);
            } else if let Some(c) = m.get_mut(first) {
                fm_del(c, rest);
            }
        }
        Value::Array(a) => {
            if first == "*" {
                if rest.is_empty() {
                    a.clear();
                } else {
                    a.iter_mut().for_each(|c| fm_del(c, rest));
                }
            } else if let Some(i) = first.parse::<usize>().ok().filter(|i| *i < a.len()) {
                if rest.is_empty() {
                    a.remove(i);
                } else {
                    fm_del(&mut a[i], rest);
                }
            }
        }
        _ => {}
    }
    // KrakenD: a container whose children were all deleted has a nil value.
    let empty = match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        *v = Value::Null;
    }
}

fn fm_relabel(v: &mut Value, prefix: &[String], from: &str, to: &str) {
    match prefix.split_first() {
        Some((first, rest)) => match v {
            Value::Object(m) => {
                if first == "*" {
                    m.values_mut().for_each(|c| fm_relabel(c, rest, from, to));
                } else if let Some(c) = m.get_mut(first) {
                    fm_relabel(c, rest, from, to);
                }
            }
            Value::Array(a) => {
                if first == "*" {
                    a.iter_mut().for_each(|c| fm_relabel(c, rest, from, to));
                } else if let Some(c) = first.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    fm_relabel(c, rest, from, to);
                }
            }
            _ => {}
        },
        None => {
            // In arrays labels are not rendered, so only objects change.
            if let Value::Object(m) = v {
                if m.contains_key(from) && from != to {
                    let old = std::mem::take(m);
                    for (k, val) in old {
                        let k = if k == from { to.to_owned() } else { k };
                        m.shift_remove(&k);
                        m.insert(k, val);
                    }
                }
            }
        }
    }
}

fn reference(doc: &Value, c: &Cfg) -> Value {
    let Value::Object(m) = doc.clone() else {
        return Value::Null;
    };
    let mut data = target(m, &c.target);
    // KrakenD (recorded answers): flatmap operations that empty a map leave a nil map, which
    // renders `null` (under a group too).
    let mut nil = false;
    if let Some(op) = &c.flatmap {
        let mut v = Value::Object(data);
        if !v.as_object().is_some_and(|m| m.is_empty()) {
            match op {
                FmOp::Del(p) => fm_del(&mut v, p),
                FmOp::Relabel(p, l) => {
                    let (last, prefix) = p.split_last().unwrap();
                    fm_relabel(&mut v, prefix, last, l);
                }
            }
            nil = v.is_null() || v.as_object().is_some_and(|m| m.is_empty());
        }
        data = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
    } else {
        if !c.allow.is_empty() {
            data = allow(&allow_tree(&c.allow), data);
        } else if !c.deny.is_empty() {
            deny(&deny_tree(&c.deny), &mut data);
        }
        data = mapping(data, &c.mapping);
    }
    let value = if nil {
        Value::Null
    } else {
        Value::Object(data)
    };
    if !c.group.is_empty() {
        let mut g = Map::new();
        g.insert(c.group.clone(), value);
        return Value::Object(g);
    }
    value
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn zero_copy_shaping_matches_the_value_reference(doc in top_doc(), c in cfg()) {
        let body = serde_json::to_vec(&doc).unwrap();
        // Compare against the document as parsed from the same text (float parsing is lossy).
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let shape = BackendShape::compile(&backend(&c)).unwrap();
        let fields = shape.apply(Bytes::from(body)).unwrap();
        let mut out = Vec::new();
        fields.write_object(&mut out);
        let got: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(got, reference(&doc, &c), "cfg {:?}", c);
    }
}
