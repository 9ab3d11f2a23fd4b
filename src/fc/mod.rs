//! Flexible Configuration: the `-c` file as a Go template (see [`tmpl`]), with settings,
//! sub-templates and partials from the `FC_*` directories, as KrakenD CE does
//! (krakend-flexibleconfig). Unlike CE, a template or settings problem is an error with its
//! file:line:col (CE logged it and parsed the raw template instead), and problems found in the
//! rendered config are reported at the template bytes that produced them.

pub mod tmpl;

use crate::config::{json, Diagnostic, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tmpl::{Env, Origin, Set};

/// The `FC_*` variables, read through the loader's environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    pub settings: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    pub partials: Option<PathBuf>,
    pub out: Option<PathBuf>,
}

/// `Some` when Flexible Configuration is on.
// KrakenD: any non-empty FC_ENABLE turns it on, "0" and "false" included.
pub fn enabled(env: &dyn Fn(&str) -> Option<String>) -> Option<Opts> {
    env("FC_ENABLE").filter(|v| !v.is_empty())?;
    let dir = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    Some(Opts {
        settings: dir("FC_SETTINGS"),
        templates: dir("FC_TEMPLATES"),
        partials: dir("FC_PARTIALS"),
        out: dir("FC_OUT"),
    })
}

/// A rendered config: its text, and how to find the template position of a rendered one.
pub struct Rendered {
    pub text: String,
    /// FC_OUT, where the rendered text was written.
    pub out: Option<PathBuf>,
    set: Set,
    origins: Vec<Origin>,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rendered({} bytes)", self.text.len())
    }
}

impl Rendered {
    /// The template file, line and column that produced rendered `line:col` (1-based, column
    /// in characters). Text copied from a template maps exactly; output of an action maps to
    /// the action.
    pub fn locate(&self, line: u32, col: u32) -> Option<(String, u32, u32)> {
        let mut off = 0usize;
        for _ in 1..line {
            off += self.text.get(off..)?.find('\n')? + 1;
        }
        let rest = self.text.get(off..)?;
        off += rest
            .char_indices()
            .nth(col.saturating_sub(1) as usize)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let idx = self
            .origins
            .partition_point(|o| o.out <= off)
            .checked_sub(1)?;
        let o = self.origins.get(idx)?;
        let src = if o.verbatim {
            o.src + (off - o.out)
        } else {
            o.src
        };
        let file = self.set.files.get(o.file)?;
        let (l, c) = file.line_col(src);
        Some((file.path.clone(), l, c))
    }

    /// Move a diagnostic about the rendered text to the template position that produced it.
    pub fn map_diagnostic(&self, d: &mut Diagnostic) {
        if d.line == 0 {
            return;
        }
        if let Some((file, l, c)) = self.locate(d.line, d.col) {
            d.message = match &self.out {
                Some(out) => format!(
                    "{} (FC_OUT {}:{}:{})",
                    d.message,
                    out.display(),
                    d.line,
                    d.col
                ),
                None => format!("{} (rendered line {}, column {})", d.message, d.line, d.col),
            };
            d.file = file;
            d.line = l;
            d.col = c;
        }
    }
}

fn diag(file: &str, line: u32, col: u32, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_string(),
        line,
        col,
        path: "$".to_string(),
        message,
    }
}

/// `*.ext` files directly inside `dir`, sorted by name (Go's ReadDir order).
fn files_in(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, Diagnostic> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        diag(
            &dir.display().to_string(),
            0,
            0,
            format!("cannot read the directory: {e}"),
        )
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

/// Settings: `dir/foo.json` becomes `.foo`. Numbers are floats, as Go decodes them.
pub fn load_settings(dir: &Path) -> Result<Value, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let mut root = serde_json::Map::new();
    for p in files_in(dir, "json").map_err(|d| vec![d])? {
        let file = p.display().to_string();
        let text = match std::fs::read(&p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                errs.push(diag(
                    &file,
                    0,
                    0,
                    format!("cannot read the settings file: {e}"),
                ));
                continue;
            }
        };
        match json::parse(&text) {
            Ok(parsed) => {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !matches!(parsed.root.value, json::Value::Object(_)) {
                    errs.push(diag(
                        &file,
                        parsed.root.pos.line,
                        parsed.root.pos.col,
                        format!(
                            "a settings file must hold an object, found {}",
                            parsed.root.value.kind()
                        ),
                    ));
                    continue;
                }
                root.insert(stem, go_numbers(parsed.root.to_json()));
            }
            Err(issue) => errs.push(Diagnostic {
                path: issue.path,
                ..diag(
                    &file,
                    issue.pos.line,
                    issue.pos.col,
                    format!("settings: {}", issue.message),
                )
            }),
        }
    }
    if errs.is_empty() {
        Ok(Value::Object(root))
    } else {
        Err(errs)
    }
}

// KrakenD: json.Unmarshal into interface{} makes every number a float64.
fn go_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.into_iter().map(go_numbers).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, go_numbers(v))).collect()),
        other => other,
    }
}

/// Render `config` with the FC settings, templates and partials. Writes `FC_OUT` when set.
pub fn render(
    config: &Path,
    opts: &Opts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Rendered, Vec<Diagnostic>> {
    let data = match &opts.settings {
        Some(dir) => load_settings(dir)?,
        None => Value::Object(serde_json::Map::new()),
    };
    let mut set = Set::default();
    let main_name = config
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut sources = vec![(main_name.clone(), config.to_path_buf())];
    if let Some(dir) = &opts.templates {
        for p in files_in(dir, "tmpl").map_err(|d| vec![d])? {
            let name = p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            sources.push((name, p));
        }
    }
    for (name, p) in sources {
        let file = p.display().to_string();
        let text = std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| vec![diag(&file, 0, 0, format!("cannot read the template: {e}"))])?;
        if let Err(e) = set.add(&name, &file, text) {
            let (f, l, c) = set.describe(&e);
            return Err(vec![diag(&f, l, c, format!("template: {}", e.message))]);
        }
    }
    let partials = opts.partials.clone().unwrap_or_default();
    let include = |name: &str| -> Result<String, String> {
        let p = partials.join(name);
        std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("include {name:?}: cannot read {}: {e}", p.display()))
    };
    let tenv = Env {
        var: env,
        include: &include,
    };
    let r = set.render(&main_name, &data, &tenv).map_err(|e| {
        let (f, l, c) = set.describe(&e);
        vec![diag(&f, l, c, format!("template: {}", e.message))]
    })?;
    if let Some(out) = &opts.out {
        std::fs::write(out, &r.text).map_err(|e| {
            vec![diag(
                &out.display().to_string(),
                0,
                0,
                format!("cannot write FC_OUT: {e}"),
            )]
        })?;
    }
    Ok(Rendered {
        text: r.text,
        out: opts.out.clone(),
        set,
        origins: r.origins,
    })
}
