//! `proxy check -d/-dd/-ddd`: how the configuration was understood, after defaults, in the
//! spirit of KrakenD's dumper (krakend-cobra `dumper.go`): `-d` the service, endpoints and
//! backends with their timeouts and hosts plus the safe defaults we add; `-dd` every
//! endpoint and backend setting and the `extra_config` contents; `-ddd` the service's
//! connection settings. Plain text, no colours, so it can be diffed and kept as a golden file.

use crate::config::{Backend, Config, Endpoint, ExtraConfig};
use crate::plan::Plan;
use std::fmt::Write as _;
use std::time::Duration;

const P: &str = "  ";

pub fn dump(cfg: &Config, plan: &Plan, level: u8) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Global settings");
    let _ = writeln!(o, "{P}Name: {}", cfg.name);
    let _ = writeln!(o, "{P}Version: 3");
    let _ = writeln!(
        o,
        "{P}Address: {}",
        cfg.listen_ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "(all)".into())
    );
    let _ = writeln!(o, "{P}Port: {}", cfg.port);
    let _ = writeln!(o, "{P}Default timeout: {}", dur(cfg.timeout));
    if level > 1 {
        let _ = writeln!(o, "{P}Default cache TTL: {}", dur(cfg.cache_ttl));
        let _ = writeln!(o, "{P}Default output encoding: {}", cfg.output_encoding);
    }
    if !cfg.host.is_empty() || level > 1 {
        let _ = writeln!(o, "{P}Default backend hosts: {}", list(&cfg.host));
    }
    let _ = writeln!(
        o,
        "{P}Debug endpoint: {}, echo endpoint: {}",
        cfg.debug_endpoint, cfg.echo_endpoint
    );
    if level > 2 {
        let b = &plan.server.backend;
        let _ = writeln!(o, "{P}Dialer timeout: {}", opt(b.dial_timeout));
        let _ = writeln!(
            o,
            "{P}Response header timeout: {}",
            opt(b.response_header_timeout)
        );
        let _ = writeln!(o, "{P}Idle connection timeout: {}", opt(b.idle_timeout));
        let _ = writeln!(o, "{P}Backend keep-alive: {}", b.keep_alive);
        let _ = writeln!(o, "{P}Backend compression (gzip): {}", b.compression);
        let _ = writeln!(o, "{P}Max idle connections per host: {}", b.max_idle);
        let _ = writeln!(o, "{P}Max backend body bytes: {}", b.max_body);
        let _ = writeln!(
            o,
            "{P}Max shutdown wait: {}",
            opt(cfg.max_shutdown_wait_time)
        );
        let _ = writeln!(o, "{P}Disable strict REST: {}", cfg.disable_rest);
        let r = &cfg.router;
        let _ =
            writeln!(
            o,
            "{P}Router: health {} (disabled: {}), hide version header: {}, return error msg: {}, \
             auto OPTIONS: {}, access log: {}",
            r.health_path, r.disable_health, r.hide_version_header, r.return_error_msg,
            r.auto_options, !r.disable_access_log
        );
    }
    // Our own safe defaults (KrakenD has none of these caps).
    let _ = writeln!(o, "Client timeouts: {}", plan.server.timeouts.describe());
    let l = &plan.server.limits;
    let _ = writeln!(
        o,
        "Client limits: max_header_bytes {}, max_uri_bytes {}, {} header fields, body {} bytes",
        l.max_header_bytes, l.max_target_bytes, l.max_headers, l.max_body_bytes
    );
    for limit in plan.cluster_limits() {
        let _ = writeln!(o, "Rate limit {}", limit.describe());
    }
    if level > 1 || !cfg.extra_config.is_empty() {
        let _ = writeln!(
            o,
            "{} global component configuration(s):",
            cfg.extra_config.len()
        );
        extra(&mut o, &cfg.extra_config, P, level);
    }
    let _ = writeln!(o, "{} API endpoint(s):", cfg.endpoints.len());
    for e in &cfg.endpoints {
        endpoint(&mut o, e, level);
    }
    o
}

fn endpoint(o: &mut String, e: &Endpoint, level: u8) {
    let _ = writeln!(o, "{P}- {} {}", e.method, e.endpoint);
    let _ = writeln!(o, "{P}{P}Timeout: {}", dur(e.timeout));
    if level > 1 || !e.input_query_strings.is_empty() {
        let _ = writeln!(
            o,
            "{P}{P}Query strings to pass: {}",
            list(&e.input_query_strings)
        );
    }
    if level > 1 || !e.input_headers.is_empty() {
        let _ = writeln!(o, "{P}{P}Headers to pass: {}", list(&e.input_headers));
    }
    if level > 1 {
        let _ = writeln!(o, "{P}{P}Cache TTL: {}", dur(e.cache_ttl));
        let _ = writeln!(o, "{P}{P}Output encoding: {}", e.output_encoding);
    }
    if level > 1 || e.concurrent_calls > 1 {
        let _ = writeln!(o, "{P}{P}Concurrent calls: {}", e.concurrent_calls);
    }
    if level > 1 || !e.extra_config.is_empty() {
        let _ = writeln!(
            o,
            "{P}{P}{} endpoint component configuration(s):",
            e.extra_config.len()
        );
        extra(o, &e.extra_config, "    ", level);
    }
    let _ = writeln!(o, "{P}{P}Connecting to {} backend(s):", e.backend.len());
    for b in &e.backend {
        backend(o, b, level);
    }
}

fn backend(o: &mut String, b: &Backend, level: u8) {
    let q = "      ";
    let _ = writeln!(o, "{q}[+] {} {}", b.method, b.url_pattern);
    let _ = writeln!(o, "{q}    Hosts: {}", list(&b.host));
    if level > 1 {
        let _ = writeln!(o, "{q}    Encoding: {}", b.encoding);
        let _ = writeln!(
            o,
            "{q}    Host sanitization disabled: {}",
            b.disable_host_sanitize
        );
        let _ = writeln!(o, "{q}    Target: {}", b.target);
        let _ = writeln!(
            o,
            "{q}    Deny: {}, Allow: {}",
            list(&b.deny),
            list(&b.allow)
        );
        let mapping: Vec<String> = b.mapping.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let _ = writeln!(o, "{q}    Mapping: {}", list(&mapping));
        let _ = writeln!(o, "{q}    Group: {}", b.group);
        let _ = writeln!(o, "{q}    Is collection: {}", b.is_collection);
        let _ = writeln!(
            o,
            "{q}    SD: {}{}",
            b.sd,
            if b.sd_scheme.is_empty() {
                String::new()
            } else {
                format!(" ({})", b.sd_scheme)
            }
        );
        let _ = writeln!(o, "{q}    Headers to pass: {}", list(&b.input_headers));
        let _ = writeln!(
            o,
            "{q}    Query strings to pass: {}",
            list(&b.input_query_strings)
        );
    }
    if level > 1 || !b.extra_config.is_empty() {
        let _ = writeln!(
            o,
            "{q}    {} backend component configuration(s):",
            b.extra_config.len()
        );
        extra(o, &b.extra_config, "          ", level);
    }
}

fn extra(o: &mut String, cfg: &ExtraConfig, prefix: &str, level: u8) {
    for (ns, v) in cfg {
        if level > 1 {
            let _ = writeln!(o, "{prefix}- {ns}: {v}");
        } else {
            let _ = writeln!(o, "{prefix}- {ns}");
        }
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn dur(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    format!("{d:?}")
}

fn opt(d: Option<Duration>) -> String {
    d.map(dur).unwrap_or_else(|| "not set".into())
}
