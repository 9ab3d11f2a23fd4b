//! Sorting what our gateway did into classes of difference from KrakenD's recorded answer.
//! Classes are behaviour classes (`status`, `body`, `header:<name>`, `backend-query`...), never
//! scenario ids, so the allow-list in `intended.json` can only excuse a whole behaviour.

use crate::json;
use crate::{pairs, Observed};
use serde_json::Value;

pub struct Difference {
    pub class: String,
    pub detail: String,
}

fn diff(out: &mut Vec<Difference>, class: impl Into<String>, detail: impl Into<String>) {
    out.push(Difference {
        class: class.into(),
        detail: detail.into(),
    });
}

/// Every difference between `obs` and the recorded line.
pub fn scenario(line: &Value, obs: &Observed) -> Vec<Difference> {
    let mut out = Vec::new();
    let crashed = line["reference_crashed"].as_bool().unwrap_or(false);
    match &obs.response {
        None => {
            let why = obs.refusal.clone().unwrap_or_default();
            diff(&mut out, refusal_class(&why, crashed), why)
        }
        Some(Err(e)) => diff(&mut out, "no-response", e.clone()),
        Some(Ok(_)) if crashed => {
            if !obs.alive_after {
                diff(&mut out, "gateway-died", "not alive after the request");
            } else {
                diff(
                    &mut out,
                    "answered-where-krakend-crashes",
                    "KrakenD panicked; we answered",
                );
            }
        }
        Some(Ok(resp)) => {
            response(resp, &line["response"], &mut out);
            backends(line, obs, &mut out);
        }
    }
    out
}

/// The class of a refused config, by what `proxy check` said.
fn refusal_class(why: &str, crashed: bool) -> &'static str {
    if why.contains("(move): needs exactly two args")
        || why.contains("(append): needs exactly two args")
    {
        // KrakenD indexes the second arg unchecked: a panic each time the op runs.
        "refused-flatmap-op-arity"
    } else if crashed {
        "refused-where-krakend-crashes"
    } else {
        "refused"
    }
}

fn response(ours: &crate::common::Response, theirs: &Value, out: &mut Vec<Difference>) {
    let status = theirs["status"].as_u64().unwrap_or(0) as u16;
    if ours.status != status {
        diff(out, "status", format!("{} vs {status}", ours.status));
    }
    let their_headers = pairs(&theirs["headers"]);
    headers(
        &ours.headers,
        &their_headers,
        "header",
        out,
        |name, ours, theirs| match name {
            "date" => true,
            "x-krakend" => ours.len() == 1 && ours[0].starts_with("Version ") && theirs.len() == 1,
            _ => false,
        },
    );
    let framing = |h: &[(String, String)]| {
        h.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
    };
    if framing(&ours.headers) != framing(&their_headers) {
        diff(
            out,
            "framing",
            "chunked in one, Content-Length in the other",
        );
    }
    body(
        &ours.body,
        theirs["body"].as_str().unwrap_or(""),
        "body",
        out,
    );
}

/// Compare bodies: as JSON when both are JSON, else as text.
fn body(ours: &[u8], theirs: &str, class: &str, out: &mut Vec<Difference>) {
    let ours_text = String::from_utf8_lossy(ours);
    if ours_text == theirs {
        return;
    }
    match (json::parse(&ours_text), json::parse(theirs)) {
        (Some(a), Some(b)) => {
            let mut d = Vec::new();
            json::compare(&a, &b, "$", &mut d);
            for x in d {
                let c = match x.class {
                    "value" => class.to_string(),
                    other => other.to_string(),
                };
                diff(out, c, x.at);
            }
        }
        _ => diff(
            out,
            format!("{class}-text"),
            format!("{:.200} vs {:.200}", ours_text, theirs),
        ),
    }
}

/// Compare header lists by name (case-insensitive), each name's values in order. `skip` says
/// which names to leave out (given both value lists).
fn headers(
    ours: &[(String, String)],
    theirs: &[(String, String)],
    class: &str,
    out: &mut Vec<Difference>,
    skip: impl Fn(&str, &[String], &[String]) -> bool,
) {
    let mut names: Vec<String> = ours
        .iter()
        .chain(theirs)
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let values = |h: &[(String, String)], n: &str| -> Vec<String> {
        h.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
            .collect()
    };
    for n in names {
        if matches!(n.as_str(), "content-length" | "transfer-encoding") {
            continue;
        }
        let (a, b) = (values(ours, &n), values(theirs, &n));
        if a != b && !skip(&n, &a, &b) {
            diff(out, format!("{class}:{n}"), format!("{a:?} vs {b:?}"));
        }
    }
}

fn backends(line: &Value, obs: &Observed, out: &mut Vec<Difference>) {
    let recorded = line["backend_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, theirs) in recorded.iter().enumerate() {
        let theirs = theirs.as_array().cloned().unwrap_or_default();
        let ours = obs.backend_requests.get(i).cloned().unwrap_or_default();
        if ours.len() != theirs.len() {
            diff(
                out,
                "backend-calls",
                format!("backend {i}: {} requests vs {}", ours.len(), theirs.len()),
            );
            continue;
        }
        for (o, t) in ours.iter().zip(&theirs) {
            if o.method != t["method"].as_str().unwrap_or("") {
                diff(
                    out,
                    "backend-method",
                    format!("{} vs {}", o.method, t["method"]),
                );
            }
            if o.path != t["path"].as_str().unwrap_or("") {
                diff(out, "backend-path", format!("{} vs {}", o.path, t["path"]));
            }
            if o.query != t["query"].as_str().unwrap_or("") {
                diff(
                    out,
                    "backend-query",
                    format!("{:?} vs {}", o.query, t["query"]),
                );
            }
            let body = String::from_utf8_lossy(&o.body);
            if body != t["body"].as_str().unwrap_or("") {
                diff(
                    out,
                    "backend-body",
                    format!("{body:.200} vs {:.200}", t["body"]),
                );
            }
            if t["chunked"].as_bool() == Some(true) && !o.body.is_empty() {
                diff(out, "request-body-length", "KrakenD sent the body chunked");
            }
            headers(
                &o.headers,
                &pairs(&t["headers"]),
                "backend-header",
                out,
                |name, ours, theirs| match name {
                    // The ports of the run.
                    "host" => true,
                    "x-forwarded-host" => {
                        let host = |v: &[String]| -> Vec<String> {
                            v.iter()
                                .map(|s| s.rsplit_once(':').map_or(s.as_str(), |p| p.0).to_string())
                                .collect()
                        };
                        host(ours) == host(theirs)
                    }
                    "user-agent" | "x-forwarded-via" => {
                        let strip = |v: &[String]| -> Vec<String> {
                            v.iter()
                                .map(|s| match s.strip_prefix("KrakenD Version ") {
                                    Some(_) => "KrakenD Version".to_string(),
                                    None => s.clone(),
                                })
                                .collect()
                        };
                        strip(ours) == strip(theirs)
                    }
                    _ => false,
                },
            );
        }
    }
}
