# A musl platform: OpenSSL and the probe built with Debian's musl-gcc; the runtime image
# holds only musl's loader (which is its libc.so), the OpenSSL files and the probe.
# Same contract as debian.Dockerfile (build args, context, stages, runtime paths).
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      musl-tools gcc make perl linux-libc-dev \
 && rm -rf /var/lib/apt/lists/*
# musl-gcc has no kernel headers (crypto/mem_sec.c wants <linux/mman.h>): offer just
# linux/, asm/ and asm-generic/ after musl's own headers, never glibc's.
RUN mkdir -p /opt/musl-kernel-headers \
 && ln -s /usr/include/linux /usr/include/asm-generic /opt/musl-kernel-headers/ \
 && ln -s "/usr/include/$(gcc -dumpmachine)/asm" /opt/musl-kernel-headers/asm

FROM toolchain AS compile
ARG OPENSSL_VERSION
ARG CONFIGURE_OPTIONS=""
ARG MAKE_JOBS=2
COPY openssl.tar.gz /src/
RUN cd /src && tar xzf openssl.tar.gz && mv "openssl-${OPENSSL_VERSION}" openssl && cd openssl \
 && CC="musl-gcc -idirafter /opt/musl-kernel-headers" ./Configure enable-fips shared no-afalgeng \
      --prefix=/opt/fips-matrix --libdir=lib ${CONFIGURE_OPTIONS} \
 && make build_generated \
 && make -j"${MAKE_JOBS}" libcrypto.so providers/fips.so

FROM compile AS link
ARG LINK_OPTIONS=""
# See debian.Dockerfile: no-pinshared is a link-time difference only.
RUN cd /src/openssl && for opt in ${LINK_OPTIONS}; do case "$opt" in \
      no-pinshared) sed -i 's/ -Wl,-znodelete//' Makefile \
        && rm -f libcrypto.so* providers/fips.so && make libcrypto.so providers/fips.so ;; \
      *) echo "unknown link option: $opt" >&2; exit 1 ;; esac; done
COPY probes/ /src/probes/
# Dynamic link: a static musl binary cannot dlopen.
RUN root=/rootfs/opt/fips-matrix && mkdir -p "$root/bin" "$root/lib/ossl-modules" /rootfs/lib \
 && cp -P /src/openssl/libcrypto.so* "$root/lib/" \
 && cp /src/openssl/providers/fips.so "$root/lib/ossl-modules/" \
 && musl-gcc -O1 -Wall -o "$root/lib/libfipsmatrix-canary.so" -shared -fPIC /src/probes/canary.c \
 && musl-gcc -O1 -Wall -idirafter /opt/musl-kernel-headers -o "$root/bin/fips_probe" \
      /src/probes/fips_probe.c -I/src/openssl/include -L/src/openssl -lcrypto \
      -Wl,-rpath,/opt/fips-matrix/lib \
 && cp -L "/lib/ld-musl-$(uname -m).so.1" /rootfs/lib/

FROM scratch AS runtime
COPY --from=link /rootfs/ /
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
