//! Output encodings (`json`, `json-collection`, `string`) and the KrakenD response headers
//! that depend on completeness (`X-Krakend-Completed`, `Cache-Control`).

use crate::gateway::Response;
use crate::json::Fields;
use crate::plan::{EndpointPlan, Output};
use bytes::Bytes;

/// Render shaped data. `complete`: every backend succeeded.
pub fn render(ep: &EndpointPlan, data: &Fields, complete: bool) -> Response {
    let mut out = Vec::with_capacity(256);
    let mut resp = match ep.output {
        Output::Json | Output::NoOp => {
            data.write_object(&mut out);
            Response::json(200, Bytes::from(out))
        }
        Output::JsonCollection => {
            data.write_collection(&mut out);
            Response::json(200, Bytes::from(out))
        }
        // KrakenD (lura `stringRender`): only a string `content` is written; anything else
        // renders an empty body.
        Output::String => match data.get("content") {
            Some(raw) if raw.first() == Some(&b'"') => Response::text(200, data.content_string()),
            _ => Response::text(200, Bytes::new()),
        },
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
