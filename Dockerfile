# proxy: a KrakenD-compatible API gateway. Multi-stage build.
#
#   docker build -t proxy .
#   docker run --rm -p 8080:8080 -v "$PWD/krakend.json:/etc/krakend/krakend.json:ro" proxy
#
# The image runs `proxy run -c /etc/krakend/krakend.json`, KrakenD's path, so a KrakenD
# deployment's volume mount works unchanged. Docker's default seccomp profile blocks io_uring on
# recent Docker versions: proxy then serves on epoll and says so at startup
# (`drivers: w0=epoll`); allow io_uring_setup/io_uring_enter/io_uring_register in a seccomp
# profile to get io_uring back (tuning/README.md).

# ---- build ------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what the build reads; .cargo/config.toml sets target-cpu=x86-64-v3 (sonic-rs SIMD).
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/proxy /out/proxy \
 && /out/proxy version

# ---- runtime ----------------------------------------------------------------------------------
# distroless/cc: glibc and libgcc only, no shell; the :nonroot tag runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/proxy /usr/local/bin/proxy
# A default configuration (the bundled example); mount your own over it.
COPY --chown=0:0 examples/krakend.json /etc/krakend/krakend.json
USER 65532:65532
WORKDIR /etc/krakend
EXPOSE 8080
ENTRYPOINT ["proxy"]
CMD ["run", "-c", "/etc/krakend/krakend.json"]
