//! One Lua state per core (a state is not thread-safe; a worker owns its core), created on the
//! first script call. Each script's chunks are compiled once per plan and core; each request gets
//! a fresh global table whose misses fall through to a shared, read-only base, so what a
//! script leaves in its globals never reaches another request (KrakenD starts a new state per
//! request, with the same effect).
//!
//! Every call runs under an instruction budget (a count hook) and a memory limit; either one
//! ends the script with an error, the request gets a 500 and the core goes on serving.
//!
//! A call of a script that names `http_response` runs as a coroutine, so that
//! `http_response.new` can wait without blocking the core: it yields a marker, the gateway makes the call on the event loop, and resumes the
//! coroutine with the answer. Between two stretches other requests use the same state, so
//! what a call owns (its globals, its closure, its budget and memory left, what
//! `request.load()` returns) is the call's own and bound again at each resume.

use super::api::{self, Ctx, ReqState, Request, RespState, Response};
use super::http::Http;
use super::{LuaError, LuaScript};
use mlua::{
    Function, HookTriggers, LightUserData, Lua, LuaOptions, MultiValue, StdLib, Table,
    ThreadStatus, Value, VmState,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};

/// The hook runs every this many VM instructions; the budget is counted in these steps.
const HOOK_STEP: u32 = 1000;

thread_local! {
    static CORE: RefCell<Option<Core>> = const { RefCell::new(None) };
    /// Steps left for the running call (u64::MAX when none runs).
    static BUDGET: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Set once the running call ran out of budget: `pcall` wrappers re-raise while it is set,
    /// so a script cannot catch its own stop.
    static STOPPED: Cell<bool> = const { Cell::new(false) };
    /// What the running stretch of a call binds to `request.load()` and the others.
    static CURRENT: RefCell<Bound> = RefCell::new(Bound::default());
}

/// What `http_response.new` yields with, so the gateway tells its calls from a script's own
/// yields: the address of this static, as a light userdata.
static MARKER: u8 = 0;

fn marker() -> LightUserData {
    LightUserData(std::ptr::addr_of!(MARKER).cast_mut().cast())
}

/// The marker error of an exhausted budget.
#[derive(Debug)]
struct BudgetExceeded;

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lua: instruction budget exceeded")
    }
}

impl std::error::Error for BudgetExceeded {}

struct Core {
    lua: Lua,
    /// Metatables of per-request globals: misses read the safe or the open base.
    safe_meta: Table,
    open_meta: Table,
    compiled: HashMap<u64, Rc<Compiled>>,
}

/// A script's chunks on this core.
struct Compiled {
    owner: Weak<LuaScript>,
    sources: Vec<Function>,
    pre: Option<Function>,
    post: Option<Function>,
}

/// The base every script may use; `allow_open_libs` adds `io`, `os` (without `os.exit`, which
/// would end every core), `package`/`require` and the loaders. `debug` is never loaded: it
/// could remove the instruction hook.
const SAFE_GLOBALS: &[&str] = &[
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "print",
    "rawequal",
    "rawget",
    "select",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "_VERSION",
    "setmetatable",
    "getmetatable",
];
const SAFE_LIBS: &[&str] = &["string", "table", "math", "coroutine"];
const OPEN_GLOBALS: &[&str] = &[
    "load",
    "loadstring",
    "loadfile",
    "dofile",
    "require",
    "module",
    "collectgarbage",
    "gcinfo",
    "getfenv",
    "setfenv",
    "newproxy",
    "rawset",
];
const OPEN_LIBS: &[&str] = &["io", "os", "package"];

/// Lua code run once per core: `pcall`, `xpcall` and `coroutine.resume` re-raise a stop, and
/// the shared libraries are read-only views.
const PRELUDE: &str = r#"
local safe, open, stopped, marker = ...
local raw_pcall, raw_xpcall, raw_create, raw_resume, raw_yield, raw_status =
  pcall, xpcall, coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local error, setmetatable, select = error, setmetatable, select
local function check(...)
  if stopped() then error("lua: instruction budget exceeded", 0) end
  return ...
end
-- Lua 5.1 cannot yield across pcall, and http_response.new yields to the gateway: a protected
-- call runs its function as a coroutine instead, and every yield inside is passed on out
-- (the script's own coroutine.yield too: Lua 5.2's semantics). A C function cannot yield and
-- keeps the plain pcall.
local function drive(c, ok, ...)
  if not ok then return false, ... end
  if raw_status(c) == "dead" then return true, ... end
  return drive(c, raw_resume(c, raw_yield(...)))
