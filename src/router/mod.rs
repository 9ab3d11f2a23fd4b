//! (method, path) -> endpoint + path params, with KrakenD's (gin's) 404/405 and redirect rules.
//!
//! KrakenD CE routes with gin (`UseRawPath` and `RemoveExtraSlash` off), so matching runs on the
//! percent-**decoded** path (`URL.Path`): `/users/a%2Fb` is the three segments `/users/a/b`,
//! and parameter values are decoded text. lura's `paramChecker` middleware then decodes each
//! value once more and answers 400 if that changes it (`%252F` -> `%2F`) or it holds `?`/`#`;
//! that check lives here as [`Route::BadParam`] (off with `disable_path_decoding`).
//!
//! Trees are per method, in first-registration order, which is the order of gin's 405 `Allow`
//! header. Lookups allocate only the parameter values (plus the decoded path if it has `%`).

mod path;
mod template;
mod tree;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use path::{clean_path, redirect_body, redirect_location};
pub use tree::Params;
use tree::{Leaf, Node};

/// Router behaviour switches, from the `router` namespace.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// `!disable_redirect_trailing_slash`: `/foo/` <-> `/foo` redirect (301 GET, 307 others).
    pub redirect_trailing_slash: bool,
    /// `!disable_redirect_fixed_path`: case / `..` / `//` fixes redirect (301 GET, 307 others).
    pub redirect_fixed_path: bool,
    /// `!disable_handle_method_not_allowed`: 405 when the path exists for another method.
    pub handle_method_not_allowed: bool,
    /// Root `disable_rest`: allow one `{x}` inside the last segment (`/file.{ext}`).
    pub disable_rest: bool,
    /// `disable_path_decoding`: skip lura's encoded-parameter check (no [`Route::BadParam`]).
    pub disable_path_decoding: bool,
    /// `remove_extra_slash`: gin cleans the path (`cleanPath`) before matching.
    pub remove_extra_slash: bool,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            redirect_trailing_slash: true,
            redirect_fixed_path: true,
            handle_method_not_allowed: true,
            disable_rest: false,
            disable_path_decoding: false,
            remove_extra_slash: false,
        }
    }
}

/// Why a route cannot be registered (reported by `proxy check` / refused by `proxy run`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError(pub String);

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteError {}

/// Result of [`Router::route`].
#[derive(Debug)]
pub enum Route<'a, T> {
    /// Params are in path order; values are the decoded path text.
    Found { value: &'a T, params: Params<'a> },
    /// Redirect to `location` (path plus the original query, if any) with `status` 301/307.
    /// Body: see [`redirect_body`] (GET only).
    Redirect { status: u16, location: String },
    /// The path exists for other methods. `allow` is gin's `Allow` header: those methods in
    /// first-registration order, joined with `", "`. Body `405 method not allowed`.
    MethodNotAllowed { allow: String },
    /// Body `404 page not found`.
    NotFound,
    /// lura's `paramChecker` refused a parameter: answer 400 `text/plain` with `message`
    /// (`error: encoded url params` or `error: invalid URL escape "%zz"`).
    BadParam { message: String },
    /// The raw path has a bad `%` escape. KrakenD: Go's `net/http` refuses the request before
    /// routing: `400 Bad Request`, `Content-Type: text/plain; charset=utf-8`,
    /// `Connection: close`, body `400 Bad Request`.
    MalformedPath,
}

struct MethodTree<T> {
    method: String,
    root: Node<T>,
}

/// The compiled routes of one plan.
pub struct Router<T> {
    opts: RouterOptions,
    trees: Vec<MethodTree<T>>,
    /// Templates in registration order with their methods (lura's `urlCatalog`).
    catalog: Vec<(String, Vec<String>)>,
}

impl<T> Router<T> {
    pub fn new(opts: RouterOptions) -> Self {
        Router {
            opts,
            trees: Vec::new(),
            catalog: Vec::new(),
        }
    }

    pub fn options(&self) -> &RouterOptions {
        &self.opts
    }

