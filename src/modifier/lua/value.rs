//! KrakenD's `luaTable` and `luaList`: JSON data shared by reference between Rust and Lua (Go
//! maps and slices are references, so a nested table taken with `get` and changed with `set`
//! changes the response). Numbers read from a backend keep their JSON text until Lua replaces
//! them.

use mlua::{FromLua, Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

thread_local! {
    /// Bytes the running call may still store on the Rust side (tables and lists it builds,
    /// headers it sets): they live outside the Lua heap, so the Lua memory limit does not see
    /// them. usize::MAX when no call runs.
    static ALLOWANCE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// What one stored node costs besides its text (an estimate of the Rust-side size).
const NODE: usize = 48;

/// The most a table may render to (nodes and text): a table that holds itself twice would
/// otherwise render to an exponential size.
pub const RENDER_LIMIT: usize = 512 << 20;

/// A shared object already borrowed (only a finaliser running inside an API call can do
/// that) is a script error, never a panic.
pub(super) fn busy<T, E>(r: Result<T, E>) -> mlua::Result<T> {
    r.map_err(|_| mlua::Error::runtime("lua: object in use"))
}

pub(super) fn set_allowance(bytes: usize) {
    ALLOWANCE.set(bytes);
}

pub(super) fn allowance() -> usize {
    ALLOWANCE.get()
}

/// Charge `bytes` of Rust-side data to the running call; past its memory limit, a memory
/// error (the same one the Lua heap raises).
pub(super) fn charge(bytes: usize) -> mlua::Result<()> {
    let left = ALLOWANCE.get();
    if bytes > left {
        ALLOWANCE.set(0);
        return Err(mlua::Error::MemoryError("not enough memory".into()));
    }
    ALLOWANCE.set(left - bytes);
    Ok(())
}

pub type TableRef = Rc<RefCell<Vec<(String, LVal)>>>;
pub type ListRef = Rc<RefCell<Vec<LVal>>>;

/// One JSON value as the Lua API sees it.
#[derive(Clone, Debug)]
pub enum LVal {
    Null,
    Bool(bool),
    /// A number from JSON, its text kept.
    Json(serde_json::Number),
    /// A number set from Lua (a float64 in KrakenD).
    Num(f64),
    Str(String),
    Table(TableRef),
    List(ListRef),
}

impl LVal {
    pub fn from_json(v: serde_json::Value) -> LVal {
        match v {
            serde_json::Value::Null => LVal::Null,
            serde_json::Value::Bool(b) => LVal::Bool(b),
            serde_json::Value::Number(n) => LVal::Json(n),
            serde_json::Value::String(s) => LVal::Str(s),
            serde_json::Value::Array(a) => LVal::List(Rc::new(RefCell::new(
                a.into_iter().map(LVal::from_json).collect(),
            ))),
            serde_json::Value::Object(m) => LVal::Table(Rc::new(RefCell::new(
                m.into_iter()
                    .map(|(k, v)| (k, LVal::from_json(v)))
                    .collect(),
            ))),
        }
    }

    /// Back to JSON, spending `left` (nodes and text, see [`RENDER_LIMIT`]); None when it runs
    /// out or the nesting passes 256 (a table that holds itself).
    pub fn to_json(&self, left: &mut usize, depth: usize) -> Option<serde_json::Value> {
        let cost = NODE
            + match self {
                LVal::Str(s) => s.len(),
                _ => 0,
            };
        if depth > 256 || *left < cost {
            return None;
        }
        *left -= cost;
        Some(match self {
            LVal::Null => serde_json::Value::Null,
            LVal::Bool(b) => serde_json::Value::Bool(*b),
            LVal::Json(n) => serde_json::Value::Number(n.clone()),
            LVal::Num(f) => number(*f),
            LVal::Str(s) => serde_json::Value::String(s.clone()),
            LVal::Table(t) => {
                let t = t.try_borrow().ok()?;
                let mut m = serde_json::Map::with_capacity(t.len());
                for (k, v) in t.iter() {
                    m.insert(k.clone(), v.to_json(left, depth + 1)?);
                }
                serde_json::Value::Object(m)
            }
            LVal::List(l) => {
                let l = l.try_borrow().ok()?;
                let mut a = Vec::with_capacity(l.len());
                for v in l.iter() {
                    a.push(v.to_json(left, depth + 1)?);
                }
                serde_json::Value::Array(a)
            }
        })
    }

    /// [`to_json`](Self::to_json) with the whole render limit.
    pub fn render(&self) -> Option<serde_json::Value> {
        self.to_json(&mut RENDER_LIMIT.clone(), 0)
    }

    /// The value pushed to Lua (`get`): tables and lists by reference.
    pub fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            // KrakenD: a JSON null is the `luaNil` userdata (nil would look like a missing key).
            LVal::Null => Value::UserData(lua.create_userdata(LuaNil)?),
            LVal::Bool(b) => Value::Boolean(b),
            LVal::Json(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
            LVal::Num(f) => Value::Number(f),
            LVal::Str(s) => Value::String(lua.create_string(&s)?),
            LVal::Table(t) => Value::UserData(lua.create_userdata(LuaTable(t))?),
            LVal::List(l) => Value::UserData(lua.create_userdata(LuaList(l))?),
        })
    }

    /// A Lua value stored with `set` (KrakenD `tableSet`): strings, numbers, booleans, native
    /// tables (converted to objects, keys as text) and luaTable/luaList (by reference). Anything
    /// else is not stored. What is copied is charged to the call.
    pub fn from_lua_value(v: &Value, depth: usize) -> mlua::Result<Option<LVal>> {
        Ok(match v {
            Value::String(s) => {
                let s = s.to_string_lossy();
                charge(NODE + s.len())?;
                Some(LVal::Str(s))
            }
            Value::Integer(i) => Some(LVal::Num(*i as f64)),
            Value::Number(n) => Some(LVal::Num(*n)),
            Value::Boolean(b) => Some(LVal::Bool(*b)),
            Value::Table(t) if depth < 256 => {
                charge(NODE)?;
                Some(LVal::Table(Rc::new(RefCell::new(native_table(t, depth)?))))
            }
            Value::UserData(u) => {
                if let Ok(t) = u.borrow::<LuaTable>() {
                    Some(LVal::Table(t.0.clone()))
                } else if let Ok(l) = u.borrow::<LuaList>() {
                    Some(LVal::List(l.0.clone()))
                } else if u.is::<LuaNil>() {
                    Some(LVal::Null)
                } else {
                    None
                }
            }
            _ => None,
        })
    }
}

