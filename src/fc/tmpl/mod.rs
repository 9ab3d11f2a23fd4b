//! A Go `text/template` engine, enough for KrakenD's Flexible Configuration: actions and
//! pipelines, variables, `if`/`else if`/`range`/`with`/`else`, `define`/`template`/`block`,
//! `break`/`continue`, comments, `{{-`/`-}}` trimming, Go's builtin functions, a set of Sprig
//! functions, and KrakenD's `marshal` and `include` (see `funcs.rs` for the list).
//!
//! Written here rather than taken from gtmpl: gtmpl's functions get no context (KrakenD's
//! `include` needs the partials directory and `env` our injectable environment), its maps are
//! unordered, it was last released in 2021, and its error positions are what a fork exists to
//! fix. Every error here carries the file and the byte offset of the action that failed, and
//! rendering records where each output byte came from so errors in the rendered JSON can be
//! reported at the template line that produced them.

mod exec;
mod format;
pub mod funcs;
mod lex;
mod parse;
#[cfg(test)]
mod tests;
mod text;
mod values;

use parse::Node;
use serde_json::Value;
use std::collections::HashMap;

/// A template problem: which source file (index into [`Set::files`]) and byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmplError {
    pub file: usize,
    pub at: usize,
    pub message: String,
}

impl TmplError {
    pub(crate) fn at(at: usize, message: String) -> Self {
        TmplError {
            file: usize::MAX,
            at,
            message,
        }
    }
}

/// One source file of the set.
pub struct Source {
    /// How errors name it (the path as given).
    pub path: String,
    pub text: String,
}

impl Source {
    /// 1-based line and column (in characters) of byte offset `at`.
    pub fn line_col(&self, at: usize) -> (u32, u32) {
        let at = at.min(self.text.len());
        let before = self.text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
        let col = before.get(line_start..).unwrap_or("").chars().count() + 1;
        (line as u32, col as u32)
    }
}

/// Where a run of output bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// First output byte of the run.
    pub out: usize,
    pub file: usize,
    /// Source byte offset: of the text itself (then the run maps byte for byte) or of the action.
    pub src: usize,
    pub verbatim: bool,
}

/// The rendered text and the origin of its bytes, in output order.
pub struct Rendered {
    pub text: String,
    pub origins: Vec<Origin>,
}

/// What functions may reach outside the template.
pub struct Env<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// `include`: read a partial by its name (KrakenD: relative to FC_PARTIALS, pasted verbatim).
    pub include: &'a dyn Fn(&str) -> Result<String, String>,
}

/// Parsed templates: each file under its base name, plus everything `define`d.
#[derive(Default)]
pub struct Set {
    pub files: Vec<Source>,
    templates: HashMap<String, (usize, Vec<Node>)>,
}

/// Rendered output larger than this is refused (a runaway `range` cannot eat the memory).
pub const MAX_OUTPUT: usize = 64 << 20;

impl Set {
    /// Parse `text` and add it under `name`; its `define`s join the set.
    pub fn add(&mut self, name: &str, path: &str, text: String) -> Result<(), TmplError> {
        let file = self.files.len();
        let parsed = lex::lex(&text).and_then(parse::parse).and_then(|p| {
            parse::check_funcs(&p.body, funcs::NAMES)?;
            for (_, body) in &p.defines {
                parse::check_funcs(body, funcs::NAMES)?;
            }
            Ok(p)
        });
        self.files.push(Source {
            path: path.to_string(),
            text,
        });
        let parsed = parsed.map_err(|e| TmplError { file, ..e })?;
        // KrakenD: Go's ParseFiles names each file by its base name; a later definition of a
        // name replaces an earlier one, and an empty body does not replace a non-empty one.
        for (n, body) in parsed.defines {
            let keep =
                body.is_empty() && self.templates.get(&n).is_some_and(|(_, b)| !b.is_empty());
            if !keep {
                self.templates.insert(n, (file, body));
            }
        }
        let keep = parsed.body.iter().all(is_blank)
            && self.templates.get(name).is_some_and(|(_, b)| !b.is_empty());
        if !keep {
            self.templates.insert(name.to_string(), (file, parsed.body));
        }
        Ok(())
    }

    /// Execute template `name` with `data` as dot.
    pub fn render(&self, name: &str, data: &Value, env: &Env) -> Result<Rendered, TmplError> {
        let Some((file, body)) = self.templates.get(name) else {
            return Err(TmplError {
                file: 0,
                at: 0,
                message: format!("no template {name:?}"),
            });
        };
        exec::run(self, *file, body, data, env)
    }

    /// `FILE:LINE:COL: message` for an error of this set.
    pub fn describe(&self, e: &TmplError) -> (String, u32, u32) {
        match self.files.get(e.file) {
            Some(src) => {
                let (l, c) = src.line_col(e.at);
                (src.path.clone(), l, c)
            }
            None => (String::from("<template>"), 0, 0),
        }
    }

    fn lookup(&self, name: &str) -> Option<&(usize, Vec<Node>)> {
        self.templates.get(name)
    }
}

fn is_blank(n: &Node) -> bool {
    matches!(n, Node::Text { text, .. } if text.trim().is_empty())
}
