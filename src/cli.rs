//! `proxy run | check | version`. Exit codes: 0 ok, 1 configuration rejected, 2 usage error,
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
            print_pending(&cfg);
            if debug > 0 {
                println!(
                    "Service: port {} timeout {:?} endpoints {}",
                    cfg.port,
                    cfg.timeout,
                    plan.endpoints.len()
                );
                for ep in &plan.endpoints {
                    println!(
                        "  {} {} -> {} backend(s), timeout {:?}",
                        ep.method,
                        ep.path,
                        ep.backends.len(),
                        ep.timeout
                    );
                }
                for limit in plan.cluster_limits() {
                    println!("Rate limit {}", limit.describe());
                }
                let server = &plan.server;
                println!("Client timeouts: {}", server.timeouts.describe());
                let l = &server.limits;
                println!(
                    "Client limits: max_header_bytes {}, max_uri_bytes {}, {} header fields, \
                     body {} bytes",
                    l.max_header_bytes, l.max_target_bytes, l.max_headers, l.max_body_bytes
                );
            }
            println!("Syntax OK!");
            EXIT_OK
        }
        None => EXIT_CONFIG,
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