/// KrakenD (`lua.ParseToTable`): a native Lua table becomes an object whatever its keys, so an
/// array `{a, b}` is `{"1": a, "2": b}`. Numeric keys first, in order, then the others.
fn native_table(t: &mlua::Table, depth: usize) -> mlua::Result<Vec<(String, LVal)>> {
    let mut numeric: Vec<(f64, LVal)> = Vec::new();
    let mut named: Vec<(String, LVal)> = Vec::new();
    for (k, v) in t.clone().pairs::<Value, Value>().flatten() {
        let Some(v) = LVal::from_lua_value(&v, depth + 1)? else {
            continue;
        };
        match k {
            Value::Integer(i) => numeric.push((i as f64, v)),
            Value::Number(n) => numeric.push((n, v)),
            other => {
                let key = text(&other);
                charge(key.len())?;
                named.push((key, v))
            }
        }
    }
    numeric.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(numeric
        .into_iter()
        .map(|(n, v)| (number_text(n), v))
        .chain(named)
        .collect())
}

/// A float64 as Go's encoding/json writes it: integral values without a fraction.
pub fn number(f: f64) -> serde_json::Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        serde_json::Value::Number(serde_json::Number::from(f as i64))
    } else {
        serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// A number as Lua's `tostring` writes it (`%.14g`): integral values without a fraction.
pub fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A Lua argument as text (gopher-lua's `LVAsString` as binder's `String()` uses it).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => number_text(*n),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => String::new(),
        _ => String::new(),
    }
}

/// A Lua argument as a number (0 when it is not one).
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

fn need(args: &MultiValue, n: usize) -> mlua::Result<()> {
    if args.len() + 1 == n {
        Ok(())
    } else {
        Err(mlua::Error::runtime("need arguments"))
    }
}

