# A glibc platform: any Debian suite (or a derivative with apt).
#
# Contract shared by every platform Dockerfile (fips-reload-matrix relies on it):
#   build args  BASE_IMAGE, OPENSSL_VERSION, CONFIGURE_OPTIONS, LINK_OPTIONS, MAKE_JOBS
#   context     openssl.tar.gz (verified upstream tarball), probes/ (the probe's C sources)
#   stages      toolchain -> compile -> link -> runtime (the final stage)
#   runtime     /opt/fips-matrix/bin/fips_probe, /opt/fips-matrix/lib/libcrypto.so.3,
#               /opt/fips-matrix/lib/ossl-modules/fips.so, /opt/fips-matrix/lib/libfipsmatrix-canary.so
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*

FROM toolchain AS compile
ARG OPENSSL_VERSION
ARG CONFIGURE_OPTIONS=""
ARG MAKE_JOBS=2
COPY openssl.tar.gz /src/
# Only what the probe needs: libcrypto and the FIPS module (no apps, libssl, engines, docs, tests).
# Two make goals never share one -j command line: their recursive makes would race.
RUN cd /src && tar xzf openssl.tar.gz && mv "openssl-${OPENSSL_VERSION}" openssl && cd openssl \
 && ./Configure enable-fips shared no-afalgeng --prefix=/opt/fips-matrix --libdir=lib ${CONFIGURE_OPTIONS} \
 && make build_generated \
 && make -j"${MAKE_JOBS}" libcrypto.so providers/fips.so

FROM compile AS link
ARG LINK_OPTIONS=""
# no-pinshared only drops -Wl,-znodelete from LIB_LDFLAGS/DSO_LDFLAGS (the objects are the
# same: OPENSSL_USE_NODELETE is defined either way), so relink instead of recompiling.
RUN cd /src/openssl && for opt in ${LINK_OPTIONS}; do case "$opt" in \
      no-pinshared) sed -i 's/ -Wl,-znodelete//' Makefile \
        && rm -f libcrypto.so* providers/fips.so && make libcrypto.so providers/fips.so ;; \
      *) echo "unknown link option: $opt" >&2; exit 1 ;; esac; done
COPY probes/ /src/probes/
RUN mkdir -p /opt/fips-matrix/bin /opt/fips-matrix/lib/ossl-modules \
 && cp -P /src/openssl/libcrypto.so* /opt/fips-matrix/lib/ \
 && cp /src/openssl/providers/fips.so /opt/fips-matrix/lib/ossl-modules/ \
 && gcc -O1 -Wall -o /opt/fips-matrix/lib/libfipsmatrix-canary.so -shared -fPIC /src/probes/canary.c \
 && gcc -O1 -Wall -o /opt/fips-matrix/bin/fips_probe /src/probes/fips_probe.c \
      -I/src/openssl/include -L/opt/fips-matrix/lib -lcrypto -ldl -Wl,-rpath,/opt/fips-matrix/lib

FROM ${BASE_IMAGE} AS runtime
COPY --from=link /opt/fips-matrix /opt/fips-matrix
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