end
local function pcall(f, ...)
  local made, c = raw_pcall(raw_create, f)
  if not made then return check(raw_pcall(f, ...)) end
  return check(drive(c, raw_resume(c, ...)))
end
local function handled(handler, ok, ...)
  if ok then return true, ... end
  local hok, v = raw_pcall(handler, (...))
  if hok then return false, v end
  return false, "error in error handling"
end
local function xpcall(f, handler)
  local made, c = raw_pcall(raw_create, f)
  if not made then return check(raw_xpcall(f, handler)) end
  return check(handled(handler, drive(c, raw_resume(c))))
end
-- A script's coroutine that makes an HTTP call: the call's yield goes on out to the gateway
-- and its answer back in; the script's own yields come back to it as usual.
local function relay(c, ok, ...)
  if ok and (...) == marker and raw_status(c) == "suspended" then
    return relay(c, raw_resume(c, raw_yield(...)))
  end
  return ok, ...
end
local function unwrap(ok, ...)
  if stopped() then error("lua: instruction budget exceeded", 0) end
  if ok then return ... end
  error((...), 0)
end
local http = {}
http.new = function(...)
  local n = select('#', ...)
  if n == 0 or n == 2 then error("need 1, 3 or 4 arguments", 2) end
  local r, e = raw_yield(marker, ...)
  if r == nil then error(e, 2) end
  return r
end
local function readonly(lib)
  return setmetatable({}, {
    __index = lib,
    __newindex = function() error("the standard libraries are shared and read-only", 2) end,
    __metatable = false,
  })
end
local co = {}
for k, v in pairs(coroutine) do co[k] = v end
co.resume = function(c, ...) return check(relay(c, raw_resume(c, ...))) end
co.wrap = function(f)
  local c = raw_create(f)
  return function(...) return unwrap(relay(c, raw_resume(c, ...))) end
end
-- os.exit would end the whole gateway (every core), not a request.
local os_lib = {}
for k, v in pairs(open.os) do if k ~= "exit" then os_lib[k] = v end end
open.os = readonly(os_lib)
for _, base in ipairs({safe, open}) do
  base.pcall, base.xpcall = pcall, xpcall
  base.string, base.table, base.math = readonly(string), readonly(table), readonly(math)
  base.coroutine = readonly(co)
  base.http_response = readonly(http)
end
getmetatable("").__metatable = false
"#;

fn new_core() -> mlua::Result<Core> {
    let libs =
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::IO | StdLib::OS | StdLib::PACKAGE;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let g = lua.globals();
    let safe = lua.create_table()?;
    let open = lua.create_table()?;
    for name in SAFE_GLOBALS.iter().chain(SAFE_LIBS) {
        let v: Value = g.get(*name)?;
        safe.set(*name, v.clone())?;
        open.set(*name, v)?;
    }
    for name in OPEN_GLOBALS.iter().chain(OPEN_LIBS) {
        let v: Value = g.get(*name)?;
        open.set(*name, v)?;
    }
    for base in [&safe, &open] {
        register_api(&lua, base)?;
    }
    let stopped = lua.create_function(|_, ()| Ok(STOPPED.get()))?;
    lua.load(PRELUDE).set_name("=prelude").call::<()>((
        safe.clone(),
        open.clone(),
        stopped,
        marker(),
    ))?;
    // Global: every coroutine (each call runs as one, and scripts make their own) counts
    // against the budget.
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_STEP),
        |_, _| {
            let left = BUDGET.get();
            if left == 0 || STOPPED.get() {
                STOPPED.set(true);
                return Err(mlua::Error::external(BudgetExceeded));
            }
            BUDGET.set(left - 1);
            Ok(VmState::Continue)
        },
    )?;
    let meta = |base: &Table| -> mlua::Result<Table> {
        let m = lua.create_table()?;
        m.set("__index", base.clone())?;
        m.set("__metatable", false)?;
        Ok(m)
    };
    let (safe_meta, open_meta) = (meta(&safe)?, meta(&open)?);
    Ok(Core {
        lua,
        safe_meta,
        open_meta,
        compiled: HashMap::new(),
    })
}

