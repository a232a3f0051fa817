# Serves Alpine Linux (3.23 and 3.24 in the default matrix; musl, busybox); NOT built on this project's machine (no registry reachable here).
#
# Same contract as debian.Dockerfile; only the toolchain stage differs. OpenSSL, the canary
# and the probe are built with Alpine's own gcc against its musl, and the runtime stage is
# the same Alpine image, so the probe runs on the system's own musl loader (/lib/ld-musl-*).
# fips-matrix-build.sh runs under busybox sh with busybox's tar, mv, sed -i, cp -P and the
# `times` builtin: its compile, link (no-pinshared) and install of OpenSSL 3.0.20 were run
# here under busybox 1.35 (Debian's busybox-static) with glibc's gcc, not on Alpine itself.
#
# Base images, pinned by index digest (multi-arch) as published in docker-library/repo-info,
# repos/alpine/remote/3.22.md and 3.21.md at commit 1746b58749182f00f5d2c26a53fff697cfce2c81
# (images built 2026-09-17). A tag moves; pass one of these as BASE_IMAGE to pin a snapshot:
#   alpine:3.22 (3.22.6)  alpine@sha256:365499d9dccb7c8cfaffef995a6c382e71174585e0556f6476ead1c5971c39fb
#   alpine:3.21 (3.21.8)  alpine@sha256:81ec32e1e073303f1591af7725ca32446d44d12907c1f4e2851a95031faaec99
ARG BASE_IMAGE=alpine:3.22

FROM ${BASE_IMAGE} AS toolchain
# build-base: gcc, musl-dev, binutils, GNU make. perl: Configure and the generators.
# linux-headers: <linux/mman.h>, which crypto/mem_sec.c includes and musl does not ship.
# Alpine's own openssl package (aports main/openssl/APKBUILD) builds from the same set:
# its makedepends are just "perl linux-headers".
RUN apk add --no-cache build-base perl linux-headers
# OpenSSL's Linux targets default to gcc; the probe and the canary use the same compiler.
ENV CC=gcc
COPY fips-matrix-build.sh /usr/local/bin/

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

FROM ${BASE_IMAGE} AS runtime
COPY --from=link /opt/fips-matrix /opt/fips-matrix
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
