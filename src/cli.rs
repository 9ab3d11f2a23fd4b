//! `proxy run | check | audit | version`. Exit codes: 0 ok, 1 configuration rejected, 2 usage error,
//! 3 runtime failure (cannot listen, no event loop).

use crate::runtime::server::{self, RunOpts, EXIT_CONFIG, EXIT_OK, EXIT_USAGE};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "proxy", version = crate::VERSION, about = "A KrakenD-compatible API gateway, thread-per-core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway on a krakend.json.
    Run {
        /// Path to the configuration file (krakend.json).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Worker threads, one pinned per core (default: every core this process may use).
        #[arg(long)]
        cores: Option<usize>,
        /// Listening port, overriding `port` (0 = any free port).
        #[arg(short = 'p', long)]
        port: Option<u16>,
        /// Enable the /__debug/ endpoint.
        #[arg(short = 'd', long, action = clap::ArgAction::Count)]
        debug: u8,
    },
    /// Validate a configuration: every problem at once, as FILE:LINE:COL: $.path: reason.
    #[command(alias = "validate")]
    Check {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Also print how the configuration was understood.
        #[arg(short = 'd', long, action = clap::ArgAction::Count)]
        debug: u8,
    },
    /// Security and best-practice recommendations (`krakend audit`'s rules); exit 1 when any.
    Audit {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Rule ids to skip, comma-separated (`1.2.1,3.1.1`).
        #[arg(short = 'i', long = "ignore", default_value = "")]
        ignore: String,
        /// A file of rule ids to skip, one a line.
        #[arg(short = 'I', long = "ignore-file")]
        ignore_file: Option<PathBuf>,
        /// Severities to report, comma-separated.
        #[arg(
            short = 's',
            long = "severity",
            default_value = "CRITICAL,HIGH,MEDIUM,LOW"
        )]
        severity: String,
        /// Go template for the output; the data is `.Recommendations` with `.Rule`,
        /// `.Severity` and `.Message` each.
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
    },
    /// Print the version.
    Version,
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) {
                EXIT_OK
            } else {
                EXIT_USAGE
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run {
            config,
            cores,
            port,
            debug,
        } => server::run(RunOpts {
            config,
            cores,
            port,
            debug: debug > 0,
        }),
        Command::Check { config, debug } => check(&config, debug),
        Command::Audit {
            config,
            ignore,
            ignore_file,
            severity,
            format,
        } => audit(
            &config,
            &ignore,
            ignore_file.as_deref(),
            &severity,
            format.as_deref(),
        ),
        Command::Version => {
            println!(
                "proxy {} (KrakenD CE 2.13 configuration compatible)",
                crate::VERSION
            );
            EXIT_OK
        }
    }
}

fn check(path: &std::path::Path, debug: u8) -> i32 {
    match server::load_plan(path, false) {
        Some((plan, cfg)) => {
            // Names resolve at run time; one that does not resolve now is worth a warning.
            for w in crate::backend::dns::check(&cfg) {
                eprintln!("{w}");
            }
            if debug > 0 {
                print!("{}", crate::dump::dump(&cfg, &plan, debug));
            }
            print_pending(&cfg);
            println!("Syntax OK!");
            EXIT_OK
        }
        None => EXIT_CONFIG,
    }
}

// KrakenD: krakend-cobra's default audit format, written to stderr.
const AUDIT_FORMAT: &str =
    "{{ range .Recommendations }}{{.Rule}}\t[{{.Severity}}]   \t{{.Message}}\n{{ end }}";

fn audit(
    path: &std::path::Path,
    ignore: &str,
    ignore_file: Option<&std::path::Path>,
    severity: &str,
    format: Option<&str>,
) -> i32 {
    let split = |s: &str| -> Vec<String> {
        s.split([',', '\n'])
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    let mut ignored = split(ignore);
    if let Some(f) = ignore_file {
        match std::fs::read_to_string(f) {
            Ok(text) => ignored.extend(split(&text)),
            Err(e) => {
                eprintln!("{}: cannot read the ignore file: {e}", f.display());
                return EXIT_CONFIG;
            }
        }
    }
    let severities: Vec<String> = split(severity)
        .into_iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    if let Some(bad) = severities
        .iter()
        .find(|s| !crate::audit::SEVERITIES.contains(&s.as_str()))
    {
        eprintln!("unknown severity {bad:?}: use CRITICAL, HIGH, MEDIUM, LOW");
        return EXIT_USAGE;
    }
    let loaded = match crate::config::load(path) {
        Ok(l) => l,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return EXIT_CONFIG;
        }
    };
    let found = crate::audit::audit(&loaded.config, &loaded.raw, &ignored, &severities);
    let data = serde_json::json!({
        "Recommendations": found.iter().map(|f| serde_json::json!({
            "Rule": f.rule, "Severity": f.severity, "Message": f.message,
        })).collect::<Vec<_>>(),
    });
    let mut set = crate::fc::tmpl::Set::default();
    let no_env = |_: &str| None;
    let no_include = |_: &str| Err("include is not available in an audit format".to_string());
    let env = crate::fc::tmpl::Env {
        var: &no_env,
        include: &no_include,
    };
    let rendered = set
        .add(
            "audit",
            "--format",
            format.unwrap_or(AUDIT_FORMAT).to_string(),
        )
        .and_then(|()| set.render("audit", &data, &env));
    match rendered {
        Ok(r) => eprint!("{}", r.text),
        Err(e) => {
            let (_, line, col) = set.describe(&e);
            eprintln!("--format:{line}:{col}: {}", e.message);
            return EXIT_USAGE;
        }
    }
    if found.is_empty() {
        EXIT_OK
    } else {
        EXIT_CONFIG
    }
}

/// What the config uses that is not built, one line each: where, what, and what happens.
fn print_pending(cfg: &crate::config::Config) {
    use crate::config::pending::{pending, Refuses};
    let list = pending(cfg);
    if list.is_empty() {
        return;
    }
    println!("Not implemented yet:");
    for p in list {
        let effect = match p.refuses {
            Refuses::No => "ignored".to_string(),
            Refuses::Every => "every endpoint answers 501".to_string(),
            Refuses::Endpoint(i) => match cfg.endpoints.get(i) {
                Some(e) => format!("{} {} answers 501", e.method, e.endpoint),
                None => "the endpoint answers 501".to_string(),
            },
        };
        println!("  {}: {}: {effect} ({})", p.at, p.name, p.about);
    }
}