    /// Register `method` + KrakenD path template (`/users/{id}`). Errors on invalid syntax and
    /// on conflicts (duplicate method+path, different param names at one position, ...).
    pub fn insert(&mut self, method: &str, path: &str, value: T) -> Result<(), RouteError> {
        let segs = template::parse(path, self.opts.disable_rest)
            .map_err(|why| RouteError(format!("{method} {path}: {why}")))?;
        let pos = match self.trees.iter().position(|t| t.method == method) {
            Some(pos) => pos,
            None => {
                self.trees.push(MethodTree {
                    method: method.to_string(),
                    root: Node::new(),
                });
                self.trees.len() - 1
            }
        };
        let Some(tree) = self.trees.get_mut(pos) else {
            return Err(RouteError(format!(
                "{method} {path}: internal router error"
            )));
        };
        tree.root
            .insert(&segs, path, value)
            .map_err(|(why, other)| {
                RouteError(format!(
                    "{method} {path} {why} (conflicts with {method} {other})"
                ))
            })?;
        match self.catalog.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => methods.push(method.to_string()),
            None => self
                .catalog
                .push((path.to_string(), vec![method.to_string()])),
        }
        Ok(())
    }

    /// Methods registered for the endpoint template `path` (as given to [`Router::insert`]),
    /// sorted. KrakenD `auto_options` answers `OPTIONS` on each template with
    /// `Allow: <these, joined ", ">`; to match gin exactly, insert those `OPTIONS` routes into
    /// this router after the endpoints (they then also show up in 405 `Allow` lists).
    pub fn allowed_methods(&self, path: &str) -> Vec<&str> {
        let mut methods: Vec<&str> = self
            .catalog
            .iter()
            .filter(|(p, _)| p == path)
            .flat_map(|(_, m)| m.iter().map(String::as_str))
            .collect();
        methods.sort_unstable();
        methods
    }

    /// Registered templates, in registration order.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.catalog.iter().map(|(p, _)| p.as_str())
    }

    /// Look up a request. `path` is the raw request path (still percent-encoded); `query` is
    /// the raw query string (`Some("")` for a bare `?`), kept on redirects.
    pub fn route<'a>(&'a self, method: &str, path: &str, query: Option<&str>) -> Route<'a, T> {
        self.route_with_prefix(method, path, query, None)
    }

    /// [`Router::route`] with the request's `X-Forwarded-Prefix` header, which gin prepends to
    /// trailing-slash redirects.
    pub fn route_with_prefix<'a>(
        &'a self,
        method: &str,
        path: &str,
        query: Option<&str>,
        forwarded_prefix: Option<&str>,
    ) -> Route<'a, T> {
        let Ok(decoded) = path::unescape(path) else {
            return Route::MalformedPath;
        };
        let r_path: Cow<'_, str> = if self.opts.remove_extra_slash {
            Cow::Owned(clean_path(&decoded))
        } else {
            decoded
        };
        let tree = self.trees.iter().find(|t| t.method == method);
        if let Some(tree) = tree {
            let mut params = Vec::new();
            if let Some(leaf) = find(&tree.root, &r_path, &mut params) {
                return self.found(leaf, params);
            }
            // gin: no redirects for CONNECT or for "/".
            if method != "CONNECT" && r_path != "/" {
                let status = if method == "GET" { 301 } else { 307 };
                if self.opts.redirect_trailing_slash {
                    if let Some(location) =
                        trailing_slash_redirect(&tree.root, &r_path, query, forwarded_prefix)
                    {
                        return Route::Redirect { status, location };
                    }
                }
                if self.opts.redirect_fixed_path {
                    // gin: redirectFixedPath is passed RedirectFixedPath (always true here) as
                    // its trailing-slash flag, so it fixes slashes even when the trailing-slash
                    // redirect is disabled.
                    if let Some(fixed) = fixed_path(&tree.root, &clean_path(&r_path), true) {
                        let location = path::redirect_location(&fixed, query);
                        return Route::Redirect { status, location };
                    }
                }
            }
        }
        if self.opts.handle_method_not_allowed {
            let allow: Vec<&str> = self
                .trees
                .iter()
                .filter(|t| t.method != method && matches(&t.root, &r_path))
                .map(|t| t.method.as_str())
                .collect();
            if !allow.is_empty() {
                return Route::MethodNotAllowed {
                    allow: allow.join(", "),
                };
            }
        }
        Route::NotFound
    }

    fn found<'a>(&self, leaf: &'a Leaf<T>, params: Params<'a>) -> Route<'a, T> {
        if !self.opts.disable_path_decoding {
            if let Some(message) = param_check(&params) {
                return Route::BadParam { message };
            }
        }
        Route::Found {
            value: &leaf.value,
            params,
        }
    }
}

/// lura's `paramChecker`: each value decoded once more must be unchanged and free of `?`/`#`.
fn param_check(params: &Params<'_>) -> Option<String> {
    for (_, value) in params {
        match path::unescape(value) {
            Err(e) => return Some(format!("error: {e}")),
            Ok(s) if s != value.as_str() || s.contains('?') || s.contains('#') => {
                // KrakenD: the much-reported 400 for %2F, %25, %3F, %23 in parameters.
                return Some("error: encoded url params".to_string());
            }
            Ok(_) => {}
        }
    }
    None
}

fn find<'a, T>(root: &'a Node<T>, path: &str, params: &mut Params<'a>) -> Option<&'a Leaf<T>> {
    root.find(path.strip_prefix('/')?, params)
}

fn matches<T>(root: &Node<T>, path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| root.matches(rest))
}

/// gin's TSR recommendation + `redirectTrailingSlash`: the path with its trailing slash
/// toggled must match; the target gets the sanitised `X-Forwarded-Prefix` in front.
fn trailing_slash_redirect<T>(
    root: &Node<T>,
    r_path: &str,
    query: Option<&str>,
    forwarded_prefix: Option<&str>,
) -> Option<String> {
    let alt = toggle_trailing_slash(r_path);
    if !matches(root, &alt) {
        return None;
    }
    let p = match forwarded_prefix.and_then(path::forwarded_prefix) {
        Some(prefix) => format!("{prefix}/{r_path}"),
        None => r_path.to_string(),
    };
    Some(path::redirect_location(&toggle_trailing_slash(&p), query))
}

fn toggle_trailing_slash(p: &str) -> String {
    match p.strip_suffix('/') {
        Some(stripped) if p.len() > 1 => stripped.to_string(),
        _ => format!("{p}/"),
    }
}

/// gin's `findCaseInsensitivePath` on the cleaned path, optionally fixing the trailing slash.
fn fixed_path<T>(root: &Node<T>, cleaned: &str, fix_trailing_slash: bool) -> Option<String> {
    let try_ci = |p: &str| -> Option<String> {
        let rest = p.strip_prefix('/')?;
        let mut out = String::with_capacity(p.len() + 1);
        out.push('/');
        root.find_ci(rest, &mut out).then_some(out)
    };
    try_ci(cleaned).or_else(|| {
        if fix_trailing_slash && cleaned != "/" {
            try_ci(&toggle_trailing_slash(cleaned))
        } else {
            None
        }
    })
}
