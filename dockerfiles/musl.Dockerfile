# A musl platform: OpenSSL and the probe built with Debian's musl-gcc; the runtime image
# holds only musl's loader (which is its libc.so), the OpenSSL files and the probe.
# Same contract as debian.Dockerfile.
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS toolchain
# debian.Dockerfile's toolchain step, word for word: on the same base image the engine makes
# that layer once for both platforms. musl-gcc, on top of it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
# musl-gcc has no kernel headers (crypto/mem_sec.c wants <linux/mman.h>): offer just
# linux/, asm/ and asm-generic/ after musl's own headers, never the rest of glibc's.
RUN mkdir -p /opt/musl-kernel-headers \
 && ln -s /usr/include/linux /usr/include/asm-generic /opt/musl-kernel-headers/ \
 && ln -s "/usr/include/$(gcc -dumpmachine)/asm" /opt/musl-kernel-headers/asm
ENV CC="musl-gcc -idirafter /opt/musl-kernel-headers"
COPY fips-matrix-build.sh /usr/local/bin/

FROM toolchain AS compile
ARG OPENSSL_VERSION
ARG CONFIGURE_OPTIONS=""
ARG MAKE_JOBS=2
COPY openssl.tar.gz /src/
RUN fips-matrix-build.sh compile
COPY probes/ /src/probes/
# The probe is linked dynamically: a static musl binary cannot dlopen.
RUN fips-matrix-build.sh probe

FROM compile AS link
ARG LINK_OPTIONS=""
RUN fips-matrix-build.sh link
RUN ROOT=/rootfs fips-matrix-build.sh install \
 && mkdir -p /rootfs/lib \
 && cp -L "/lib/ld-musl-$(uname -m).so.1" /rootfs/lib/

FROM scratch AS runtime
COPY --from=link /rootfs/ /
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