fn arg(args: &MultiValue, i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// `luaTable`: an object.
#[derive(Clone)]
pub struct LuaTable(pub TableRef);

impl UserData for LuaTable {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua, this, args: MultiValue| {
            need(&args, 2)?;
            let key = text(&arg(&args, 0));
            let found = busy(this.0.try_borrow())?
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
            match found {
                Some(v) => v.into_lua(lua),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("set", |_, this, args: MultiValue| {
            need(&args, 3)?;
            let key = text(&arg(&args, 0));
            if let Some(v) = LVal::from_lua_value(&arg(&args, 1), 0)? {
                charge(key.len())?;
                let mut t = busy(this.0.try_borrow_mut())?;
                match t.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = v,
                    None => t.push((key, v)),
                }
            }
            Ok(())
        });
        m.add_method("len", |_, this, ()| {
            Ok(busy(this.0.try_borrow())?.len() as f64)
        });
        m.add_method("del", |_, this, args: MultiValue| {
            need(&args, 2)?;
            let key = text(&arg(&args, 0));
            busy(this.0.try_borrow_mut())?.retain(|(k, _)| *k != key);
            Ok(())
        });
        // KrakenD: the keys, sorted, as a luaList.
        m.add_method("keys", |_, this, ()| {
            let mut keys: Vec<String> = busy(this.0.try_borrow())?
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            keys.sort();
            Ok(LuaList(Rc::new(RefCell::new(
                keys.into_iter().map(LVal::Str).collect(),
            ))))
        });
        m.add_method("keyExists", |_, this, args: MultiValue| {
            need(&args, 2)?;
            let key = text(&arg(&args, 0));
            Ok(busy(this.0.try_borrow())?.iter().any(|(k, _)| *k == key))
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(LVal::Table(this.0.clone())
                .render()
                .map(|j| j.to_string())
                .unwrap_or_default())
        });
    }
}

/// `luaList`: an array, indexed from 0 as in KrakenD.
#[derive(Clone)]
pub struct LuaList(pub ListRef);

/// The largest index `set` grows a list to: a script cannot ask for a huge allocation with one
/// call (the memory limit would stop it anyway, later).
const MAX_LIST: usize = 1 << 20;

impl UserData for LuaList {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua, this, args: MultiValue| {
            need(&args, 2)?;
            let i = num(&arg(&args, 0));
            if i < 0.0 {
                return Ok(Value::Nil);
            }
            let v = busy(this.0.try_borrow())?.get(i as usize).cloned();
            match v {
                Some(v) => v.into_lua(lua),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("set", |_, this, args: MultiValue| {
            need(&args, 3)?;
            let i = num(&arg(&args, 0));
            if i < 0.0 || i as usize > MAX_LIST {
                return Ok(());
            }
            let i = i as usize;
            let v = LVal::from_lua_value(&arg(&args, 1), 0)?;
            let mut l = busy(this.0.try_borrow_mut())?;
            if i >= l.len() {
                charge((i + 1 - l.len()) * NODE)?;
                l.resize(i + 1, LVal::Null);
            }
            if let (Some(v), Some(slot)) = (v, l.get_mut(i)) {
                *slot = v;
            }
            Ok(())
        });
        m.add_method("len", |_, this, ()| {
            Ok(busy(this.0.try_borrow())?.len() as f64)
        });
        m.add_method("del", |_, this, args: MultiValue| {
            need(&args, 2)?;
            let i = num(&arg(&args, 0));
            let mut l = busy(this.0.try_borrow_mut())?;
            if i >= 0.0 && (i as usize) < l.len() {
                l.remove(i as usize);
            }
            Ok(())
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(LVal::List(this.0.clone())
                .render()
                .map(|j| j.to_string())
                .unwrap_or_default())
        });
    }
}

/// `luaNil`: a JSON null.
#[derive(Clone, Copy)]
pub struct LuaNil;

impl UserData for LuaNil {}

impl FromLua for LuaTable {
    fn from_lua(v: Value, _: &Lua) -> mlua::Result<Self> {
        match v {
            Value::UserData(u) => Ok(u.borrow::<LuaTable>()?.clone()),
            _ => Err(mlua::Error::runtime("luaTable expected")),
        }
    }
}

impl FromLua for LuaList {
    fn from_lua(v: Value, _: &Lua) -> mlua::Result<Self> {
        match v {
            Value::UserData(u) => Ok(u.borrow::<LuaList>()?.clone()),
            _ => Err(mlua::Error::runtime("luaList expected")),
        }
    }
}

/// Register `luaTable.new()` and `luaList.new()` in `env`.
pub fn register(lua: &Lua, env: &mlua::Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|_, ()| Ok(LuaTable(Rc::new(RefCell::new(Vec::new())))))?,
    )?;
    env.set("luaTable", t)?;
    let l = lua.create_table()?;
    l.set(
        "new",
        lua.create_function(|_, ()| Ok(LuaList(Rc::new(RefCell::new(Vec::new())))))?,
    )?;
    env.set("luaList", l)?;
    Ok(())
}
