//! What a loaded config uses that this gateway has not built, where, and what happens: the one
//! list behind `proxy check`'s summary and the plan's fail-closed 501s. Namespaces are judged
//! by the registry ([`super::namespaces`]); encodings KrakenD has and we have not built fail
//! closed too ([`super::validate::OUTPUT_NOT_BUILT`], [`super::validate::BACKEND_NOT_BUILT`]).

use super::json::key_segment;
use super::namespaces::{self, Class, Level};
use super::validate::{host_use, not_built, HostUse, BACKEND_NOT_BUILT, OUTPUT_NOT_BUILT};
use super::{Backend, Config, Endpoint, ExtraConfig};

/// The kind of thing that is not built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Namespace,
    /// An endpoint's `output_encoding` (its own or the root's).
    OutputEncoding,
    /// A backend's `encoding`.
    Encoding,
    /// A key inside a built namespace (`proxy.shadow`).
    Setting,
}

impl Subject {
    /// The key naming it in a 501 body.
    pub fn key(self) -> &'static str {
        match self {
            Subject::Namespace => "namespace",
            Subject::OutputEncoding | Subject::Encoding => "encoding",
            Subject::Setting => "setting",
        }
    }
}

/// Which endpoints answer 501 because of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refuses {
    /// None: it is ignored.
    No,
    /// Service level: every endpoint.
    Every,
    /// The endpoint at this index of `endpoints`.
    Endpoint(usize),
}

/// One thing not built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// JSON path of the namespace key, the encoding or the setting.
    pub at: String,
    /// The namespace's short name, the encoding value or the setting (`proxy.shadow`).
    pub name: String,
    pub subject: Subject,
    pub level: Level,
    pub refuses: Refuses,
    /// What it does (the registry's description), and for an unknown namespace, that it is.
    pub about: String,
}

/// Everything in `cfg` that is not built: the service's namespaces, then per endpoint (in file
/// order) its output encoding, its namespaces and each backend's encoding and namespaces
/// (namespaces by name within one `extra_config`).
pub fn pending(cfg: &Config) -> Vec<Pending> {
    let mut out = Vec::new();
    namespaces_in(
        &mut out,
        &cfg.extra_config,
        "$",
        Level::Service,
        Refuses::Every,
    );
    for (i, e) in cfg.endpoints.iter().enumerate() {
        endpoint(&mut out, e, i);
    }
    out
}

/// The first thing that makes endpoint `i` answer 501, if any (the outermost first).
pub fn refusal(list: &[Pending], i: usize) -> Option<&Pending> {
    list.iter()
        .find(|p| matches!(p.refuses, Refuses::Every) || p.refuses == Refuses::Endpoint(i))
}

fn endpoint(out: &mut Vec<Pending>, e: &Endpoint, i: usize) {
    let refuses = Refuses::Endpoint(i);
    let base = &e.span.path;
    if let Some(about) = not_built(&e.output_encoding, OUTPUT_NOT_BUILT) {
        out.push(Pending {
            at: e.output_encoding_path.clone(),
            name: e.output_encoding.clone(),
            subject: Subject::OutputEncoding,
            level: Level::Endpoint,
            refuses,
            about: about.to_string(),
        });
    }
    namespaces_in(out, &e.extra_config, base, Level::Endpoint, refuses);
    for b in &e.backend {
        let bbase = &b.span.path;
        if let Some(about) = not_built(&b.encoding, BACKEND_NOT_BUILT) {
            out.push(Pending {
                at: format!("{bbase}.encoding"),
                name: b.encoding.clone(),
                subject: Subject::Encoding,
                level: Level::Backend,
                refuses,
                about: about.to_string(),
            });
        }
        namespaces_in(out, &b.extra_config, bbase, Level::Backend, refuses);
        if let Some((at, name, about)) = host_not_built(b) {
            out.push(Pending {
                at,
                name,
                subject: Subject::Setting,
                level: Level::Backend,
                refuses,
                about,
            });
        }
        // KrakenD: a shadow backend's answer is dropped (lura `proxy/shadow.go`); calling it
        // like the others would merge it into the response.
        if is_shadow(&b.extra_config) {
            out.push(Pending {
                at: format!("{bbase}.extra_config.proxy.shadow"),
                name: "proxy.shadow".into(),
                subject: Subject::Setting,
                level: Level::Backend,
                refuses,
                about: SHADOW.into(),
            });
        }
        // A no-op endpoint streams its backend's body through; the cache only sits on the
        // buffered path, so serving uncached would send the backend what KrakenD would not.
        if e.output_encoding == "no-op" && b.extra_config.contains_key("qos/http-cache") {
            out.push(Pending {
                at: format!("{bbase}.extra_config.qos/http-cache"),
                name: "qos/http-cache with no-op".into(),
                subject: Subject::Setting,
                level: Level::Backend,
                refuses,
                about: HTTP_CACHE_NOOP.into(),
            });
        }
    }
}

/// The first way this backend's hosts are called that is not built (a path in the host):
/// (where, what, what KrakenD does).
fn host_not_built(b: &Backend) -> Option<(String, String, String)> {
    if b.sd == "dns" {
        return None;
    }
    b.host
        .iter()
        .enumerate()
        .find_map(|(i, h)| match host_use(h) {
            HostUse::NotBuilt(what, about) => {
                let at = match &b.host_span {
                    Some(span) => format!("{}[{i}]", span.path),
                    None => format!("$.host[{i}]"),
                };
                Some((at, format!("{what} ({h})"), about.to_string()))
            }
            _ => None,
        })
}

/// What `proxy.shadow` does, for `check` and the 501.
pub const HTTP_CACHE_NOOP: &str =
    "caches the streamed answer of a no-op endpoint (the cache is built for shaped endpoints)";
pub const SHADOW: &str = "calls the backend as a shadow and drops its answer";

/// `proxy.shadow: true` on a backend (lura reads only the boolean `true`).
pub fn is_shadow(extra: &ExtraConfig) -> bool {
    extra
        .get("proxy")
        .and_then(|p| p.get("shadow"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

fn namespaces_in(
    out: &mut Vec<Pending>,
    extra: &ExtraConfig,
    base: &str,
    level: Level,
    refuses: Refuses,
) {
    for ns in extra.keys() {
        let v = namespaces::judge(ns, level);
        let refuses = match v.class {
            Class::Implemented => continue,
            Class::Ignored => Refuses::No,
            Class::FailClosed => refuses,
        };
        let about = match v.entry {
            Some(entry) => entry.about.to_string(),
            None => match namespaces::nearest(ns) {
                Some(n) => format!("not a KrakenD CE namespace (did you mean {n:?}?)"),
                None => "not a KrakenD CE namespace".to_string(),
            },
        };
        out.push(Pending {
            at: format!("{base}.extra_config{}", key_segment(ns)),
            name: ns.clone(),
            subject: Subject::Namespace,
            level,
            refuses,
            about,
        });
    }
}
