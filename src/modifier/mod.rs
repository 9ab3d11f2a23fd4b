//! Namespaces that change requests and responses on their way: Lua scripts (`lua`) and
//! martian modifiers (`martian`).

pub mod lua;
pub mod martian;
