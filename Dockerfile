# The three programs of docker-cache-proxy, built from source on Debian bookworm and shipped
# each in its own debian:bookworm-slim image with only the libraries it runs with:
#
#   docker build --network host --target proxy               -t docker-cache-proxy/proxy .
#   docker build --network host --target certificate-manager -t docker-cache-proxy/certificate-manager .
#   docker build --network host --target admin-setup         -t docker-cache-proxy/admin-setup .
#
# compose/compose.yml builds all three. Every image runs as the unprivileged user dcp
# (uid/gid 10001) and checks itself for HEALTHCHECK with its own binary: no curl, no shell.
#
# Layers, most stable first: the build packages, then the sources. A source change reuses the
# package layers; only the compile runs again, once for all three images (they share the builder
# stage). The classic builder and BuildKit both build this file (no --mount), so Debian's
# docker-compose 1.29 works without DOCKER_BUILDKIT.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libpoco-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev libspdlog-dev libpsl-dev \
      libcrypt-dev \
 && rm -rf /var/lib/apt/lists/*

# .dockerignore lets only the sources through. One COPY: each layer is a full copy of the
# builder's tree on the vfs storage driver, and any source change recompiles everything anyway.
COPY . /src/
WORKDIR /src
# Compile jobs; empty: one per CPU (compose passes BUILD_JOBS from the environment).
ARG BUILD_JOBS=
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DDCP_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /build -j "${BUILD_JOBS:-$(nproc)}" \
 && DESTDIR=/out cmake --install /build --strip \
 && ls -l /out/usr/local/bin

# ---------------------------------------------------------------------------------------------
# What every image has: the user, the runtime libraries all three link, and the CA store for
# HTTPS upstreams, ACME servers and healthchecks.io.
FROM ${DEBIAN_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libssl3 libyaml-cpp0.7 libspdlog1.10 libpocofoundation80 \
      libpocojson80 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 dcp \
 && useradd --system --uid 10001 --gid dcp --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin dcp

# ---------------------------------------------------------------------------------------------
FROM runtime AS proxy
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpoconet80 libpoconetssl80 libpococrypto80 libpocoutil80 libpsl5 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && install -d -o dcp -g dcp -m 0750 /var/lib/docker-cache-proxy \
 && install -d -o dcp -g dcp -m 0750 /certs /credentials
COPY --from=builder /out/usr/local/bin/docker-cache-proxy /usr/local/bin/
USER dcp:dcp
VOLUME ["/var/lib/docker-cache-proxy"]
EXPOSE 5000 5443
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["docker-cache-proxy", "--healthcheck"]
ENTRYPOINT ["docker-cache-proxy"]
LABEL org.opencontainers.image.title="docker-cache-proxy" \
      org.opencontainers.image.description="Pull-through cache for container images"

# ---------------------------------------------------------------------------------------------
FROM runtime AS certificate-manager
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpoconet80 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && install -d -o dcp -g dcp -m 0755 /certs
COPY --from=builder /out/usr/local/bin/certificate-manager /usr/local/bin/
USER dcp:dcp
ENV CERTMGR_OUTPUT_DIR=/certs
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
  CMD ["certificate-manager", "--healthcheck"]
ENTRYPOINT ["certificate-manager"]
LABEL org.opencontainers.image.title="docker-cache-proxy certificate-manager" \
      org.opencontainers.image.description="LAN CA or ACME certificates for docker-cache-proxy"

# ---------------------------------------------------------------------------------------------
FROM runtime AS admin-setup
RUN install -d -o dcp -g dcp -m 0750 /credentials \
 && install -d -o dcp -g dcp -m 0755 /client-config
COPY --from=builder /out/usr/local/bin/admin-setup /usr/local/bin/
USER dcp:dcp
# A one-shot job: healthy while the proxy it provisions is ready.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["admin-setup", "--healthcheck"]
ENTRYPOINT ["admin-setup"]
LABEL org.opencontainers.image.title="docker-cache-proxy admin-setup" \
      org.opencontainers.image.description="One-shot provisioning of a docker-cache-proxy bundle"
