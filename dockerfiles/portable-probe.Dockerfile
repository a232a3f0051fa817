# The portable probe's builder: the probe (probes/fips_probe.c with probes/portable/, every
# OpenSSL function resolved at run time), the static batch driver and the canary, for each
# libc family, in /out/<libc>-<arch>/. Nothing here goes into the images it probes: the files
# are copied from this image into a volume that a probe container mounts read-only.
#
#   build args  BASE_IMAGE: the oldest glibc platform (Debian 11, glibc 2.31); the glibc
#               probe then runs on glibc 2.31 and later. musl comes from the same suite
#               (musl-gcc, musl 1.2.2): the musl probe runs on musl 1.2.2 and later.
#   context     probes/ (fips_probe.c, canary.c, fips_batch.c, portable/), portable-build.sh
#   stages      toolchain -> glibc, musl -> runtime (the last: /out and a shell to copy it with)
ARG BASE_IMAGE=fips-matrix/base-debian:bullseye

FROM ${BASE_IMAGE} AS toolchain
# binutils (objdump, readelf) comes with gcc; musl-tools for the musl probe and the static
# batch driver of both families. No OpenSSL: the probe has headers of its own.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev musl-tools \
 && rm -rf /var/lib/apt/lists/*
COPY portable-build.sh /usr/local/bin/
COPY probes/ /src/probes/

FROM toolchain AS glibc
RUN portable-build.sh glibc

FROM toolchain AS musl
RUN portable-build.sh musl

FROM ${BASE_IMAGE} AS runtime
COPY --from=glibc /out/ /out/
COPY --from=musl /out/ /out/
