# Serves Amazon Linux 2023 (amazonlinux:2023), glibc; NOT built on this project's machine (no registry reachable here).
#
# Same contract as debian.Dockerfile; only the toolchain stage differs.
#
# Amazon Linux 2023 is Fedora-derived: dnf, and perl split into one package per module as
# on Fedora. The modules OpenSSL's build loads are named as `perl(Module)` capabilities, the
# same list as fedora.Dockerfile, where its derivation is written; no perl-core metapackage
# is assumed. Amazon Linux 2 (yum, no dnf, perl 5.16) is not served by this file.
#
# Base image, pinned by index digest (multi-arch) as published in docker-library/repo-info,
# repos/amazonlinux/remote/2023.md at commit 0f81a33b82ead2b069ad32db8928d018343d9fd6 (image
# built 2026-07-18). A tag moves; pass this as BASE_IMAGE to pin that snapshot:
#   amazonlinux:2023  amazonlinux@sha256:0c74e9fbba754003cfa179fd5cc65be7790d7248443276948704b8a858b298e5
ARG BASE_IMAGE=amazonlinux:2023

FROM ${BASE_IMAGE} AS toolchain
RUN dnf install -y --setopt=install_weak_deps=False \
      gcc glibc-devel make tar gzip sed \
      perl-interpreter 'perl(Carp)' 'perl(constant)' 'perl(Cwd)' 'perl(Encode)' 'perl(Exporter)' \
      'perl(File::Basename)' 'perl(File::Compare)' 'perl(File::Copy)' 'perl(File::Glob)' \
      'perl(File::Path)' 'perl(File::Spec::Functions)' 'perl(FindBin)' 'perl(Getopt::Long)' \
      'perl(Getopt::Std)' 'perl(IPC::Cmd)' 'perl(lib)' 'perl(Pod::Usage)' 'perl(POSIX)' \
      'perl(Scalar::Util)' 'perl(Time::Piece)' 'perl(vars)' \
 && dnf clean all
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
