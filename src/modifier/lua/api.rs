//! The objects KrakenD hands to scripts: `request` and `response` (proxy and backend hooks),
//! `ctx` (endpoint hook), and `custom_error`. Each getter/setter is one method: called with no
//! argument it reads, with one it writes (krakend-lua `proxy/request.go`, `proxy/response.go`,
//! `router/gin/lua.go`).

use super::value::{busy, charge, num, text, LVal, LuaList, LuaTable, TableRef};
use bytes::Bytes;
use mlua::{Lua, MultiValue, UserData, UserDataMethods, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// A request as a script sees and changes it.
#[derive(Clone, Debug, Default)]
pub struct ReqState {
    pub method: String,
    /// The full URL (backend hook: `http://host/path?query`), or the client's path and query.
    pub url: String,
    pub path: String,
    pub host: String,
    /// Decoded pairs, in order.
    pub query: Vec<(String, String)>,
    /// Names as lura keys them (first letter upper case).
    pub params: Vec<(String, String)>,
    /// Canonical names, each with its values.
    pub headers: Vec<(String, Vec<String>)>,
    pub body: Bytes,
}

/// A response as a script sees and changes it.
#[derive(Debug, Default)]
pub struct RespState {
    /// The data as a shared table, built from `fields` the first time a script asks for it.
    pub data: Option<TableRef>,
    pub fields: Option<crate::json::Fields>,
    pub complete: bool,
    pub status: u16,
    pub headers: Vec<(String, Vec<String>)>,
    /// `resp:body(...)` (KrakenD: the response's `Io`, only rendered by no-op endpoints).
    pub body: Option<Bytes>,
}

impl RespState {
    /// The data a post script left, as fields (unchanged when it never asked for them). An
    /// error when it is too large to render (a table holding itself, see `RENDER_LIMIT`).
    pub fn take_fields(&mut self) -> Result<Option<crate::json::Fields>, super::LuaError> {
        match self.data.take() {
            Some(t) => LVal::Table(t)
                .render()
                .map(|j| Some(crate::json::from_value(&j)))
                .ok_or(super::LuaError::Memory),
            None => Ok(self.fields.take()),
        }
    }

    fn table(&mut self) -> TableRef {
        if let Some(t) = &self.data {
            return t.clone();
        }
        let mut members = Vec::new();
        if let Some(f) = self.fields.as_mut() {
            for (k, v) in f.members() {
                let key: String = serde_json::from_slice(&[b"\"", &k[..], b"\""].concat())
                    .unwrap_or_else(|_| String::from_utf8_lossy(k).into_owned());
                let value = serde_json::from_slice(v).unwrap_or(serde_json::Value::Null);
                members.push((key, LVal::from_json(value)));
            }
        }
        let t = Rc::new(RefCell::new(members));
        self.data = Some(t.clone());
        t
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`.
pub fn canonical(name: &str) -> String {
    String::from_utf8_lossy(&crate::gateway::forward::canonical(name.as_bytes())).into_owned()
}

pub(super) fn first(headers: &[(String, Vec<String>)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.first().cloned())
        .unwrap_or_default()
}

fn set_header(
    headers: &mut Vec<(String, Vec<String>)>,
    name: String,
    values: Option<Vec<String>>,
) -> mlua::Result<()> {
    let size = name.len() + values.iter().flatten().map(String::len).sum::<usize>();
    charge(size + 48)?;
    headers.retain(|(k, _)| *k != name);
    if let Some(v) = values {
        headers.push((name, v));
    }
    Ok(())
}

fn arg(args: &MultiValue, i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

fn need_args() -> mlua::Error {
    mlua::Error::runtime("need arguments")
}

/// Go's `url.Values.Encode`: sorted by key, each part query-escaped.
pub fn encode_query(q: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = q.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        crate::gateway::forward::query_escape(k, &mut out);
        out.push('=');
        crate::gateway::forward::query_escape(v, &mut out);
    }
    out
}

/// A lookup of a path parameter: lura's title-cased name, or the name as written.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| {
            params.iter().find(|(k, _)| {
                k.len() == name.len() && k.eq_ignore_ascii_case(name) && k.get(1..) == name.get(1..)
            })
        })
        .map(|(_, v)| v)
}

fn list_values(v: &Value) -> mlua::Result<Vec<String>> {
    let Value::UserData(u) = v else {
        return Err(mlua::Error::runtime(
            "invalid header value, must be a luaList",
        ));
    };
    let l = u
        .borrow::<LuaList>()
        .map_err(|_| mlua::Error::runtime("invalid header value, must be a luaList"))?;
    let values = busy(l.0.try_borrow())?
        .iter()
        .map(|v| match v {
            LVal::Str(s) => s.clone(),
            other => match other.render() {
                Some(serde_json::Value::String(s)) => s,
                Some(j) => j.to_string(),
                None => String::new(),
            },
        })
        .collect();
    Ok(values)
}

/// `headers(name, value)` on a request or a response: set one value, or delete with `nil`.
fn set_header_args(
    headers: &mut Vec<(String, Vec<String>)>,
    args: &MultiValue,
) -> mlua::Result<Value> {
    let name = canonical(&text(&arg(args, 0)));
    let value = match arg(args, 1) {
        Value::Nil => None,
        v => Some(vec![text(&v)]),
    };
    set_header(headers, name, value)?;
    Ok(Value::Nil)
}

/// `headerList(name)` / `headerList(name, list)`, the same on a request and a response.
fn header_list_method(
    lua: &Lua,
    headers: &mut Vec<(String, Vec<String>)>,
    args: &MultiValue,
) -> mlua::Result<Value> {
    match args.len() {
        0 => Err(need_args()),
        1 => {
            let l = header_list(headers, &canonical(&text(&arg(args, 0))));
            Ok(Value::UserData(lua.create_userdata(l)?))
        }
        _ => {
            let name = canonical(&text(&arg(args, 0)));
            let values = list_values(&arg(args, 1))?;
            set_header(headers, name, Some(values))?;
            Ok(Value::Nil)
        }
    }
}

pub(super) fn header_list(headers: &[(String, Vec<String>)], name: &str) -> LuaList {
    let values = headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.iter().cloned().map(LVal::Str).collect())
        .unwrap_or_default();
    LuaList(Rc::new(RefCell::new(values)))
}

/// `request.load()` in the proxy and backend hooks.
#[derive(Clone)]
pub struct Request(pub Rc<RefCell<ReqState>>);

impl UserData for Request {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("method", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.method.clone()));
            }
            r.method = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("path", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.path.clone()));
            }
            r.path = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("query", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(encode_query(&r.query)));
            }
            r.query = crate::gateway::forward::parse_query(text(&arg(&args, 0)).as_bytes());
            Ok(None)
        });
        m.add_method("url", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.url.clone()));
            }
            r.url = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("params", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => {
                    let t: Vec<(String, LVal)> = r
                        .params
                        .iter()
                        .map(|(k, v)| (k.clone(), LVal::Str(v.clone())))
                        .collect();
                    Ok(Value::UserData(
                        lua.create_userdata(LuaTable(Rc::new(RefCell::new(t))))?,
                    ))
                }
                1 => {
                    let v = param(&r.params, &text(&arg(&args, 0)))
                        .cloned()
                        .unwrap_or_default();
                    Ok(Value::String(lua.create_string(&v)?))
                }
                _ => {
                    let (k, v) = (text(&arg(&args, 0)), text(&arg(&args, 1)));
                    match r.params.iter_mut().find(|(n, _)| *n == k) {
                        Some(slot) => slot.1 = v,
                        None => r.params.push((k, v)),
                    }
                    Ok(Value::Nil)
                }
            }
        });
        m.add_method("headers", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => {
                    let t: Vec<(String, LVal)> = r
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            let l = v.iter().cloned().map(LVal::Str).collect();
                            (k.clone(), LVal::List(Rc::new(RefCell::new(l))))
                        })
                        .collect();
                    Ok(Value::UserData(
                        lua.create_userdata(LuaTable(Rc::new(RefCell::new(t))))?,
                    ))
                }
                1 => {
                    let v = first(&r.headers, &canonical(&text(&arg(&args, 0))));
                    Ok(Value::String(lua.create_string(&v)?))
                }
                _ => set_header_args(&mut r.headers, &args),
            }
        });
        m.add_method("headerList", |lua, this, args: MultiValue| {
            header_list_method(lua, &mut busy(this.0.try_borrow_mut())?.headers, &args)
        });
        m.add_method("body", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Value::String(lua.create_string(&r.body[..])?));
            }
            r.body = match arg(&args, 0) {
                Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
                v => Bytes::from(text(&v)),
            };
            Ok(Value::Nil)
        });
    }
}

/// `response.load()` in the proxy and backend post hooks.
#[derive(Clone)]
pub struct Response(pub Rc<RefCell<RespState>>);

impl UserData for Response {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("isComplete", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.complete));
            }
            r.complete = matches!(arg(&args, 0), Value::Boolean(true));
            Ok(None)
        });
        m.add_method("statusCode", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(f64::from(r.status)));
            }
            let n = num(&arg(&args, 0));
            r.status = if (0.0..=999.0).contains(&n) {
                n as u16
            } else {
                0
            };
            Ok(None)
        });
        m.add_method("data", |_, this, ()| {
            Ok(LuaTable(busy(this.0.try_borrow_mut())?.table()))
        });
        m.add_method("headers", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => Err(need_args()),
                // KrakenD: read without canonicalising the name.
                1 => {
                    let v = first(&r.headers, &text(&arg(&args, 0)));
                    Ok(Value::String(lua.create_string(&v)?))
                }
                _ => set_header_args(&mut r.headers, &args),
            }
        });
        m.add_method("headerList", |lua, this, args: MultiValue| {
            header_list_method(lua, &mut busy(this.0.try_borrow_mut())?.headers, &args)
        });
        m.add_method("body", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                let b = r.body.clone().unwrap_or_default();
                return Ok(Value::String(lua.create_string(&b[..])?));
            }
            r.body = Some(match arg(&args, 0) {
                Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
                v => Bytes::from(text(&v)),
            });
            Ok(Value::Nil)
        });
    }
}

/// `ctx.load()` in the endpoint hook (gin's context).
#[derive(Clone)]
pub struct Ctx(pub Rc<RefCell<ReqState>>);

impl UserData for Ctx {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("method", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.method.clone()));
            }
            r.method = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("url", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.url.clone()));
            }
            r.url = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("host", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Some(r.host.clone()));
            }
            r.host = text(&arg(&args, 0));
            Ok(None)
        });
        m.add_method("query", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => Err(need_args()),
                1 => {
                    let k = text(&arg(&args, 0));
                    Ok(Some(
                        r.query
                            .iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    ))
                }
                _ => {
                    // KrakenD: `q.Set`: every value of the key replaced by this one.
                    let (k, v) = (text(&arg(&args, 0)), text(&arg(&args, 1)));
                    r.query.retain(|(n, _)| *n != k);
                    r.query.push((k, v));
                    Ok(None)
                }
            }
        });
        m.add_method("params", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => Err(need_args()),
                1 => {
                    let k = text(&arg(&args, 0));
                    Ok(Some(
                        r.params
                            .iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    ))
                }
                _ => {
                    let (k, v) = (text(&arg(&args, 0)), text(&arg(&args, 1)));
                    match r.params.iter_mut().find(|(n, _)| *n == k) {
                        Some(slot) => slot.1 = v,
                        None => r.params.push((k, v)),
                    }
                    Ok(None)
                }
            }
        });
        m.add_method("headers", |_, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            match args.len() {
                0 => Err(need_args()),
                1 => Ok(Some(first(&r.headers, &canonical(&text(&arg(&args, 0)))))),
                _ => {
                    let name = canonical(&text(&arg(&args, 0)));
                    let v = text(&arg(&args, 1));
                    set_header(&mut r.headers, name, Some(vec![v]))?;
                    Ok(None)
                }
            }
        });
        m.add_method("body", |lua, this, args: MultiValue| {
            let mut r = busy(this.0.try_borrow_mut())?;
            if args.is_empty() {
                return Ok(Value::String(lua.create_string(&r.body[..])?));
            }
            r.body = match arg(&args, 0) {
                Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
                v => Bytes::from(text(&v)),
            };
            Ok(Value::Nil)
        });
    }
}

/// What `custom_error(msg[, status[, content_type]])` raises.
#[derive(Clone, Debug)]
pub struct CustomError {
    pub message: String,
    /// None: KrakenD's `-1`, a plain 500.
    pub status: Option<u16>,
    pub content_type: Option<String>,
}

impl std::fmt::Display for CustomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CustomError {}

pub fn custom_error(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|_, args: MultiValue| -> mlua::Result<()> {
        if args.is_empty() {
            return Err(need_args());
        }
        let status = match args.get(1) {
            Some(v) => {
                let n = num(v);
                (100.0..=999.0).contains(&n).then_some(n as u16)
            }
            None => None,
        };
        let content_type = args.get(2).map(text).filter(|s| !s.is_empty());
        Err(mlua::Error::external(CustomError {
            message: text(&arg(&args, 0)),
            status,
            content_type,
        }))
    })
}
