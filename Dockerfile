# syntax=docker/dockerfile:1
#
# One image holding one binary, chat4all, which carries every service
# (`chat4all run <service>`); each service's own name is a link to it, so
# the container's command picks the service either way:
#
#   docker build -t chat4all:0.1.0 .
#   docker run --rm chat4all:0.1.0                       # the CLI's help
#   docker run --rm chat4all:0.1.0 chat4all-router --help  # = chat4all run router --help
#
# The Helm chart (helm/chat4all) runs chat4all-api-gateway, chat4all-router,
# chat4all-status-consumer, chat4all-store, chat4all-connector-sidecar, one
# adapter per platform (chat4all-whatsapp, ...) and `chat4all
# create-topics` from it. The binary is stripped: its debug info is the
# `debug-info` stage, kept out of the image and exported on demand:
#
#   docker build --target debug-info --output type=local,dest=target/image-debug .
#
# Written and checked by reading (helm/check's `image` check holds it to
# the chart and the workspace): no Docker engine runs on the machines this
# project is developed on.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# rdkafka builds its bundled librdkafka with make and a C compiler, against
# zlib; rusqlite and ring build C too.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The crate registry and target/ are BuildKit cache mounts: a rebuild after
# a change compiles only what the change touched, dependencies stay built.
# target/ is not in the image, so the binary is copied out in this step:
# its debug info (line tables, for profiles) to one file, the binary
# stripped of it and of its symbols to another (28.6 MiB of 162.7 MiB,
# measured on 2026-12-03), with a debuglink to the first for a debugger
# that is given it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin chat4all \
 && mkdir -p /out/bin /out/debug \
 && objcopy --only-keep-debug target/release/chat4all /out/debug/chat4all.debug \
 && objcopy --strip-all --add-gnu-debuglink=/out/debug/chat4all.debug \
      target/release/chat4all /out/bin/chat4all

# Not part of the image: the debug info of its binary, for
# `--target debug-info --output …` (see the top).
FROM scratch AS debug-info
COPY --from=build /out/debug/ /

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="chat4all" \
      org.opencontainers.image.description="Chat4All: one gRPC API to WhatsApp, Instagram, Messenger, Telegram and Chotot" \
      org.opencontainers.image.licenses="Apache-2.0"
# CA certificates for the platforms' HTTPS APIs; the binary needs nothing
# else beyond glibc, libgcc and zlib, which the base image has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 chat4all \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chat4all \
      --no-create-home --shell /usr/sbin/nologin chat4all \
 && install -d -o 10001 -g 10001 /var/lib/chat4all
COPY --from=build /out/bin/chat4all /usr/local/bin/chat4all
# Each service's name runs that service (chat4all-router is `chat4all run
# router`): the chart's commands, and the names the services had as binaries
# of their own.
RUN cd /usr/local/bin \
 && for service in \
      api-gateway \
      router \
      status-consumer \
      store \
      connector-sidecar \
      whatsapp \
      messenger \
      instagram \
      telegram \
      chotot \
      simulator; \
    do ln -s chat4all "chat4all-$service"; done
# A numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Where `chat4all dev` and the embedded store keep ./data by default.
WORKDIR /var/lib/chat4all
CMD ["chat4all", "--help"]
