//! Executes a parsed template against a JSON value, recording where output came from.

use super::parse::{Arg, Branch, Cmd, Node, Pipe};
use super::{funcs, Env, Origin, Rendered, Set, TmplError, MAX_OUTPUT};
use serde_json::Value;

/// `{{template}}` calls deeper than this are refused (a template calling itself forever).
const MAX_CALL_DEPTH: usize = 100;

/// Nodes executed (and range iterations) beyond this are refused: nested ranges that print
/// nothing would otherwise spin without bound.
const MAX_STEPS: u64 = 5_000_000;

/// Nested blocks and calls together deeper than this are refused: each costs a stack frame
/// of the thread that renders (the main thread, on SIGHUP too).
const MAX_WALK_DEPTH: usize = 1000;

pub(super) fn run(
    set: &Set,
    file: usize,
    body: &[Node],
    data: &Value,
    env: &Env,
) -> Result<Rendered, TmplError> {
    let mut st = St {
        set,
        env,
        out: String::new(),
        origins: Vec::new(),
        vars: vec![("$".to_string(), data.clone())],
        depth: 0,
        walk_depth: 0,
        steps: 0,
        file,
    };
    st.walk(data, body)?;
    Ok(Rendered {
        text: st.out,
        origins: st.origins,
    })
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct St<'a> {
    set: &'a Set,
    env: &'a Env<'a>,
    out: String,
    origins: Vec<Origin>,
    vars: Vec<(String, Value)>,
    depth: usize,
    walk_depth: usize,
    steps: u64,
    file: usize,
}