/// `request`, `response`, `ctx`, `luaTable`, `luaList` and `custom_error`.
fn register_api(lua: &Lua, base: &Table) -> mlua::Result<()> {
    let request = lua.create_table()?;
    request.set(
        "load",
        lua.create_function(|_, ()| {
            CURRENT
                .with(|c| c.try_borrow().ok().and_then(|c| c.request.clone()))
                .map(Request)
                .ok_or_else(|| mlua::Error::runtime("request is not available in this hook"))
        })?,
    )?;
    base.set("request", request)?;
    let response = lua.create_table()?;
    response.set(
        "load",
        lua.create_function(|_, ()| {
            CURRENT
                .with(|c| c.try_borrow().ok().and_then(|c| c.response.clone()))
                .map(Response)
                .ok_or_else(|| mlua::Error::runtime("response is not available in this hook"))
        })?,
    )?;
    base.set("response", response)?;
    let ctx = lua.create_table()?;
    ctx.set(
        "load",
        lua.create_function(|_, ()| {
            CURRENT
                .with(|c| c.try_borrow().ok().and_then(|c| c.ctx.clone()))
                .map(Ctx)
                .ok_or_else(|| mlua::Error::runtime("ctx is not available in this hook"))
        })?,
    )?;
    base.set("ctx", ctx)?;
    super::value::register(lua, base)?;
    base.set("custom_error", api::custom_error(lua)?)?;
    Ok(())
}

fn with_core<R>(f: impl FnOnce(&mut Core) -> Result<R, LuaError>) -> Result<R, LuaError> {
    CORE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| LuaError::Script("lua: re-entered the core's state".into()))?;
        if slot.is_none() {
            *slot = Some(new_core().map_err(|e| LuaError::Script(format!("lua: {e}")))?);
        }
        match slot.as_mut() {
            Some(core) => f(core),
            None => Err(LuaError::Script("lua: no state".into())),
        }
    })
}

/// Compile `code` as a factory: calling it returns a fresh closure of the code, which takes the
/// factory's globals at that moment. A run that waits on an HTTP call keeps its own closure and
/// globals while other requests run the same script (setting the globals of one shared chunk
/// would swap them under the waiting run). The wrapper adds no line: error lines stay right.
/// A script that never calls out is compiled as is: it runs start to end in one go, so its
/// shared chunk can take each call's globals directly (a thread and a closure per call cost
/// about a microsecond).
fn compile(lua: &Lua, name: &str, code: &str, calls_out: bool) -> Result<Function, LuaError> {
    let chunk = if calls_out {
        lua.load(format!("return function(...) {code}\nend"))
    } else {
        lua.load(code)
    };
    chunk
        .set_name(name)
        .into_function()
        .map_err(|e| LuaError::Source(message(&e)))
}

/// The chunks of `script` on this core, compiled on first use (every time with `live`). Shared
/// by reference: cloning a `Function` takes a registry slot, a per-request cost.
fn chunks(core: &mut Core, script: &Arc<LuaScript>) -> Result<Rc<Compiled>, LuaError> {
    let code = |c: &str, name: &str| -> Result<Option<Function>, LuaError> {
        if c.trim().is_empty() {
            Ok(None)
        } else {
            compile(&core.lua, name, c, script.calls_out).map(Some)
        }
    };
    if script.live {
        let mut sources = Vec::new();
        for s in &script.sources {
            let text = std::fs::read_to_string(&s.path).map_err(|_| {
                LuaError::Source(format!("lua: unable to load required source {}", s.path))
            })?;
            sources.push(compile(
                &core.lua,
                &format!("@{}", s.path),
                &text,
                script.calls_out,
            )?);
        }
        return Ok(Rc::new(Compiled {
            owner: Arc::downgrade(script),
            sources,
            pre: code(&script.pre, "=pre")?,
            post: code(&script.post, "=post")?,
        }));
    }
    if let Some(c) = core.compiled.get(&script.id) {
        return Ok(c.clone());
    }
    let mut sources = Vec::new();
    for s in &script.sources {
        sources.push(compile(
            &core.lua,
            &format!("@{}", s.path),
            &s.text,
            script.calls_out,
        )?);
    }
    let pre = code(&script.pre, "=pre")?;
    let post = code(&script.post, "=post")?;
    // Scripts of plans no longer in use are dropped when a new one comes.
    core.compiled.retain(|_, c| c.owner.strong_count() > 0);
    let c = Rc::new(Compiled {
        owner: Arc::downgrade(script),
        sources,
        pre,
        post,
    });
    core.compiled.insert(script.id, c.clone());
    Ok(c)
}

