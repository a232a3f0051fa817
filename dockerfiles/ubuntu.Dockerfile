# Serves Ubuntu 22.04 (jammy) and 24.04 (noble), glibc; NOT built on this project's machine (no registry reachable here).
#
# Same contract as debian.Dockerfile, and the same toolchain: Ubuntu's perl, like Debian's,
# carries every core module OpenSSL's Configure and generators load.
#
# Base images, pinned by index digest (multi-arch) as published in docker-library/repo-info:
#   ubuntu:24.04  ubuntu@sha256:69cecf4bbf72d2d44a9eef1b71fb98c7fb973d78af11399deccef19beb008ad9
#                 (repos/ubuntu/remote/24.04.md at commit 1c2b9d920fdd20f9cb58fbd6cd771fe434b465d6,
#                 amd64 image built 2026-09-11)
#   ubuntu:22.04  ubuntu@sha256:3b06811b2afd352be909dd088a004166d665dc76d38b13eada33522a9d915c6f
#                 (repos/ubuntu/remote/22.04.md at commit 01470af91233e78aee4c06b90ded37a40ddcfaa3,
#                 amd64 image built 2026-07-31)
# A tag moves; pass one of these as BASE_IMAGE to pin a snapshot.
ARG BASE_IMAGE=ubuntu:24.04

FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*
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