impl St<'_> {
    fn err(&self, at: u32, message: String) -> TmplError {
        TmplError {
            file: self.file,
            at: at as usize,
            message,
        }
    }

    fn emit(&mut self, s: &str, at: u32, verbatim: bool) -> Result<(), TmplError> {
        if s.is_empty() {
            return Ok(());
        }
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(
                at,
                format!("the rendered output exceeds {MAX_OUTPUT} bytes"),
            ));
        }
        self.origins.push(Origin {
            out: self.out.len(),
            file: self.file,
            src: at as usize,
            verbatim,
        });
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, TmplError> {
        if self.walk_depth >= MAX_WALK_DEPTH {
            let at = nodes.first().map(node_at).unwrap_or(0);
            return Err(self.err(
                at,
                format!("blocks and template calls nest deeper than {MAX_WALK_DEPTH}"),
            ));
        }
        self.walk_depth += 1;
        let r = self.walk_nodes(dot, nodes);
        self.walk_depth -= 1;
        r
    }

    fn step(&mut self, at: u32) -> Result<(), TmplError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(at, format!("the template runs more than {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn walk_nodes(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, TmplError> {
        for n in nodes {
            self.step(node_at(n))?;
            match n {
                Node::Text { text, at } => self.emit(text, *at, true)?,
                Node::Action { pipe, at } => {
                    let v = self.pipe(dot, pipe, true)?;
                    if pipe.decl.is_empty() {
                        let s = funcs::print_top(&v);
                        self.emit(&s, *at, false)?;
                    }
                }
                Node::If(b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, &b.pipe, true)?;
                    let flow = if funcs::truth(&v) {
                        self.walk(dot, &b.body)?
                    } else if let Some(e) = &b.els {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, &b.pipe, true)?;
                    let flow = if funcs::truth(&v) {
                        self.walk(&v, &b.body)?
                    } else if let Some(e) = &b.els {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => self.range(dot, b)?,
                Node::Template { name, pipe, at } => {
                    let data = match pipe {
                        Some(p) => self.pipe(dot, p, false)?,
                        None => Value::Null,
                    };
                    self.call_template(name, &data, *at)?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn call_template(&mut self, name: &str, data: &Value, at: u32) -> Result<(), TmplError> {
        let set = self.set;
        let Some((file, body)) = set.lookup(name) else {
            // KrakenD: Go fails here too ("no such template"); CE then parsed the raw file.
            return Err(self.err(at, format!("no such template {name:?}")));
        };
        if self.depth >= MAX_CALL_DEPTH {
            return Err(self.err(
                at,
                format!("exceeded maximum template depth ({MAX_CALL_DEPTH})"),
            ));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), data.clone())]);
        let saved_file = std::mem::replace(&mut self.file, *file);
        self.depth += 1;
        let r = self.walk(data, body);
        self.depth -= 1;
        self.file = saved_file;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    fn range(&mut self, dot: &Value, b: &Branch) -> Result<(), TmplError> {
        let mark = self.vars.len();
        let v = self.pipe(dot, &b.pipe, false)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i as i64), e.clone()))
                .collect(),
            // KrakenD: Go ranges over a map in sorted key order.
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| {
                        (
                            Value::from(k.clone()),
                            m.get(k).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            }
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                let n = n.as_i64().unwrap_or(0).clamp(0, 1_000_000);
                (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(self.err(
                    b.pipe.at,
                    format!("range can't iterate over {}", funcs::print_top(other)),
                ))
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.els {
                self.walk(dot, e)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        for (k, e) in items {
            self.step(b.pipe.at)?;
            let inner = self.vars.len();
            match b.pipe.decl.as_slice() {
                [one] => self.vars.push((one.clone(), e.clone())),
                [a, c] => {
                    self.vars.push((a.clone(), k));
                    self.vars.push((c.clone(), e.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&e, &b.body)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipe(&mut self, dot: &Value, p: &Pipe, declare: bool) -> Result<Value, TmplError> {
        let mut val: Option<Value> = None;
        for c in &p.cmds {
            val = Some(self.cmd(dot, c, val)?);
        }
        let v = val.unwrap_or(Value::Null);
        if declare {
            for name in &p.decl {
                if p.assign {
                    match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = v.clone(),
                        None => return Err(self.err(p.at, format!("undefined variable: {name}"))),
                    }
                } else {
                    self.vars.push((name.clone(), v.clone()));
                }
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, piped: Option<Value>) -> Result<Value, TmplError> {
        let Some(((first, at), rest)) = c.args.split_first() else {
            return Err(self.err(c.at, "empty command".into()));
        };
        if let Arg::Func(name) = first {
            if name == "and" || name == "or" {
                return self.and_or(dot, name == "and", rest, piped, *at);
            }
            let mut args = Vec::with_capacity(rest.len() + 1);
            for (a, aat) in rest {
                args.push(self.arg(dot, a, *aat)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(name, args, *at);
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(self.err(*at, "can't give argument to non-function".into()));
        }
        self.arg(dot, first, *at)
    }

    fn and_or(
        &mut self,
        dot: &Value,
        and: bool,
        rest: &[(Arg, u32)],
        piped: Option<Value>,
        at: u32,
    ) -> Result<Value, TmplError> {
        if rest.is_empty() && piped.is_none() {
            return Err(self.err(at, "wrong number of args: want at least 1 got 0".into()));
        }
        let mut last = Value::Null;
        // KrakenD: Go 1.18+ stops at the first argument that decides the result.
        for (a, aat) in rest {
            last = self.arg(dot, a, *aat)?;
            if funcs::truth(&last) != and {
                return Ok(last);
            }
        }
        if let Some(p) = piped {
            last = p;
        }
        Ok(last)
    }

    fn call(&mut self, name: &str, args: Vec<Value>, at: u32) -> Result<Value, TmplError> {
        funcs::call(name, args, self.env).map_err(|m| self.err(at, m))
    }

    fn arg(&mut self, dot: &Value, a: &Arg, at: u32) -> Result<Value, TmplError> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil => Ok(Value::Null),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Str(s) => Ok(Value::String(s.clone())),
            Arg::Num(n) => funcs::number(n)
                .ok_or_else(|| self.err(at, format!("illegal number syntax: {n:?}"))),
            Arg::Field(chain) => self.fields(dot, chain, ".", at),
            Arg::Var(name, chain) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(self.err(at, format!("undefined variable: {name}")));
                };
                self.fields(v, chain, name, at)
            }
            Arg::Sub(p, chain) => {
                let v = self.pipe(dot, p, false)?;
                self.fields(&v, chain, "(…)", at)
            }
            Arg::Func(name) => self.call(name, Vec::new(), at),
        }
    }

    /// Follow `.a.b` from `v` by reference; only the value reached is cloned.
    fn fields(&self, v: &Value, chain: &[String], base: &str, at: u32) -> Result<Value, TmplError> {
        static NULL: Value = Value::Null;
        let mut v = v;
        let mut path = base.trim_end_matches('.').to_string();
        for f in chain {
            v = match v {
                Value::Object(m) => m.get(f).unwrap_or(&NULL),
                Value::Null => {
                    // KrakenD: Go says "nil pointer evaluating interface {}.f".
                    return Err(self.err(
                        at,
                        format!(
                            "nil pointer evaluating {path}.{f}: {} is missing or null",
                            if path.is_empty() { "." } else { &path }
                        ),
                    ));
                }
                other => {
                    return Err(self.err(
                        at,
                        format!(
                            "can't evaluate field {f} in {} {}",
                            funcs::kind(other),
                            if path.is_empty() { "." } else { &path }
                        ),
                    ))
                }
            };
            path.push('.');
            path.push_str(f);
        }
        Ok(v.clone())
    }
}

/// Where a node starts in its source.
fn node_at(n: &Node) -> u32 {
    match n {
        Node::Text { at, .. } | Node::Action { at, .. } | Node::Template { at, .. } => *at,
        Node::If(b) | Node::Range(b) | Node::With(b) => b.pipe.at,
        Node::Break | Node::Continue => 0,
    }
}