/// One request's run of a script: its globals, and the hooks not run yet.
pub struct Session {
    lua: Lua,
    env: Table,
    chunks: Rc<Compiled>,
    script: Arc<LuaScript>,
}

/// What one call binds to `request.load()`, `response.load()` and `ctx.load()`.
#[derive(Clone, Default)]
struct Bound {
    request: Option<Rc<RefCell<ReqState>>>,
    response: Option<Rc<RefCell<RespState>>>,
    ctx: Option<Rc<RefCell<ReqState>>>,
}

impl Session {
    /// Fresh globals, with the script's sources run into them.
    pub async fn start(script: &Arc<LuaScript>, http: &Http<'_>) -> Result<Session, LuaError> {
        let (lua, chunks, meta) = with_core(|core| {
            let chunks = chunks(core, script)?;
            let meta = if script.open_libs {
                core.open_meta.clone()
            } else {
                core.safe_meta.clone()
            };
            Ok((core.lua.clone(), chunks, meta))
        })?;
        let env = lua.create_table().map_err(script_error)?;
        env.set_metatable(Some(meta)).map_err(script_error)?;
        env.set("_G", env.clone()).map_err(script_error)?;
        let session = Session {
            lua,
            env,
            chunks,
            script: script.clone(),
        };
        for f in &session.chunks.sources {
            session.call(f, Bound::default(), http).await?;
        }
        Ok(session)
    }

    /// The `pre` code with `request.load()` (proxy and backend hooks).
    pub async fn pre(
        &self,
        request: &Rc<RefCell<ReqState>>,
        http: &Http<'_>,
    ) -> Result<(), LuaError> {
        let Some(f) = &self.chunks.pre else {
            return Ok(());
        };
        let bound = Bound {
            request: Some(request.clone()),
            ..Bound::default()
        };
        self.call(f, bound, http).await
    }

    /// The `post` code with `request.load()` and `response.load()`.
    pub async fn post(
        &self,
        request: &Rc<RefCell<ReqState>>,
        response: &Rc<RefCell<RespState>>,
        http: &Http<'_>,
    ) -> Result<(), LuaError> {
        let Some(f) = &self.chunks.post else {
            return Ok(());
        };
        let bound = Bound {
            request: Some(request.clone()),
            response: Some(response.clone()),
            ctx: None,
        };
        self.call(f, bound, http).await
    }

    /// The `pre` code with `ctx.load()` (endpoint hook).
    pub async fn endpoint(
        &self,
        ctx: &Rc<RefCell<ReqState>>,
        http: &Http<'_>,
    ) -> Result<(), LuaError> {
        let Some(f) = &self.chunks.pre else {
            return Ok(());
        };
        let bound = Bound {
            ctx: Some(ctx.clone()),
            ..Bound::default()
        };
        self.call(f, bound, http).await
    }

    pub fn has_post(&self) -> bool {
        self.chunks.post.is_some()
    }

    /// Run the code of `factory` with this session's globals, as a coroutine: each stretch up
    /// to an HTTP call (or the end) runs under what is left of the call's instruction budget
    /// and memory limit; the HTTP call itself runs on the event loop while other requests use
    /// the core's Lua state, and the coroutine is resumed with its answer.
    async fn call(&self, chunk: &Function, bound: Bound, http: &Http<'_>) -> Result<(), LuaError> {
        chunk
            .set_environment(self.env.clone())
            .map_err(script_error)?;
        let limits = &self.script.limits;
        let mut left = Left {
            steps: limits.instructions / u64::from(HOOK_STEP) + 1,
            heap: limits.memory,
            rust: limits.memory,
        };
        if !self.script.calls_out {
            return self.whole(chunk, &bound, &mut left);
        }
        // `chunk` is a factory (see `compile`): this call's own closure, run as a coroutine.
        let f: Function = chunk.call(()).map_err(script_error)?;
        let thread = self.lua.create_thread(f).map_err(script_error)?;
        let mut args = MultiValue::new();
        loop {
            let yielded =
                self.under_limits(&bound, &mut left, || thread.resume::<MultiValue>(args))?;
            if thread.status() != ThreadStatus::Resumable {
                return Ok(());
            }
            let mut values = yielded.into_iter();
            if values.next() != Some(Value::LightUserData(marker())) {
                return Err(LuaError::Script(
                    "attempt to yield from outside a coroutine".into(),
                ));
            }
            let rest: MultiValue = values.collect();
            args = match super::http::parse(&rest, http.user_agent) {
                Err(e) => self.reply_error(e)?,
                Ok(call) => match super::http::fetch(http, &call).await {
                    Ok(resp) => {
                        // The body stays outside the Lua heap until the script reads it.
                        left.rust = left.rust.checked_sub(resp.size()).ok_or(LuaError::Memory)?;
                        let ud = self.lua.create_userdata(resp).map_err(script_error)?;
                        MultiValue::from_iter([Value::UserData(ud)])
                    }
                    Err(e) => self.reply_error(e)?,
                },
            };
        }
    }

