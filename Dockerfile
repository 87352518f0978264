# bcrm: one image with every service, the Slack simulator and bcrmctl.
# docker-compose.yml picks the program per container.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libnng-dev libprotobuf-c-dev protobuf-c-compiler \
      libpq-dev libcurl4-openssl-dev libsodium-dev libjansson-dev libmicrohttpd-dev \
      libical-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build* \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j"$(nproc)" \
 && mkdir -p /out \
 && cp /build/services/*/bcrm-* /build/sim/*/*-sim /build/tools/bcrmctl/bcrmctl /out/

FROM debian:12-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnng1 libprotobuf-c1 libpq5 libcurl4 libsodium23 libjansson4 libmicrohttpd12 \
      libical3 tzdata ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin bcrm \
 && mkdir -p /keys && chown bcrm:bcrm /keys && chmod 0700 /keys
COPY --from=build /out/ /usr/local/bin/
COPY scripts/container-entrypoint.sh /usr/local/bin/bcrm-entrypoint
USER bcrm
ENTRYPOINT ["/usr/local/bin/bcrm-entrypoint"]
CMD ["bcrm-api"]
