# pikachu in a container: a static binary on distroless, running as a non-root user.
#
#   docker build -t pikachu .
#   docker run --rm -v "$PWD/conf/config.prod.yaml:/etc/pikachu/config.yaml:ro" \
#     -v "$PWD/conf/tasks.yaml:/etc/pikachu/tasks.yaml:ro" \
#     -v pikachu-data:/var/lib/pikachu -e PIKACHU_DATABASE_PASSWORD -p 8080:8080 pikachu
#   docker run --rm -v ...same mounts... pikachu check      (pikachu check, exit 0/2/3)
#
# No configuration is baked in: mount config.yaml (and tasks.yaml beside it) at
# /etc/pikachu, and give secrets through the environment (PIKACHU_DATABASE_PASSWORD,
# PIKACHU_DISPATCHER_SECRET). Set data_dir: /var/lib/pikachu in the config and keep that
# volume: it holds the checkpoint and the dead letters.

# ---- build: the same script as outside Docker (scripts/build-static.sh), so the image
# holds exactly the binary a user would build by hand.
FROM rust:1-bookworm AS build
WORKDIR /src
# Manifests first: the dependency download stays cached while only sources change.
# (cargo needs some target files to read the manifest: empty ones do, until COPY src.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && touch src/lib.rs src/main.rs benches/pipeline.rs \
 && cargo fetch --locked
COPY src ./src
# Cargo.toml declares the benchmark; the manifest does not parse without its file.
COPY benches ./benches
COPY scripts/build-static.sh ./scripts/build-static.sh
RUN scripts/build-static.sh
# distroless has no shell to create the data directory with the right owner later.
RUN mkdir -p /out/var/lib/pikachu /out/etc/pikachu

# ---- run: distroless/static has CA certificates, /etc/passwd with `nonroot` (65532)
# and nothing else. The binary is static glibc: /etc/hosts and DNS (resolv.conf) work,
# NSS plugins do not exist here anyway.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/dist/pikachu /usr/local/bin/pikachu
COPY --from=build --chown=65532:65532 /out/var/lib/pikachu /var/lib/pikachu
COPY --from=build --chown=65532:65532 /out/etc/pikachu /etc/pikachu
USER 65532:65532
# A config with a relative data_dir ("data", the default) still lands in the volume.
WORKDIR /var/lib/pikachu
VOLUME ["/var/lib/pikachu"]
# server.port of the configuration (GET /health and /metrics).
EXPOSE 8080
# Subcommands go after the flags: `docker run pikachu check`, `... listen --port 3000
# --bind 0.0.0.0`, `... replay-dead-letters`, `... version`.
ENTRYPOINT ["/usr/local/bin/pikachu", "-config", "/etc/pikachu/config.yaml"]
