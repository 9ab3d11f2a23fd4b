//! Replays answers recorded from the real KrakenD CE 2.13.8 (`krakend-ce-2.13.8.jsonl`, format
//! in `CORPUS.md`) against this gateway: real backends on 127.0.0.1 answer as recorded, the
//! client request is sent as recorded, and the status, headers, body (as JSON, numbers by their
//! text) and every request the backends received are compared with KrakenD's.
//!
//! Differences are sorted into classes (`compare.rs`); the classes we differ in on purpose are
//! listed, each with its reason, in `intended.json` (the README's "where we differ" says the same).
//! Any other class fails the test. The last line printed is the summary:
//! `differential: N scenarios, M match, K intended differences, F unexpected`.
//!
//! Scenarios that share their service-level settings run in one gateway (each scenario has its
//! own endpoint and backend prefixes), several at a time, so the 1,000 lines take seconds.
//! `DIFF_ONLY=id,id` replays only those lines; `DIFF_REPORT=FILE` writes every difference there.

// Test code: the lints that guard the request path do not apply (see tests/common/mod.rs).
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod compare;
mod json;

use common::{Backend, Conn, Gateway, Reply};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CORPUS: &str = include_str!("krakend-ce-2.13.8.jsonl");
const INTENDED: &str = include_str!("intended.json");
/// Scenarios in flight at once within one gateway.
const PARALLEL: usize = 24;

/// What one backend prefix answers.
struct Answer {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
    delay: Duration,
}

fn answers_of(line: &Value) -> Vec<(String, Answer)> {
    let mut out = Vec::new();
    if let Some(map) = line["backends"].as_object() {
        for (prefix, a) in map {
            out.push((
                prefix.clone(),
                Answer {
                    status: a["status"].as_u64().unwrap_or(200) as u16,
                    body: a["body_text"].as_str().unwrap_or("").to_string(),
                    headers: pairs(&a["headers"]),
                    delay: Duration::from_secs_f64(a["delay"].as_f64().unwrap_or(0.0)),
                },
            ));
        }
    }
    out
}

/// `[[name, value], ...]` as owned pairs.
pub fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The prefix a backend path belongs to: the longest one it starts with.
fn prefix_of<'a>(path: &str, prefixes: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    prefixes
        .filter(|p| path.starts_with(p.as_str()))
        .max_by_key(|p| p.len())
}

/// One backend server for a group of scenarios: each prefix answers as recorded, with the
/// `Server` header the recording backend sent (no-op endpoints pass it through).
fn start_backend(answers: Arc<HashMap<String, Answer>>) -> Backend {
    Backend::start(move |req| {
        let Some(a) = prefix_of(&req.path, answers.keys()).and_then(|p| answers.get(p)) else {
            return Reply::status(599).body("no such prefix in the corpus");
        };
        let mut reply = Reply::status(a.status).header("Server", "fz-backend");
        for (k, v) in &a.headers {
            reply = reply.header(k, v);
        }
        reply.body(a.body.as_bytes()).delay(a.delay)
    })
}

