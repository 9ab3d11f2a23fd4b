//! Parser: tokens -> a tree of nodes per template; `define`/`block` add named templates.

use super::lex::{Tok, Token};
use super::TmplError;

#[derive(Clone, Debug)]
pub enum Node {
    Text {
        text: String,
        at: u32,
    },
    Action {
        pipe: Pipe,
        at: u32,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        name: String,
        pipe: Option<Pipe>,
        at: u32,
    },
    Break,
    Continue,
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub els: Option<Vec<Node>>,
}

#[derive(Clone, Debug)]
pub struct Pipe {
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
    pub at: u32,
}

#[derive(Clone, Debug)]
pub struct Cmd {
    pub args: Vec<(Arg, u32)>,
    pub at: u32,
}

#[derive(Clone, Debug)]
pub enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Num(String),
    Str(String),
    /// `.a.b` on dot.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed file: its main body and the templates it defines.
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

/// Every function a template calls must exist, as Go checks at parse time: a typo in a
/// branch not taken today is reported now, not on the day it is taken.
pub fn check_funcs(nodes: &[Node], known: &[&str]) -> Result<(), TmplError> {
    fn pipe(p: &Pipe, known: &[&str]) -> Result<(), TmplError> {
        for c in &p.cmds {
            for (a, at) in &c.args {
                match a {
                    Arg::Func(name) if !known.contains(&name.as_str()) => {
                        return Err(TmplError::at(
                            *at as usize,
                            format!("function {name:?} not defined"),
                        ))
                    }
                    Arg::Sub(p, _) => pipe(p, known)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }
    for n in nodes {
        match n {
            Node::Action { pipe: p, .. } => pipe(p, known)?,
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                pipe(&b.pipe, known)?;
                check_funcs(&b.body, known)?;
                if let Some(e) = &b.els {
                    check_funcs(e, known)?;
                }
            }
            Node::Template { pipe: Some(p), .. } => pipe(p, known)?,
            _ => {}
        }
    }
    Ok(())
}

pub fn parse(toks: Vec<Token>) -> Result<Parsed, TmplError> {
    let mut p = Parser {
        toks,
        i: 0,
        defines: Vec::new(),
        depth: 0,
    };
    let (body, stop) = p.list(true)?;
    if let Some((kw, at)) = stop {
        return Err(TmplError::at(
            at as usize,
            format!("unexpected {{{{{kw}}}}}"),
        ));
    }
    Ok(Parsed {
        body,
        defines: p.defines,
    })
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    defines: Vec<(String, Vec<Node>)>,
    depth: usize,
}

/// Deeper nesting than this is refused so a hostile template cannot exhaust the stack.
const MAX_NEST: usize = 100;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }
    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|t| &t.tok)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn here(&self) -> usize {
        self.peek()
            .or_else(|| self.toks.last())
            .map(|t| t.at as usize)
            .unwrap_or(0)
    }
    fn expect_right(&mut self, what: &str) -> Result<(), TmplError> {
        match self.next() {
            Some(Token {
                tok: Tok::Right, ..
            }) => Ok(()),
            Some(t) => Err(TmplError::at(
                t.at as usize,
                format!("unexpected {} in {what}", describe(&t.tok)),
            )),
            None => Err(TmplError::at(self.here(), format!("unclosed {what}"))),
        }
    }

    /// Nodes up to `{{end}}` or `{{else …}}` (returned as the stop keyword) or the end of input
    /// (only allowed at top level).
    #[allow(clippy::type_complexity)]
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Option<(&'static str, u32)>), TmplError> {
        let mut nodes = Vec::new();
        loop {
            let Some(t) = self.next() else {
                if top {
                    return Ok((nodes, None));
                }
                return Err(TmplError::at(
                    self.here(),
                    "unexpected EOF: missing {{end}}".into(),
                ));
            };
            match t.tok {
                Tok::Text(text) => nodes.push(Node::Text { text, at: t.at }),
                Tok::Left => {
                    let at = t.at;
                    let kw = match self.peek().map(|t| &t.tok) {
                        Some(Tok::Ident(k)) => k.clone(),
                        _ => String::new(),
                    };
                    match kw.as_str() {
                        "end" => {
                            self.i += 1;
                            self.expect_right("end")?;
                            return Ok((nodes, Some(("end", at))));
                        }
                        "else" => {
                            self.i += 1;
                            // `{{else}}`, or `{{else if …}}` / `{{else with …}}`: the caller
                            // parses the rest.
                            if matches!(self.peek().map(|t| &t.tok), Some(Tok::Right)) {
                                self.i += 1;
                            }
                            return Ok((nodes, Some(("else", at))));
                        }
                        "if" | "range" | "with" => {
                            self.i += 1;
                            nodes.push(self.branch(&kw, at)?);
                        }
                        "define" => {
                            self.i += 1;
                            if !top || self.depth > 0 {
                                return Err(TmplError::at(
                                    at as usize,
                                    "define not at top level".into(),
                                ));
                            }
                            let name = self.name("define")?;
                            self.expect_right("define")?;
                            let (body, stop) = self.list(false)?;
                            if !matches!(stop, Some(("end", _))) {
                                return Err(TmplError::at(
                                    at as usize,
                                    "unexpected {{else}} in define".into(),
                                ));
                            }
                            self.defines.push((name, body));
                        }
                        "block" => {
                            self.i += 1;
                            let name = self.name("block")?;
                            let pipe = self.pipeline("block", false)?;
                            let (body, stop) = self.list(false)?;
                            if !matches!(stop, Some(("end", _))) {
                                return Err(TmplError::at(
                                    at as usize,
                                    "unexpected {{else}} in block".into(),
                                ));
                            }
                            self.defines.push((name.clone(), body));
                            nodes.push(Node::Template {
                                name,
                                pipe: Some(pipe),
                                at,
                            });
                        }
                        "template" => {
                            self.i += 1;
                            let name = self.name("template")?;
                            let pipe = if matches!(self.peek().map(|t| &t.tok), Some(Tok::Right)) {
                                self.i += 1;
                                None
                            } else {
                                Some(self.pipeline("template", false)?)
                            };
                            nodes.push(Node::Template { name, pipe, at });
                        }
                        "break" | "continue" => {
                            self.i += 1;
                            self.expect_right(&kw)?;
                            nodes.push(if kw == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => {
                            let pipe = self.pipeline("command", false)?;
                            nodes.push(Node::Action { pipe, at });
                        }
                    }
                }
                other => {
                    return Err(TmplError::at(
                        t.at as usize,
                        format!("unexpected {}", describe(&other)),
                    ))
                }
            }
        }
    }

    fn name(&mut self, ctx: &str) -> Result<String, TmplError> {
        match self.next() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => Ok(s),
            Some(t) => Err(TmplError::at(
                t.at as usize,
                format!(
                    "unexpected {} in {ctx}: expected a quoted name",
                    describe(&t.tok)
                ),
            )),
            None => Err(TmplError::at(self.here(), format!("unclosed {ctx}"))),
        }
    }

    fn branch(&mut self, kw: &str, at: u32) -> Result<Node, TmplError> {
        self.depth += 1;
        if self.depth > MAX_NEST {
            return Err(TmplError::at(
                at as usize,
                "templates nest too deeply".into(),
            ));
        }
        let pipe = self.pipeline(kw, kw == "range")?;
        let (body, stop) = self.list(false).map_err(|e| unclosed(e, kw, at))?;
        let els = match stop {
            Some(("else", else_at)) => {
                let chained = match self.peek_at(0) {
                    Some(Tok::Ident(k)) if (k == "if" || k == "with") && k == kw => Some(k.clone()),
                    Some(Tok::Ident(k)) if k == "if" || k == "with" => Some(k.clone()),
                    _ => None,
                };
                if let Some(k) = chained {
                    // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`: one shared end.
                    self.i += 1;
                    let inner = self.branch(&k, else_at)?;
                    Some(vec![inner])
                } else {
                    let (els, stop2) = self.list(false).map_err(|e| unclosed(e, kw, at))?;
                    if !matches!(stop2, Some(("end", _))) {
                        return Err(TmplError::at(
                            else_at as usize,
                            format!("expected end; found else in {kw}"),
                        ));
                    }
                    Some(els)
                }
            }
            _ => None,
        };
        self.depth -= 1;
        let _ = at;
        let b = Branch { pipe, body, els };
        Ok(match kw {
            "if" => Node::If(b),
            "range" => Node::Range(b),
            _ => Node::With(b),
        })
    }

    /// A pipeline up to `}}` (consumed).
    fn pipeline(&mut self, ctx: &str, allow_two_vars: bool) -> Result<Pipe, TmplError> {
        let at = self.here() as u32;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, or `$i, $e :=` (range only).
        if let Some(Tok::Var(v)) = self.peek_at(0) {
            let v = v.clone();
            match self.peek_at(1) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = matches!(self.peek_at(1), Some(Tok::Assign));
                    decl.push(v);
                    self.i += 2;
                }
                Some(Tok::Comma) if allow_two_vars => {
                    if let (Some(Tok::Var(v2)), Some(Tok::Declare | Tok::Assign)) =
                        (self.peek_at(2), self.peek_at(3))
                    {
                        let v2 = v2.clone();
                        assign = matches!(self.peek_at(3), Some(Tok::Assign));
                        decl.push(v);
                        decl.push(v2);
                        self.i += 4;
                    }
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command(ctx)?;
            cmds.push(cmd);
            match self.next() {
                Some(Token { tok: Tok::Pipe, .. }) => continue,
                Some(Token {
                    tok: Tok::Right, ..
                }) => break,
                Some(t) => {
                    return Err(TmplError::at(
                        t.at as usize,
                        format!("unexpected {} in {ctx}", describe(&t.tok)),
                    ))
                }
                None => return Err(TmplError::at(self.here(), format!("unclosed {ctx}"))),
            }
        }
        Ok(Pipe {
            decl,
            assign,
            cmds,
            at,
        })
    }

    /// Operands up to `|`, `)` or `}}` (not consumed).
    fn command(&mut self, ctx: &str) -> Result<Cmd, TmplError> {
        let at = self.here() as u32;
        let mut args = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Pipe | Tok::Right | Tok::RParen) | None => break,
                _ => args.push(self.operand(ctx)?),
            }
        }
        if args.is_empty() {
            return Err(TmplError::at(
                at as usize,
                format!("missing value for {ctx}"),
            ));
        }
        Ok(Cmd { args, at })
    }

    fn operand(&mut self, ctx: &str) -> Result<(Arg, u32), TmplError> {
        let Some(t) = self.next() else {
            return Err(TmplError::at(self.here(), format!("unclosed {ctx}")));
        };
        let at = t.at;
        let arg = match t.tok {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => {
                let mut chain = vec![f];
                self.chain(&mut chain);
                Arg::Field(chain)
            }
            Tok::Var(v) => {
                let mut chain = Vec::new();
                self.chain(&mut chain);
                Arg::Var(v, chain)
            }
            Tok::Str(s) => Arg::Str(s),
            Tok::Num(n) => Arg::Num(n),
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Func(id),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_NEST {
                    return Err(TmplError::at(
                        at as usize,
                        "templates nest too deeply".into(),
                    ));
                }
                let mut cmds = Vec::new();
                loop {
                    cmds.push(self.command("parenthesized pipeline")?);
                    match self.next() {
                        Some(Token { tok: Tok::Pipe, .. }) => continue,
                        Some(Token {
                            tok: Tok::RParen, ..
                        }) => break,
                        _ => return Err(TmplError::at(at as usize, "unclosed left paren".into())),
                    }
                }
                self.depth -= 1;
                let mut chain = Vec::new();
                self.chain(&mut chain);
                Arg::Sub(
                    Box::new(Pipe {
                        decl: Vec::new(),
                        assign: false,
                        cmds,
                        at,
                    }),
                    chain,
                )
            }
            other => {
                return Err(TmplError::at(
                    at as usize,
                    format!("unexpected {} in {ctx}", describe(&other)),
                ))
            }
        };
        Ok((arg, at))
    }

    /// `.a.b` glued to the previous operand.
    fn chain(&mut self, chain: &mut Vec<String>) {
        while let Some(Token {
            tok: Tok::Field(f),
            space_before: false,
            ..
        }) = self.peek()
        {
            chain.push(f.clone());
            self.i += 1;
        }
    }
}

/// The end of input inside a block is reported where the block starts.
fn unclosed(e: TmplError, kw: &str, at: u32) -> TmplError {
    if e.message.starts_with("unexpected EOF") {
        TmplError::at(at as usize, format!("this {{{{{kw}}}}} has no {{{{end}}}}"))
    } else {
        e
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Left => "\"{{\"".into(),
        Tok::Right => "\"}}\"".into(),
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Field(s) => format!("\".{s}\""),
        Tok::Var(s) => format!("{s:?}"),
        Tok::Dot => "\".\"".into(),
        Tok::Str(s) => format!("quoted string {s:?}"),
        Tok::Num(s) => format!("number {s}"),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}
