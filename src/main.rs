//! The `proxy` binary: everything lives in the library; this maps the outcome to an exit code.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(proxy::cli::main());
}
