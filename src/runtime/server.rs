//! `proxy run`: load and compile the config, bind one listener per core, start the pinned
//! workers, then handle signals on the main thread until shutdown.

use super::{listener, run_worker};
use crate::config;
use crate::plan::{Plan, PlanHandle};
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit codes (documented in the README).
pub const EXIT_OK: i32 = 0;
pub const EXIT_CONFIG: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_RUNTIME: i32 = 3;

const WORKER_STACK: usize = 64 << 20;

pub struct RunOpts {
    pub config: PathBuf,
    pub cores: Option<usize>,
    pub port: Option<u16>,
    pub debug: bool,
}

/// Load + compile, printing every diagnostic. None when the file has errors.
pub fn load_plan(path: &Path, debug: bool) -> Option<(Plan, config::Config)> {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return None;
        }
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let rendered = loaded.rendered;
    let mut cfg = loaded.config;
    if debug {
        cfg.debug_endpoint = true;
    }
    match Plan::compile(&cfg) {
        Ok(p) => Some((p, cfg)),
        Err(mut diags) => {
            for d in &mut diags {
                if let Some(r) = &rendered {
                    r.map_diagnostic(d);
                }
                eprintln!("{d}");
            }
            None
        }
    }
}

pub fn run(opts: RunOpts) -> i32 {
    let available = core_affinity::get_core_ids().unwrap_or_default();
    let max = available.len().max(1);
    let cores = opts.cores.unwrap_or(max);
    if cores == 0 || cores > max {
        eprintln!("proxy: --cores {cores}: this process may run on {max} core(s)");
        return EXIT_USAGE;
    }
    // Every rate limit gets one shard per event loop.
    crate::guard::ratelimit::set_workers(cores);
    let Some((plan, cfg)) = load_plan(&opts.config, opts.debug) else {
        eprintln!("proxy: {}: configuration rejected", opts.config.display());
        return EXIT_CONFIG;
    };
    // The log writer thread and its outputs (stdout, syslog) before anything logs from an
    // event loop; a bad logging option or an unreachable syslog fails the start.
    let log_cfg = match crate::log::LogConfig::from_extra(&cfg.extra_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proxy: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Err(e) = crate::log::start(log_cfg) {
        eprintln!("proxy: {e}");
        return EXIT_CONFIG;
    }
    crate::log::set_access_log(!cfg.router.disable_access_log);
    // Backend names are looked up from now on, off the event loops.
    crate::backend::dns::start();
    // Cluster-wide limits lease from Redis on their own threads, fed before any traffic.
    if let Err(e) = crate::guard::ratelimit::cluster::start(plan.cluster_limits()) {
        eprintln!("proxy: {e}");
        return EXIT_RUNTIME;
    }
    // JWK sets are fetched on their own threads (never on an event loop), first answer
    // awaited; signers load their keys before any request can ask for a signature.
    let (remotes, signers) = plan.jwt_parts();
    if let Err(e) = crate::guard::jwt::start(&remotes, &signers) {
        eprintln!("proxy: {e}");
        return EXIT_CONFIG;
    }
    let port = opts.port.unwrap_or(plan.server.port);
    let ip = plan
        .server
        .listen_ip
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let endpoints = plan.endpoints.len();
    let listeners = match listener::bind_all(SocketAddr::new(ip, port), cores) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("proxy: cannot listen on {ip}:{port}: {e}");
            return EXIT_RUNTIME;
        }
    };
    let bound = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(SocketAddr::new(ip, port));
    let handle: PlanHandle = Arc::new(ArcSwap::from_pointee(plan));
    let shutdown = Arc::new(AtomicBool::new(false));
    // Register signals before any worker runs, so an early SIGTERM is never lost.
    let mut signals = match signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proxy: cannot install signal handlers: {e}");
            return EXIT_RUNTIME;
        }
    };
    // One mailbox per core for the metrics threads (Prometheus, /__stats); without either the
    // senders are dropped here and each core's answering task ends at once.
    let (asks, mailboxes): (Vec<_>, Vec<_>) =
        (0..cores).map(|_| std::sync::mpsc::channel()).unzip();
    if let Some(o) = &handle.load().otel {
        // The OTLP exporters ask the cores for their series as a scrape does.
        if let Err(e) = crate::telemetry::otlp::start(o, &asks) {
            eprintln!("proxy: {e}");
            return EXIT_RUNTIME;
        }
        if let Err(e) = crate::telemetry::scrape::start(&o.exporters, asks.clone()) {
            eprintln!("proxy: {e}");
            return EXIT_RUNTIME;
        }
    }
    if let Some(s) = &handle.load().stats {
        if let Err(e) = crate::telemetry::stats_serve::start(s, asks.clone(), handle.clone()) {
            eprintln!("proxy: {e}");
            return EXIT_RUNTIME;
        }
    }
    drop(asks);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::with_capacity(cores);
    for (i, (l, mailbox)) in listeners.into_iter().zip(mailboxes).enumerate() {
        let (h, s, tx) = (handle.clone(), shutdown.clone(), tx.clone());
        let core = available.get(i).copied();
        let t = std::thread::Builder::new()
            .name(format!("proxy-w{i}"))
            // Deeply nested backend JSON (up to the scanner's 10,000 levels) may still meet a
            // recursive walk (flatmap, sequential values); a stack overflow would abort the
            // process, so workers get room for it. Untouched stack pages cost no memory.
            .stack_size(WORKER_STACK)
            .spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                crate::guard::ratelimit::set_core(i);
                let res = run_worker(l, h, s, mailbox, |d| {
                    let _ = tx.send(Ok((i, d)));
                });
                if let Err(e) = res {
                    let _ = tx.send(Err(e));
                }
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("proxy: cannot start worker {i}: {e}");
                return EXIT_RUNTIME;
            }
        }
    }
    drop(tx);
    let mut drivers = Vec::with_capacity(cores);
    for _ in 0..cores {
        match rx.recv() {
            Ok(Ok((i, d))) => drivers.push((i, d)),
            Ok(Err(e)) => {
                eprintln!("proxy: worker failed: {e}");
                shutdown.store(true, Ordering::Relaxed);
                return EXIT_RUNTIME;
            }
            Err(_) => return EXIT_RUNTIME,
        }
    }
    drivers.sort_by_key(|(i, _)| *i);
    let driver_list: Vec<String> = drivers.iter().map(|(i, d)| format!("w{i}={d}")).collect();
    println!(
        "proxy: listening on {}:{} (cores={cores}, drivers: {}, endpoints={endpoints}, config={})",
        bound.ip(),
        bound.port(),
        driver_list.join(","),
        opts.config.display()
    );
    crate::info!("[SERVICE: proxy] Listening on port: {}", bound.port());

    for sig in signals.forever() {
        match sig {
            SIGHUP => reload(&handle, &opts.config, opts.debug, bound.port()),
            _ => {
                crate::info!(
                    "[SERVICE: proxy] shutting down (signal {sig}): draining requests in flight"
                );
                shutdown.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    // The workers handed over their last spans: give the exporters a moment to send them.
    crate::telemetry::otlp::shutdown(std::time::Duration::from_secs(2));
    crate::log::shutdown();
    EXIT_OK
}

/// SIGHUP: re-read and recompile; swap only a plan that compiled. Connections and requests in
/// flight are untouched (they hold the old plan until they finish).
fn reload(handle: &PlanHandle, path: &Path, debug: bool, bound_port: u16) {
    crate::info!("[SERVICE: proxy] SIGHUP: reloading {}", path.display());
    match load_plan(path, debug) {
        Some((plan, cfg)) => {
            if plan.server.port != bound_port && cfg.port != 0 {
                crate::warn!("[SERVICE: proxy] reload: port changes need a restart; still listening on {bound_port}");
            }
            if let Some(level) = cfg.log_level.as_deref().and_then(crate::log::Level::parse) {
                crate::log::set_level(level);
            }
            crate::log::set_access_log(!cfg.router.disable_access_log);
            // New cluster-wide limits start leasing before the plan serves; kept ones are
            // running already. Limits the new plan drops stop with the old plan.
            if let Err(e) = crate::guard::ratelimit::cluster::start(plan.cluster_limits()) {
                crate::error!("[SERVICE: proxy] reload rejected: {e}; the previous configuration keeps serving");
                return;
            }
            let (remotes, signers) = plan.jwt_parts();
            if let Err(e) = crate::guard::jwt::start(&remotes, &signers) {
                crate::error!("[SERVICE: proxy] reload rejected: {e}; the previous configuration keeps serving");
                return;
            }
            let exporters = |p: &Plan| p.otel.as_ref().map(|o| o.exporters.clone());
            if exporters(&handle.load()) != exporters(&plan) {
                crate::warn!("[SERVICE: proxy] reload: Prometheus exporter changes need a restart; the listeners stay as they were");
            }
            let stats_addr = |p: &Plan| p.stats.as_ref().map(|s| s.addr);
            if stats_addr(&handle.load()) != stats_addr(&plan) {
                crate::warn!("[SERVICE: proxy] reload: telemetry/metrics listener changes need a restart; /__stats stays as it was");
            }
            let otlp = |p: &Plan| p.otel.as_ref().map(|o| (o.otlp.clone(), o.resource.clone()));
            if otlp(&handle.load()) != otlp(&plan) {
                crate::warn!("[SERVICE: proxy] reload: OTLP exporter changes need a restart; the exporters stay as they were");
            }
            let n = plan.endpoints.len();
            handle.store(Arc::new(plan));
            crate::info!("[SERVICE: proxy] reloaded: {n} endpoints");
        }
        None => crate::error!("[SERVICE: proxy] reload rejected: the configuration has errors; the previous one keeps serving"),
    }
}
