//! `proxy check`: look every backend name up once, now, and warn about those that do not
//! resolve. A warning, not an error: names are resolved at run time, and a name that does
//! not resolve yet (a service not deployed yet) only fails the requests to its backend.

use super::{client, srv};
use crate::backend::target::{literal, split_host, srv_name};
use crate::config::{Config, Diagnostic, Severity, Span};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Srv,
}

/// One name as a backend uses it: where, and how it is written.
struct Use {
    kind: Kind,
    name: String,
    written: String,
    line: u32,
    col: u32,
    path: String,
}

/// Lookups run in parallel, this many at once, so a file with many names that time out
/// does not take minutes.
const PARALLEL: usize = 8;

/// Look up every name the backends of `cfg` use; one warning per backend host that does not
/// resolve now.
pub fn check(cfg: &Config) -> Vec<Diagnostic> {
    let uses = collect(cfg);
    let mut names: Vec<(Kind, &str)> = Vec::new();
    for u in &uses {
        if !names.contains(&(u.kind, u.name.as_str())) {
            names.push((u.kind, u.name.as_str()));
        }
    }
    let mut results: Vec<Result<(), String>> = Vec::with_capacity(names.len());
    for chunk in names.chunks(PARALLEL) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(kind, name)| s.spawn(move || lookup(kind, name)))
                .collect();
            for h in handles {
                results.push(
                    h.join()
                        .unwrap_or_else(|_| Err("the lookup thread failed".into())),
                );
            }
        });
    }
    let mut out = Vec::new();
    for u in &uses {
        let Some(i) = names.iter().position(|n| *n == (u.kind, u.name.as_str())) else {
            continue;
        };
        if let Some(Err(e)) = results.get(i) {
            let what = match u.kind {
                Kind::Host => "host",
                Kind::Srv => "DNS SRV name",
            };
            out.push(Diagnostic {
                severity: Severity::Warning,
                file: cfg.file.clone(),
                line: u.line,
                col: u.col,
                path: u.path.clone(),
                message: format!(
                    "{what} {:?} does not resolve now ({e}); requests to this backend fail \
                     until it does (names are resolved at run time)",
                    u.written
                ),
            });
        }
    }
    out
}

fn collect(cfg: &Config) -> Vec<Use> {
    let mut uses = Vec::new();
    for e in &cfg.endpoints {
        for b in &e.backend {
            let span = b.host_span.clone().unwrap_or_else(|| Span {
                path: format!("{}.host", b.span.path),
                ..b.span.clone()
            });
            let mut push = |kind, name: &str, written: &str, k: usize| {
                uses.push(Use {
                    kind,
                    name: name.to_string(),
                    written: written.to_string(),
                    line: span.line,
                    col: span.col,
                    path: format!("{}[{k}]", span.path),
                });
            };
            if b.sd == "dns" {
                if let Some(Ok(name)) = b.host.first().map(|h| srv_name(h)) {
                    push(
                        Kind::Srv,
                        name,
                        b.host.first().map_or("", |h| h.as_str()),
                        0,
                    );
                }
                continue;
            }
            for (k, h) in b.host.iter().enumerate() {
                if let Ok((_, name, port)) = split_host(h) {
                    if literal(name, port).is_none() {
                        push(Kind::Host, name, h, k);
                    }
                }
            }
        }
    }
    uses
}

fn lookup(kind: Kind, name: &str) -> Result<(), String> {
    match kind {
        Kind::Host => client::lookup_ips(name).map(|_| ()),
        Kind::Srv => {
            let hosts = srv::hosts(client::lookup_srv(name)?);
            // The SRV targets must resolve too, or the backend has nowhere to go.
            let mut seen: Vec<&str> = Vec::new();
            for (target, port) in &hosts {
                if seen.contains(&target.as_str()) || literal(target, *port).is_some() {
                    continue;
                }
                seen.push(target);
                client::lookup_ips(target)?;
            }
            Ok(())
        }
    }
}
