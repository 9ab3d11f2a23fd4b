//! Observability that reads the request path without slowing it: `telemetry/opentelemetry`'s
//! Prometheus exporter ([`otel`] compiles the namespace, [`store`] keeps each core's series,
//! [`scrape`] merges the cores and serves `GET /metrics` on its own thread) and its OTLP
//! exporters ([`trace`] and [`spans`] record spans per core, [`otlp`] drains them and pushes
//! spans and merged series from its own threads, encoded by [`otlp_proto`], over OTLP/HTTP or
//! gRPC: `otlp_wire`, `otlp_grpc`, `hpack`); and `telemetry/metrics`' `/__stats` ([`stats`],
//! [`stats_store`], [`stats_serve`]), which asks the cores through the same mailboxes.
//!
//! Why per-core cells and a mailbox, not atomics: a worker records into a plain `RefCell` map
//! of its own (no atomic instruction, no lock, no shared cache line on the request path). The
//! scrape thread asks each core for a copy through a channel; each worker answers from a small
//! task that wakes every 100 ms, so a scrape never runs on an event loop longer than one copy of
//! that core's series (a few microseconds per hundred series) and never waits on a lock a
//! request holds. A core that does not answer in time (busy, or stopped) is merged from its
//! last copy, so counters never go backwards.

mod hpack;
mod hpack_tables;
pub mod otel;
pub mod otlp;
mod otlp_grpc;
pub mod otlp_proto;
mod otlp_wire;
pub mod scrape;
pub mod spans;
pub mod stats;
pub mod stats_serve;
pub mod stats_store;
pub mod store;
pub mod trace;
