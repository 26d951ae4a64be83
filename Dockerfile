# revstream worker image: build on Debian 12 with the -dev packages, run on
# Debian 12 slim with only the runtime libraries.
#
#   docker build -t revstream:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v revstream-state:/var/lib/revstream \
#     -e REVSTREAM_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 revstream:0.1.0
#
# The program runs as uid/gid 10001 and writes only its state directory
# (/var/lib/revstream, a volume) and /tmp, so the root filesystem can be
# read-only. ENTRYPOINT is `revstream worker`; the default arguments read
# /etc/revstream/worker.properties (share/revstream/examples/worker.properties
# with state.dir=/var/lib/revstream/state; mount your own file or override
# keys with REVSTREAM_* variables, see docs/worker.md). Checked in CI with
# dockerfile-utils (make dockerfile-check).

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      librdkafka-dev libavro-dev librocksdb-dev libjansson-dev libcsv-dev libsimdjson-dev libpq-dev \
      libmicrohttpd-dev libcurl4-openssl-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRS_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/opt/revstream \
 && cmake --build /build -j"$(nproc)" --target revstream \
 && cmake --install /build --strip

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 librocksdb7.8 libjansson4 libcsv3 libsimdjson14 libmicrohttpd12 libcurl4 libpq5 \
      libjemalloc2 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 revstream \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/revstream \
      --no-create-home --shell /usr/sbin/nologin revstream \
 && mkdir -p /var/lib/revstream /etc/revstream \
 && chown 10001:10001 /var/lib/revstream
COPY --from=build /opt/revstream /opt/revstream
COPY --from=build /opt/revstream/share/revstream/examples/worker.properties /etc/revstream/worker.properties
ENV PATH=/opt/revstream/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 10001:10001
WORKDIR /var/lib/revstream
VOLUME ["/var/lib/revstream"]
EXPOSE 9090
ENTRYPOINT ["revstream", "worker"]
CMD ["--config", "/etc/revstream/worker.properties"]