/// The config of a group: the first line's service settings with every line's endpoints, the
/// recorded backend address replaced by ours.
fn group_config(lines: &[&Value], backend: &str) -> String {
    let mut cfg = lines[0]["krakend_json"].clone();
    let endpoints: Vec<Value> = lines
        .iter()
        .flat_map(|l| {
            l["krakend_json"]["endpoints"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    cfg["endpoints"] = Value::Array(endpoints);
    cfg.to_string().replace("http://127.0.0.1:8000", backend)
}

/// The service-level settings (everything but the endpoints), the grouping key.
fn service_key(line: &Value) -> String {
    let mut cfg = line["krakend_json"].clone();
    if let Some(o) = cfg.as_object_mut() {
        o.remove("endpoints");
    }
    cfg.to_string()
}

/// Lines that can share one gateway: same service settings, and no two with endpoints under the
/// same first two path segments (other seeds reuse `/rN/eNNN`) or overlapping backend prefixes.
fn group(lines: &[Value]) -> Vec<Vec<&Value>> {
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    let route_key = |l: &Value| -> Vec<String> {
        l["krakend_json"]["endpoints"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["endpoint"].as_str())
                    .map(|p| p.split('/').take(3).collect::<Vec<_>>().join("/"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let prefixes = |l: &Value| -> Vec<String> {
        l["backends"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let clash = |a: &Value, b: &Value| {
        let (ra, rb) = (route_key(a), route_key(b));
        let (pa, pb) = (prefixes(a), prefixes(b));
        ra.iter().any(|r| rb.contains(r))
            || pa.iter().any(|x| {
                pb.iter()
                    .any(|y| x.starts_with(y.as_str()) || y.starts_with(x.as_str()))
            })
    };
    for l in lines {
        let key = service_key(l);
        let slot = groups
            .iter_mut()
            .find(|(k, g)| *k == key && g.iter().all(|o| !clash(o, l)));
        match slot {
            Some((_, g)) => g.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// The README's table of intended differences names exactly the classes of `intended.json`.
fn readme_lists_the_intended_classes(intended: &BTreeMap<String, String>) {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("<!-- differential:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- differential:end -->").next())
        .expect("README.md has a <!-- differential:begin/end --> table");
    let listed: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    let wanted: Vec<&str> = intended.keys().map(String::as_str).collect();
    if listed_sorted != wanted {
        eprintln!(
            "differential: README.md lists {listed_sorted:?} but tests/differential/intended.json has {wanted:?}"
        );
        std::process::exit(1);
    }
}

/// What our gateway did with one scenario.
pub struct Observed {
    /// None when the config was refused at startup; Err when no response came.
    pub response: Option<Result<common::Response, String>>,
    /// What `proxy check` said when it refused the config.
    pub refusal: Option<String>,
    pub backend_requests: Vec<Vec<common::Recorded>>,
    pub alive_after: bool,
}

fn send(gw: &Gateway, line: &Value) -> Result<common::Response, String> {
    let req = &line["request"];
    let method = req["method"].as_str().unwrap_or("GET");
    let query = req["query"].as_str().unwrap_or("");
    let mut target = req["path"].as_str().unwrap_or("/").to_string();
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    let headers = pairs(&req["headers"]);
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = req["body_text"].as_str().unwrap_or("");
    let mut conn = Conn::open(gw.addr()).map_err(|e| format!("connect: {e}"))?;
    conn.send(method, &target, &hdrs, body.as_bytes())
        .map_err(|e| format!("no response: {e}"))
}

fn alive(gw: &Gateway) -> bool {
    Conn::open(gw.addr())
        .and_then(|mut c| c.send("GET", "/__health", &[], b""))
        .is_ok_and(|r| r.status == 200)
}

/// Run the lines of one group (same service settings) and observe each.
fn run_group(lines: &[&Value]) -> Vec<Observed> {
    let mut answers = HashMap::new();
    for l in lines {
        answers.extend(answers_of(l));
    }
    let backend = start_backend(Arc::new(answers));
    let url = backend.url();
    // Lines whose config we refuse run without the others (their result is "refused").
    // Each line's config is checked alone, several at a time, so a refused one is known.
    let checks: Vec<Mutex<Option<String>>> = lines.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(l) = lines.get(i) else { break };
                let (code, out, err) = common::check(&group_config(&[l], &url));
                *checks[i].lock().unwrap() = (code != 0).then(|| format!("{out}{err}"));
            });
        }
    });
    let checks: Vec<Option<String>> = checks
        .into_iter()
        .map(|m| m.into_inner().unwrap())
        .collect();
    let refused: Vec<bool> = checks.iter().map(Option::is_some).collect();
    let served: Vec<&Value> = lines
        .iter()
        .zip(&refused)
        .filter(|(_, r)| !**r)
        .map(|(l, _)| *l)
        .collect();
    let gw = if served.is_empty() {
        None
    } else {
        let cfg = group_config(&served, &url);
        Some(Gateway::try_start_with(&cfg, &[], &[]).unwrap_or_else(|e| panic!("{e}")))
    };
    let results: Vec<Mutex<Option<Result<common::Response, String>>>> =
        lines.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(lines.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(line) = lines.get(i) else { break };
                if refused[i] {
                    continue;
                }
                if let Some(gw) = &gw {
                    let r = send(gw, line);
                    *results[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    // Backends of a timed-out call may still be answering: let them finish recording.
    std::thread::sleep(Duration::from_millis(100));
    let alive_after = gw.as_ref().is_some_and(alive);
    let all = backend.requests();
    lines
        .iter()
        .zip(results)
        .zip(checks)
        .map(|((line, r), refusal)| {
            let prefixes: Vec<String> = line["backend_prefixes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let own: Vec<String> = line["backends"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let backend_requests = prefixes
                .iter()
                .map(|p| {
                    all.iter()
                        .filter(|r| prefix_of(&r.path, own.iter()) == Some(p))
                        .cloned()
                        .collect()
                })
                .collect();
            Observed {
                response: r.into_inner().unwrap(),
                refusal,
                backend_requests,
                alive_after,
            }
        })
        .collect()
}

/// `harness = false` (Cargo.toml), so that the summary line is printed by `cargo test` even
/// when the replay passes.
fn main() {
    json::self_test();
    replaying_krakend_ce_recordings_shows_no_unexpected_difference();
}

fn replaying_krakend_ce_recordings_shows_no_unexpected_difference() {
    let allow: Value = serde_json::from_str(INTENDED).expect("intended.json is JSON");
    let intended: BTreeMap<String, String> = serde_json::from_value(allow["intended"].clone())
        .expect("intended.json: `intended` maps each class to its reason");
    let only: Option<Vec<String>> = std::env::var("DIFF_ONLY")
        .ok()
        .map(|s| s.split(',').map(String::from).collect());
    let lines: Vec<Value> = CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .filter(|l: &Value| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|id| l["id"].as_str() == Some(id)))
        })
        .collect();
    let groups = group(&lines);
    let (mut matched, mut intended_n, mut unexpected) = (0, 0, 0);
    readme_lists_the_intended_classes(&intended);
    let mut class_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut report = String::new();
    for group in &groups {
        let observed = run_group(group);
        for (line, obs) in group.iter().zip(&observed) {
            let diffs = compare::scenario(line, obs);
            let mut classes: Vec<&str> = diffs.iter().map(|d| d.class.as_str()).collect();
            classes.sort_unstable();
            classes.dedup();
            for c in &classes {
                *class_counts.entry((*c).to_string()).or_default() += 1;
            }
            let id = line["id"].as_str().unwrap_or("?");
            let bad: Vec<&compare::Difference> = diffs
                .iter()
                .filter(|d| !intended.contains_key(&d.class))
                .collect();
            if diffs.is_empty() {
                matched += 1;
            } else if bad.is_empty() {
                intended_n += 1;
            } else {
                unexpected += 1;
                if unexpected <= 40 {
                    println!("UNEXPECTED {id} {:?}", line["tags"]);
                    for d in bad.iter().take(6) {
                        println!("    {}: {}", d.class, d.detail);
                    }
                }
            }
            for d in &diffs {
                report.push_str(&format!("{id}\t{}\t{}\n", d.class, d.detail));
            }
        }
    }
    if let Ok(path) = std::env::var("DIFF_REPORT") {
        std::fs::write(&path, &report).expect("write DIFF_REPORT");
    }
    println!("classes (scenarios each): {class_counts:?}");
    for class in class_counts.keys() {
        if let Some(reason) = intended.get(class) {
            println!("  intended {class}: {reason}");
        }
    }
    println!(
        "differential: {} scenarios, {matched} match, {intended_n} intended differences, {unexpected} unexpected",
        lines.len()
    );
    if unexpected > 0 {
        eprintln!("differential: unexpected differences from KrakenD CE (listed above)");
        std::process::exit(1);
    }
}
