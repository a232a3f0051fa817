# A glibc platform: any Debian suite (or a derivative with apt).
#
# The contract every platform Dockerfile keeps (tests/unit/test_dockerfiles.py checks it):
#   build args  BASE_IMAGE, OPENSSL_VERSION, CONFIGURE_OPTIONS, LINK_OPTIONS, MAKE_JOBS
#   context     openssl.tar.gz (the verified tarball), probes/ (the probe's sources),
#               fips-matrix-build.sh (the shared build steps: compile, probe, link, install)
#   stages      toolchain [-> runtime-base] -> compile -> link -> runtime (the last stage);
#               the stages before compile must not depend on the cell: they are built ahead;
#               compile builds OpenSSL, then the probe (once per compile: the cells that only
#               relink share both), link relinks and installs
#   runtime     /opt/fips-matrix/bin/fips_probe, /opt/fips-matrix/bin/fips_batch (runs a cell's
#               probe runs one by one in one container), /opt/fips-matrix/lib/libcrypto.so.3,
#               /opt/fips-matrix/lib/ossl-modules/fips.so, /opt/fips-matrix/lib/libfipsmatrix-canary.so
# Only the toolchain stage (and what the runtime stage starts from) differs between platforms.
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*
COPY fips-matrix-build.sh /usr/local/bin/

# Python and cffi for the second witness (probes/fips_twin.py, passed in at run time). A
# stage before compile depends on nothing of the cell's, so the runner builds it ahead,
# while other cells compile, and every cell of the platform shares it.
FROM ${BASE_IMAGE} AS runtime-base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-minimal python3-cffi \
 && rm -rf /var/lib/apt/lists/*

FROM toolchain AS compile
ARG OPENSSL_VERSION
ARG CONFIGURE_OPTIONS=""
ARG MAKE_JOBS=2
COPY openssl.tar.gz /src/
RUN fips-matrix-build.sh compile
COPY probes/ /src/probes/
RUN fips-matrix-build.sh probe

FROM compile AS link
ARG LINK_OPTIONS=""
RUN fips-matrix-build.sh link
RUN fips-matrix-build.sh install

FROM runtime-base AS runtime
COPY --from=link /opt/fips-matrix /opt/fips-matrix
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
