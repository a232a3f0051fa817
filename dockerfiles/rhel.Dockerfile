# Serves Rocky Linux 9 and Red Hat UBI 9 (RHEL 9), glibc; NOT built on this project's machine (no registry reachable here).
#
# Same contract as debian.Dockerfile; only the toolchain stage differs.
#
# One file serves both, e.g. BASE_IMAGE=rockylinux/rockylinux:9 or
# BASE_IMAGE=redhat/ubi9 (Docker Hub's copy of UBI 9). Everything installed below is in Rocky's
# BaseOS/AppStream. UBI 9 without a subscription sees only its own repositories
# (ubi-9-baseos-rpms, ubi-9-appstream-rpms), a subset of RHEL: a public report of an OpenSSL
# 3.6 build on ubi9/ubi installed perl-FindBin, perl-IPC-Cmd, perl-File-Compare,
# perl-File-Copy, perl-File-Path, perl-Time-Piece, perl-Getopt-Long and perl-Pod-Usage from
# them; that every capability below resolves there is not verified. dnf on UBI prints
# subscription-manager notices ("This system is not registered ...") and goes on.
#
# Perl: no perl-core metapackage is assumed (UBI may not carry it); the modules OpenSSL's
# build loads are named as `perl(Module)` capabilities, the same list as fedora.Dockerfile,
# where its derivation is written. ExtUtils::MakeMaker (which IPC::Cmd's can_run loads
# upstream) is not needed: Fedora's and RHEL's perl-IPC-Cmd are patched to use
# ExtUtils::MM::Utils instead (Red Hat bug 1129443) and require that.
#
# Base images: no digest is pinned in the matrix (none could be checked against an image
# here). Known digests, for reference:
#   redhat/ubi9:latest (Docker Hub's copy of UBI 9)
#     redhat/ubi9@sha256:5426a8f45e80a07168a30ea24d84f266094b3756624a5508cc53927e6ee39e09
#     as pinned in docker-library/official-images, .external-pins/redhat/ubi9___latest at
#     commit ab0f3ca8c6c810446dd9131c89a0243efe2e4776 (2026-08-17); whether Red Hat's own
#     registry serves the same index digest was not verified.
#   rockylinux/rockylinux:9 (Rocky 9.8, multi-arch index)
#     rockylinux/rockylinux:9@sha256:8101994123cf3d0a8fee517bee7f39e555c7d92bd2d9eb3303cc988a0eeed00f
#     quoted alike by several public Dockerfiles and scripts found through a code search,
#     whose repositories the search did not name: weaker provenance than the one above.
# A tag moves; pass a digest reference as BASE_IMAGE to pin a snapshot.
ARG BASE_IMAGE=rockylinux/rockylinux:9

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
