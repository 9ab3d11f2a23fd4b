//! The Dockerfile, checked without a container engine: its build command is the documented
//! one, the build uses the repository's cargo config, the runtime stage runs the binary as a
//! non-root user on KrakenD's config path, and the binary accepts the image's command line.
//! Cheap on purpose: it reads files and runs the debug binary, never a release build.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build command the README documents for a release binary.
const DOCUMENTED_BUILD: &str = "cargo build --release --locked";
const KRAKEND_CONFIG: &str = "/etc/krakend/krakend.json";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One Dockerfile instruction: the keyword (upper case) and its arguments, continuations joined.
#[derive(Debug, Clone)]
struct Instr {
    op: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (op, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        out.push(Instr {
            op: op.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        cur.clear();
    }
    out
}

/// The instructions grouped by stage (each starts with its FROM).
fn stages() -> Vec<Vec<Instr>> {
    let mut out: Vec<Vec<Instr>> = Vec::new();
    for i in instructions(&read("Dockerfile")) {
        if i.op == "FROM" {
            out.push(vec![i]);
        } else {
            out.last_mut().expect("an instruction before FROM").push(i);
        }
    }
    out
}

fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec-form array: {args}: {e}"))
}

/// The `cargo build ...` command inside a RUN, up to the next `&&`.
fn build_command(stage: &[Instr]) -> String {
    let run = stage
        .iter()
        .find(|i| i.op == "RUN" && i.args.contains("cargo build"))
        .expect("a RUN with cargo build");
    let from = run.args.find("cargo build").unwrap();
    let cmd = run.args[from..].split("&&").next().unwrap();
    cmd.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_image_is_built_with_the_documented_release_command() {
    let all = stages();
    assert!(
        all.len() >= 2,
        "a multi-stage build: {} stage(s)",
        all.len()
    );
    assert_eq!(build_command(&all[0]), DOCUMENTED_BUILD);
    // When the README documents a build command, it is this one (not a drifted variant).
    if let Ok(readme) = std::fs::read_to_string(repo().join("README.md")) {
        if readme.contains("cargo build") {
            assert!(
                readme.contains(DOCUMENTED_BUILD),
                "README documents a cargo build, but not `{DOCUMENTED_BUILD}`"
            );
        }
    }
}

#[test]
fn the_build_stage_is_a_pinned_rust_image_with_the_repos_cargo_config() {
    let all = stages();
    let build = &all[0];
    let from: Vec<&str> = build[0].args.split_whitespace().collect();
    let image = from[0];
    let (name, tag) = image.split_once(':').expect("a tagged build image");
    assert_eq!(name, "rust");
    // Pinned: a minor version and a Debian release, never `latest` or a bare major.
    let version = tag.split('-').next().unwrap();
    assert_eq!(version.split('.').count(), 2, "pinned rust version: {tag}");
    assert!(tag.ends_with("-bookworm"), "{tag}");
    let alias = from.get(2).copied().expect("FROM rust:... AS NAME");
    // The repository's cargo config (x86-64-v3 for sonic-rs) is in the build context.
    assert!(
        build
            .iter()
            .any(|i| i.op == "COPY" && i.args.split_whitespace().next() == Some(".cargo")),
        "the build stage copies .cargo/"
    );
    assert!(read(".cargo/config.toml").contains("x86-64-v3"));
    // The runtime copies the binary the release profile produces, from that stage.
    let runtime = all.last().unwrap();
    let copy = runtime
        .iter()
        .find(|i| i.op == "COPY" && i.args.contains(&format!("--from={alias}")))
        .expect("COPY --from=<build stage>");
    let src = copy.args.split_whitespace().nth(1).unwrap();
    let install = build
        .iter()
        .find(|i| i.op == "RUN" && i.args.contains("target/release/proxy"))
        .expect("the build stage takes target/release/proxy");
    assert!(
        install.args.contains(src),
        "{src} comes from {}",
        install.args
    );
}

#[test]
fn the_runtime_stage_runs_proxy_as_non_root_on_the_krakend_config_path() {
    let all = stages();
    let runtime = all.last().unwrap();
    let base = runtime[0].args.split_whitespace().next().unwrap();
    assert!(
        base.contains(':') && !base.ends_with(":latest"),
        "pinned runtime base: {base}"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|i| i.op == "USER")
        .expect("a USER in the runtime stage");
    let uid = user.args.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as {uid}");
    let expose: Vec<&str> = runtime
        .iter()
        .filter(|i| i.op == "EXPOSE")
        .flat_map(|i| i.args.split_whitespace())
        .collect();
    assert_eq!(expose, ["8080"]);
    let last = |op: &str| {
        runtime
            .iter()
            .rev()
            .find(|i| i.op == op)
            .unwrap_or_else(|| panic!("no {op}"))
            .args
            .clone()
    };
    assert_eq!(exec_form(&last("ENTRYPOINT")), ["proxy"]);
    assert_eq!(exec_form(&last("CMD")), ["run", "-c", KRAKEND_CONFIG]);
    // The image ships a config at that path, and it is one the gateway accepts on port 8080.
    let copy = runtime
        .iter()
        .find(|i| i.op == "COPY" && i.args.trim_end().ends_with(KRAKEND_CONFIG))
        .expect("a COPY to the KrakenD config path");
    let src = copy
        .args
        .split_whitespace()
        .rev()
        .nth(1)
        .expect("COPY SRC DEST");
    let cfg: serde_json::Value = serde_json::from_str(&read(src)).unwrap();
    assert_eq!(cfg["port"], 8080, "{src} listens where the image EXPOSEs");
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(["check", "-c"])
        .arg(repo().join(src))
        .output()
        .unwrap();
    assert!(out.status.success(), "{src}: {out:?}");
}

#[test]
fn the_binary_answers_version_and_accepts_the_image_command_line() {
    let bin = env!("CARGO_BIN_EXE_proxy");
    let out = Command::new(bin).arg("version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("proxy "), "{text}");
    // The image's CMD with a config path that does not exist here: the arguments are accepted
    // (exit 1: configuration rejected), not a usage error (exit 2).
    let all = stages();
    let mut cmd = exec_form(
        &all.last()
            .unwrap()
            .iter()
            .rev()
            .find(|i| i.op == "CMD")
            .unwrap()
            .args,
    );
    let missing = std::env::temp_dir().join(format!("proxy-no-such-{}.json", std::process::id()));
    assert!(!Path::new(&missing).exists());
    let at = cmd.iter().position(|a| a == KRAKEND_CONFIG).unwrap();
    cmd[at] = missing.display().to_string();
    let out = Command::new(bin).args(&cmd).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {out:?}");
}
