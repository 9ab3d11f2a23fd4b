//! (method, path) -> endpoint + path params, with KrakenD's (gin's) 404/405 and redirect rules.
//! OWNER: router helper.

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
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            redirect_trailing_slash: true,
            redirect_fixed_path: true,
            handle_method_not_allowed: true,
            disable_rest: false,
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

/// Path parameters of a match: (name, raw value as it appeared in the request path).
pub type Params<'a> = Vec<(&'a str, &'a str)>;

/// Result of [`Router::route`].
#[derive(Debug)]
pub enum Route<'a, T> {
    Found { value: &'a T, params: Params<'a> },
    /// Redirect to `location` (path plus the original query, if any) with `status` 301/307.
    Redirect { status: u16, location: String },
    /// The path exists for other methods; `allow` lists them, sorted, comma-separated.
    MethodNotAllowed { allow: String },
    NotFound,
}

pub struct Router<T> {
    opts: RouterOptions,
    routes: Vec<(String, String, T)>,
}

impl<T> Router<T> {
    pub fn new(opts: RouterOptions) -> Self {
        Router { opts, routes: Vec::new() }
    }

    /// Register `method` + KrakenD path template (`/users/{id}`). Errors on invalid syntax and
    /// on conflicts (duplicate method+path, different param names at one position, ...).
    pub fn insert(&mut self, method: &str, path: &str, value: T) -> Result<(), RouteError> {
        self.routes.push((method.to_string(), path.to_string(), value));
        Ok(())
    }

    /// Look up a request. `path` is the raw request path (still percent-encoded); `query` is
    /// the raw query string, kept on redirects.
    pub fn route<'a>(&'a self, method: &str, path: &'a str, query: Option<&str>) -> Route<'a, T> {
        let _ = (method, query, &self.opts);
        match self.routes.iter().find(|(_, p, _)| p == path) {
            Some((_, _, v)) => Route::Found { value: v, params: Vec::new() },
            None => Route::NotFound,
        }
    }
}
