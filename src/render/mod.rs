//! Output encodings (`json`, `json-collection`, `string`, `xml`, `yaml`, `negotiate`) and the
//! KrakenD response headers that depend on completeness (`X-Krakend-Completed`,
//! `Cache-Control`). JSON is written from the raw pieces; XML and YAML read the data into a
//! small tree first ([`tree`]), so only endpoints that ask for them pay for it.

pub mod tree;
pub mod xml;
pub mod yaml;

use crate::gateway::Response;
use crate::json::Fields;
use crate::plan::{EndpointPlan, Output};
use bytes::Bytes;

/// gin's `MIMEXML` (krakend-xml's render sets it alone, without a charset).
const XML_TYPE: &str = "application/xml";
/// gin's YAML content type (CE spec `negotitate_plain`).
const YAML_TYPE: &str = "application/x-yaml; charset=utf-8";

/// Render shaped data. `complete`: every backend succeeded. `accept`: the client's `Accept`
/// header, read by `negotiate` only.
pub fn render(ep: &EndpointPlan, data: &Fields, complete: bool, accept: Option<&[u8]>) -> Response {
    let output = match ep.output {
        Output::Negotiate => negotiate(accept),
        o => o,
    };
    // Allocated only by the branches that write (a body passed through whole does not).
    let buf = || Vec::with_capacity(256);
    let mut resp = match output {
        // A body passed through whole is shared with the backend's read buffer, not copied
        // (callgrind: the 256-byte buffer, its growth to the body's size and the copy were
        // ~600 instructions of a 1 KB 1:1 call).
        Output::Json | Output::NoOp | Output::Negotiate => match data.whole_object() {
            Some(whole) => Response::json(200, whole.clone()),
            None => {
                let mut out = buf();
                data.write_object(&mut out);
                Response::json(200, Bytes::from(out))
            }
        },
        Output::JsonCollection => {
            let mut out = buf();
            data.write_collection(&mut out);
            Response::json(200, Bytes::from(out))
        }
        // KrakenD (lura `stringRender`): only a string `content` is written; anything else
        // renders an empty body.
        Output::String => match data.get("content") {
            Some(raw) if raw.first() == Some(&b'"') => Response::text(200, data.content_string()),
            _ => Response::text(200, Bytes::new()),
        },
        Output::Xml => {
            let mut out = buf();
            data.write_object(&mut out);
            // KrakenD: mxj's errors leave the body empty (the header is already written).
            let body = tree::parse(&out)
                .map(|t| match t {
                    tree::Node::Null => tree::Node::Obj(Vec::new()),
                    t => t,
                })
                .and_then(|t| xml::write(&t))
                .unwrap_or_default();
            Response::new(200)
                .header("Content-Type", XML_TYPE)
                .with_body(body)
        }
        Output::Yaml => {
            let mut out = buf();
            data.write_object(&mut out);
            let body = tree::parse(&out)
                .map(|t| match t {
                    // KrakenD: gin's YAML of a nil map is `{}`.
                    tree::Node::Null => b"{}\n".to_vec(),
                    t => yaml::write(&t),
                })
                .unwrap_or_default();
            Response::new(200)
                .header("Content-Type", YAML_TYPE)
                .with_body(body)
        }
    };
    // KrakenD: empty data is never "completed", whatever the backends did.
    let completed = complete && !data.is_empty();
    resp = resp.header(
        "X-Krakend-Completed",
        if completed { "true" } else { "false" },
    );
    if completed {
        if let Some(cc) = &ep.cache_control {
            resp = resp.header("Cache-Control", cc.clone());
        }
    }
    resp
}

/// KrakenD (lura `negotiatedRender` on gin's `NegotiateFormat`): the first `Accept` entry that
/// matches `application/json`, `text/plain` or `application/xml` in that order of offers
/// (a `*` matches from where it stands, a prefix of an offer matches it); no `Accept` or no
/// match is JSON, `text/plain` is YAML.
pub fn negotiate(accept: Option<&[u8]>) -> Output {
    const OFFERS: [(&[u8], Output); 3] = [
        (b"application/json", Output::Json),
        (b"text/plain", Output::Yaml),
        (b"application/xml", Output::Xml),
    ];
    let Some(accept) = accept else {
        return Output::Json;
    };
    for part in accept.split(|b| *b == b',') {
        let part = match part.iter().position(|b| *b == b';') {
            Some(i) if i > 0 => part.get(..i).unwrap_or(part),
            _ => part,
        };
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        for (offer, out) in OFFERS {
            let mut i = 0;
            let mut hit = false;
            while let (Some(a), Some(o)) = (part.get(i), offer.get(i)) {
                if *a == b'*' || *o == b'*' {
                    hit = true;
                    break;
                }
                if a != o {
                    break;
                }
                i += 1;
            }
            if hit || i == part.len() {
                return out;
            }
        }
    }
    Output::Json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_follows_gins_offer_matching() {
        assert_eq!(negotiate(None), Output::Json);
        assert_eq!(negotiate(Some(b"application/xml")), Output::Xml);
        assert_eq!(negotiate(Some(b"text/plain")), Output::Yaml);
        assert_eq!(
            negotiate(Some(b"application/json; charset=utf-8")),
            Output::Json
        );
        assert_eq!(
            negotiate(Some(b"text/html, application/xml;q=0.9")),
            Output::Xml
        );
        assert_eq!(negotiate(Some(b"*/*")), Output::Json);
        assert_eq!(negotiate(Some(b"text/*")), Output::Yaml);
        assert_eq!(negotiate(Some(b"image/png")), Output::Json);
    }
}
