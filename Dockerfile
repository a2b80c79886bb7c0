# syntax=docker/dockerfile:1
#
# One image holding every Chat4All binary; the container's command picks
# the service:
#
#   docker build -t chat4all:0.1.0 .
#   docker run --rm chat4all:0.1.0                       # the CLI's help
#   docker run --rm chat4all:0.1.0 chat4all-router --help
#
# The Helm chart (helm/chat4all) runs chat4all-api-gateway, chat4all-router,
# chat4all-status-consumer, chat4all-store, chat4all-connector-sidecar, one
# adapter per platform (chat4all-whatsapp, ...) and `chat4all
# create-topics` from it. Written and checked by reading: no Docker engine
# runs on the machines this project is developed on.

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
# target/ is not in the image, so the binaries are copied out in this step;
# naming them fails the build if one goes missing.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && for bin in \
      chat4all \
      chat4all-api-gateway \
      chat4all-router \
      chat4all-status-consumer \
      chat4all-store \
      chat4all-connector-sidecar \
      chat4all-whatsapp \
      chat4all-messenger \
      chat4all-instagram \
      chat4all-telegram \
      chat4all-chotot \
      chat4all-simulator; \
    do cp "target/release/$bin" /out/; done

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="chat4all" \
      org.opencontainers.image.description="Chat4All: one gRPC API to WhatsApp, Instagram, Messenger, Telegram and Chotot" \
      org.opencontainers.image.licenses="Apache-2.0"
# CA certificates for the platforms' HTTPS APIs; the binaries need nothing
# else beyond glibc, libgcc and zlib, which the base image has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 chat4all \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chat4all \
      --no-create-home --shell /usr/sbin/nologin chat4all \
 && install -d -o 10001 -g 10001 /var/lib/chat4all
COPY --from=build /out/ /usr/local/bin/
# A numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Where `chat4all dev` and the embedded store keep ./data by default.
WORKDIR /var/lib/chat4all
CMD ["chat4all", "--help"]