    /// `http_response.new`'s failure: it raises `message` in the script.
    fn reply_error(&self, message: String) -> Result<MultiValue, LuaError> {
        let m = self.lua.create_string(message).map_err(script_error)?;
        Ok(MultiValue::from_iter([Value::Nil, Value::String(m)]))
    }

    /// Run a script that never calls out, start to end (an `http_response.new` reached some
    /// other way than by its name fails: there is no coroutine to yield).
    fn whole(&self, f: &Function, bound: &Bound, left: &mut Left) -> Result<(), LuaError> {
        self.under_limits(bound, left, || f.call::<()>(()))
    }

    /// Run `f` with `bound` and what is left of the budget and the limits, and take back what
    /// it used.
    fn under_limits<R>(
        &self,
        bound: &Bound,
        left: &mut Left,
        f: impl FnOnce() -> mlua::Result<R>,
    ) -> Result<R, LuaError> {
        bind(bound.clone());
        BUDGET.set(left.steps);
        STOPPED.set(false);
        let used = self.lua.used_memory();
        let _ = self.lua.set_memory_limit(used.saturating_add(left.heap));
        super::value::set_allowance(left.rust);
        let r = f();
        left.rust = super::value::allowance();
        super::value::set_allowance(usize::MAX);
        left.heap = left
            .heap
            .saturating_sub(self.lua.used_memory().saturating_sub(used));
        let _ = self.lua.set_memory_limit(0);
        left.steps = BUDGET.replace(u64::MAX);
        let stopped = STOPPED.replace(false);
        bind(Bound::default());
        r.map_err(|e| {
            let err = classify(&e, stopped);
            if matches!(err, LuaError::Budget | LuaError::Memory) {
                // What a stopped script left is garbage now: give it back at once.
                let _ = self.lua.gc_collect();
            }
            err
        })
    }
}

/// What a call may still use.
struct Left {
    /// Hook steps of [`HOOK_STEP`] instructions.
    steps: u64,
    /// Bytes the Lua heap may still grow by.
    heap: usize,
    /// Bytes of Rust-side data (tables, headers, HTTP answers) it may still hold.
    rust: usize,
}

fn bind(b: Bound) {
    CURRENT.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = b;
        }
    });
}

fn script_error(e: mlua::Error) -> LuaError {
    LuaError::Script(message(&e))
}

/// What a failed call means.
fn classify(e: &mlua::Error, stopped: bool) -> LuaError {
    if let Some(c) = find::<api::CustomError>(e) {
        return LuaError::Custom(c.clone());
    }
    if stopped || find::<BudgetExceeded>(e).is_some() {
        return LuaError::Budget;
    }
    if memory(e) {
        return LuaError::Memory;
    }
    LuaError::Script(message(e))
}

fn find<T: std::error::Error + 'static>(e: &mlua::Error) -> Option<&T> {
    match e {
        mlua::Error::CallbackError { cause, .. } => find(cause),
        mlua::Error::WithContext { cause, .. } => find(cause),
        mlua::Error::ExternalError(x) => x.downcast_ref::<T>(),
        _ => None,
    }
}

fn memory(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            memory(cause)
        }
        mlua::Error::RuntimeError(m) => m.contains("not enough memory"),
        _ => false,
    }
}

/// The error's own words, without mlua's traceback.
pub(super) fn message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            message(cause)
        }
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            m.lines().next().unwrap_or_default().to_string()
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Compile `code` in a scratch state: the syntax check `proxy check` and startup run.
pub(super) fn syntax_check(name: &str, code: &str) -> Result<(), String> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| e.to_string())?;
    lua.load(code)
        .set_name(name)
        .into_function()
        .map(|_| ())
        .map_err(|e| message(&e))
}
