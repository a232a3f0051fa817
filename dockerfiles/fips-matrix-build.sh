#!/bin/sh
# The build steps every platform Dockerfile shares, so that they cannot drift apart.
#   fips-matrix-build.sh compile   unpack, Configure, build only libcrypto and fips.so
#   fips-matrix-build.sh probe     build the probe, the batch driver (which runs all of a
#                                  cell's probe runs) and the canary from /src/probes, once
#                                  per compile: they depend on the compiler and OpenSSL's
#                                  headers, not on how libcrypto and fips.so are linked
#   fips-matrix-build.sh link      apply link-only options ($LINK_OPTIONS) by relinking
#   fips-matrix-build.sh install   put libcrypto, fips.so and what `probe` built in $ROOT
#                                  (a Dockerfile with no probe step: built here, as before)
# Environment: OPENSSL_VERSION, CONFIGURE_OPTIONS, LINK_OPTIONS, MAKE_JOBS, CC (default cc),
# PROBE_CFLAGS (extra flags for the probe), ROOT (default /).
set -eu
src=/src/openssl
built=/src/probes-built
cc=${CC:-cc}

started=$(date +%s)
# The benchmark reads these lines from the build logs: wall seconds, then `times`
# (this shell's and its children's user and system CPU).
took() {
    echo "fips-matrix-build: $1 took $(($(date +%s) - started)) s; cpu:"
    times
}
# ... and these, to place each part of a step on the run's timeline (wall clock, seconds
# since the epoch): "fips-matrix-build: phase STEP/PART START END", printed when it ends.
phase_started=$started
phase() {
    phase_ended=$(date +%s)
    echo "fips-matrix-build: phase $1 $phase_started $phase_ended"
    phase_started=$phase_ended
}

build_probes() {
    mkdir -p "$built"
    $cc -O1 -Wall -shared -fPIC -o "$built/libfipsmatrix-canary.so" /src/probes/canary.c
    # shellcheck disable=SC2086
    $cc -O1 -Wall ${PROBE_CFLAGS:-} -o "$built/fips_probe" /src/probes/fips_probe.c \
        -I"$src/include" -L"$src" -lcrypto -ldl -pthread -Wl,-rpath,/opt/fips-matrix/lib
    $cc -O1 -Wall -o "$built/fips_batch" /src/probes/fips_batch.c
}

case "${1:-}" in
compile)
    cd /src
    tar xzf openssl.tar.gz
    mv "openssl-${OPENSSL_VERSION}" openssl
    cd openssl
    phase compile/unpack
    # shellcheck disable=SC2086  # options are words
    ./Configure enable-fips shared no-afalgeng --prefix=/opt/fips-matrix --libdir=lib \
        ${CONFIGURE_OPTIONS:-}
    phase compile/configure
    # Each goal gets its own make: two goals on one -j command line would race in their
    # recursive makes.
    make -j"${MAKE_JOBS:-2}" build_generated
    phase compile/generated
    make -j"${MAKE_JOBS:-2}" libcrypto.so providers/fips.so
    phase compile/make
    took compile
    ;;
link)
    cd "$src"
    for opt in ${LINK_OPTIONS:-}; do
        case "$opt" in
        no-pinshared)
            # Only LIB_LDFLAGS/DSO_LDFLAGS differ from a no-pinshared Configure (the objects
            # are the same: OPENSSL_USE_NODELETE is defined either way), so relink. The flag
            # starts LIB_LDFLAGS (no space before it) and sits inside DSO_LDFLAGS.
            sed -i 's/-Wl,-znodelete *//g' Makefile
            rm -f libcrypto.so* providers/fips.so
            make libcrypto.so providers/fips.so
            ;;
        *)
            echo "fips-matrix-build.sh: unknown link option: $opt" >&2
            exit 1
            ;;
        esac
    done
    phase link/relink
    took link
    ;;
probe)
    build_probes
    phase probe/build
    ;;
install)
    if [ ! -x "$built/fips_probe" ]; then
        build_probes  # no probe step in this Dockerfile: /src/probes came to the link stage
        phase install/probe
    fi
    root=${ROOT:-/}/opt/fips-matrix
    mkdir -p "$root/bin" "$root/lib/ossl-modules"
    cp -P "$src"/libcrypto.so* "$root/lib/"
    cp "$src/providers/fips.so" "$root/lib/ossl-modules/"
    cp "$built/libfipsmatrix-canary.so" "$root/lib/"
    cp "$built/fips_probe" "$built/fips_batch" "$root/bin/"
    phase install/copy
    ;;
*)
    echo "usage: fips-matrix-build.sh compile|probe|link|install" >&2
    exit 2
    ;;
esac
