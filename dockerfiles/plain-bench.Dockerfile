# The plain way, for `nox -s bench` only: one Dockerfile per cell, building OpenSSL as its
# INSTALL.md says (Configure, make, make install) and the probe against the installed copy.
# Only fips_probe.c is compiled: the other sources in probes/ are not part of the baseline.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*
ARG OPENSSL_VERSION
ARG CONFIGURE_OPTIONS=""
ARG MAKE_JOBS=2
COPY openssl.tar.gz /src/
RUN cd /src && tar xzf openssl.tar.gz && cd "openssl-${OPENSSL_VERSION}" \
 && ./Configure enable-fips ${CONFIGURE_OPTIONS} --prefix=/opt/fips-matrix --libdir=lib \
 && make -j"${MAKE_JOBS}" \
 && make install
COPY probes/ /src/probes/
RUN gcc -O1 -o /opt/fips-matrix/bin/fips_probe /src/probes/fips_probe.c -I/opt/fips-matrix/include \
      -L/opt/fips-matrix/lib -lcrypto -ldl -pthread -Wl,-rpath,/opt/fips-matrix/lib
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
