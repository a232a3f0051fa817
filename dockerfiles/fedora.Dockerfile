# Serves current Fedora (43, 44; e.g. fedora:44), glibc; NOT built on this project's machine (no registry reachable here).
#
# Same contract as debian.Dockerfile; only the toolchain stage differs.
#
# Perl: Fedora splits perl's core library into one package per module; perl-interpreter
# alone need not bring FindBin, IPC::Cmd, File::Compare, Time::Piece, ... OpenSSL's
# NOTES-PERL.md advises `perl-core` on RPM distributions. This file names the modules themselves instead,
# as `perl(Module)` capabilities that dnf resolves to whatever package provides each, so it
# does not depend on what a metapackage holds; rhel.Dockerfile and amazonlinux.Dockerfile
# use the same list (UBI's restricted repositories may not carry perl-core). The list is
# every module outside OpenSSL's tree that its build scripts load themselves (Configure,
# configdata.pm, the Makefile template, util/*.pl, util/perl/OpenSSL/*.pm, the bundled
# Text::Template, which requires Encode at run time), checked against what perl had loaded
# (%INC at exit, Debian's perl 5.36) over `Configure`, `make build_generated` and
# `make libcrypto.so providers/fips.so` of OpenSSL 3.0.20 and 4.0.2 on x86_64; each
# package's own dependencies bring the modules those load. Not listed: bigint, which only
# s390x's perlasm loads (package perl-bignum).
#
# Base image: fedora:44 is `latest` in docker-library/official-images' library/fedora as of
# 2026-08-21 (43 is the older supported release, 45 was rawhide). Pinned by index digest
# (multi-arch) as published in docker-library/repo-info, repos/fedora/remote/44.md at commit
# 4d7f688a5f7c8c6c34beaf126f14a4181eaac693 (images built 2026-08-26). A tag moves; pass this
# as BASE_IMAGE to pin that snapshot:
#   fedora:44  fedora@sha256:43b29f65a41eb9c35e1cd5323e3bdf3b655c2357a9f4f1ff2f9c2798e5045d80
ARG BASE_IMAGE=fedora:44

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
