//! Flexible Configuration: the `-c` file as a Go template (see `tmpl`), with settings,
//! sub-templates and partials from the `FC_*` directories.

pub mod tmpl;
