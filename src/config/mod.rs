//! krakend.json -> typed, validated configuration. OWNER: config helper.
//!
//! Loading never stops at the first problem: every error and warning is collected as a
//! [`Diagnostic`] with `file:line:col` and a JSON path, so `proxy check` can report them all.

mod backend;
mod decode;
pub mod duration;
mod endpoint;
mod env;
pub mod json;
pub mod namespaces;
pub mod pending;
mod proxy_ns;
mod service;
pub mod suggest;
pub mod tls;
mod toml;
pub mod types;
pub mod validate;
mod yaml;

pub use decode::go_parse_bool as decode_bool;
pub use types::*;

use std::path::Path;

/// How serious a diagnostic is. Errors make `check` fail and `run` refuse the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the problem has no position (e.g. an unreadable file).
    pub line: u32,
    pub col: u32,
    /// JSON path of the offending value, `$.endpoints[0].backend[1].url_pattern`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: $.json.path: reason` (warnings say `warning:` before the reason).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error => "",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}{}",
            self.file, self.line, self.col, self.path, sev, self.message
        )
    }
}

/// A loaded file: the config plus its warnings.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// The document as parsed (environment overrides applied), for `proxy audit`.
    pub raw: serde_json::Value,
    /// With Flexible Configuration, the render: problems found later (plan compilation) are
    /// moved to the template text through it.
    pub rendered: Option<std::sync::Arc<crate::fc::Rendered>>,
}

/// Read, parse, apply `KRAKEND_*` environment overrides and validate `path`.
/// Err holds every diagnostic (errors and warnings) when at least one is an error.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// The syntax of a configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// KrakenD: the parser is picked by the file's extension; anything else is JSON.
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yml" | "yaml") => Format::Yaml,
            Some("toml") => Format::Toml,
            _ => Format::Json,
        }
    }

    /// Parse text of this format into the spanned tree every format shares.
    pub fn parse(self, text: &str) -> Result<json::Parsed, json::ParseIssue> {
        match self {
            Format::Json => json::parse(text),
            Format::Yaml => yaml::parse(text),
            Format::Toml => toml::parse(text),
        }
    }
}

/// [`load`] with an injectable environment (`KRAKEND_*` and `FC_*` lookups go through `env`).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let file = path.display().to_string();
    if let Some(opts) = crate::fc::enabled(env) {
        let rendered = crate::fc::render(path, &opts, env)?;
        // KrakenD: the rendered text is parsed from FC_OUT, whose extension picks the parser;
        // without FC_OUT it is a temporary .json file.
        let (label, format) = match &opts.out {
            Some(out) => (out.display().to_string(), Format::of(out)),
            None => (file, Format::Json),
        };
        let map = |mut diags: Vec<Diagnostic>| {
            for d in &mut diags {
                rendered.map_diagnostic(d);
            }
            diags
        };
        return match load_text(&label, &rendered.text, format, env) {
            Ok(mut l) => {
                l.warnings = map(l.warnings);
                l.rendered = Some(std::sync::Arc::new(rendered));
                Ok(l)
            }
            Err(d) => Err(map(d)),
        };
    }
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            file: file.clone(),
            line: 0,
            col: 0,
            path: "$".to_string(),
            message: format!("cannot read the configuration file: {e}"),
        }]
    })?;
    // KrakenD: Go's JSON decoder replaces invalid UTF-8 with U+FFFD rather than failing.
    let text = String::from_utf8_lossy(&bytes);
    load_text(&file, &text, Format::of(path), env)
}

/// Load JSON text already in memory; `file` is only used in diagnostics.
pub fn load_str(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    load_text(file, text, Format::Json, env)
}

/// Load text of `format` already in memory; `file` is only used in diagnostics.
pub fn load_text(
    file: &str,
    text: &str,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut ctx = decode::Ctx::new(file);
    let mut parsed = match format.parse(text) {
        Ok(p) => p,
        Err(issue) => {
            ctx.error(issue.pos, &issue.path, issue.message);
            return Err(ctx.diags);
        }
    };
    for dup in &parsed.duplicates {
        ctx.warn(dup.pos, &dup.path, dup.message.clone());
    }
    let overrides = env::apply(&mut ctx, &mut parsed.root, env);
    let config = service::decode_root(&mut ctx, &parsed.root);
    let mut diags = ctx.diags;
    // Problems with an overridden value have no file position: say where the value came from.
    for d in diags.iter_mut().filter(|d| d.line == 0) {
        if let Some(o) = overrides
            .iter()
            .find(|o| d.path == decode::child("$", o.key) && !d.message.contains(&o.var))
        {
            d.message = format!("(from environment variable {}) {}", o.var, d.message);
        }
    }
    diags.sort_by_key(|d| (d.line, d.col));
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    Ok(Loaded {
        config,
        warnings: diags,
        raw: parsed.root.to_json(),
        rendered: None,
    })
}

#[cfg(test)]
mod load_ns_env_tests;
#[cfg(test)]
mod load_tests;
