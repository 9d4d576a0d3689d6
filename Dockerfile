# sluice as a container: a Rust stage builds the release binary with `scripts/package.sh` (the
# same command and the same `dist/` layout CI checks with `scripts/package.sh --check`), and a
# distroless runtime stage (glibc and CA roots, no shell, no package manager) runs it as the
# non-root user 65532.
#
#   docker build -t sluice .
#   docker run -p 4000:4000 -e LITELLM_MASTER_KEY=sk-change-me sluice
#
# The image's config is examples/container.yaml: a demo model answering locally, the master key
# from LITELLM_MASTER_KEY (the image ships none). Mount your own over /app/config.yaml. Keys and
# spend go to /data/sluice.db unless DATABASE_URL points at PostgreSQL.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates crates
COPY examples examples
COPY scripts/package.sh scripts/package.sh
RUN bash scripts/package.sh
# The runtime image has no shell to make directories with: the SQLite file's folder is made here.
RUN mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /data
COPY --from=build --chown=65532:65532 /data /data
COPY --from=build /src/dist/sluice /app/sluice
COPY --from=build /src/dist/config.yaml /app/config.yaml
USER 65532:65532
ENV HOST=0.0.0.0 \
    PORT=4000 \
    CONFIG_FILE_PATH=/app/config.yaml
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/app/sluice", "health"]
ENTRYPOINT ["/app/sluice"]
