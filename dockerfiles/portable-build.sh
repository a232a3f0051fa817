#!/bin/sh
# Builds the portable probe (probes/portable/, the unchanged probes/fips_probe.c compiled with
# -DFIPS_PROBE_PORTABLE) for one libc family into /out/<libc>-<arch>/:
#   fips_probe               the probe and discovery; every OpenSSL function resolved at run time
#   fips_batch               the batch driver, static (musl), so it runs in any image
#   libfipsmatrix-canary.so  the canary the probe dlopens, built for this libc family
#   BUILDINFO                the compilers and libc the files were built with
# Usage: portable-build.sh glibc|musl      (sources in /src/probes)
set -eu
family=${1:-}
arch=$(uname -m)
out=/out/$family-$arch
src=/src/probes
warn="-Wall -Wextra -Werror"

case "$family" in
glibc)
    cc=gcc
    # The oldest glibc this image has is the oldest the probe needs: check it did not take
    # a newer symbol version from anywhere.
    libc_version=$(ldd --version | sed -n '1s/.* //p')
    ;;
musl)
    cc=musl-gcc
    libc_version=$(/lib/ld-musl-"$arch".so.1 2>&1 | sed -n 's/^Version //p')
    ;;
*)
    echo "usage: portable-build.sh glibc|musl" >&2
    exit 2
    ;;
esac
mkdir -p "$out"

# shellcheck disable=SC2086  # warn is words
$cc -O1 $warn -DFIPS_PROBE_PORTABLE -I"$src/portable" -o "$out/fips_probe" \
    "$src/fips_probe.c" "$src"/portable/*.c -ldl -pthread
# shellcheck disable=SC2086
$cc -O1 $warn -shared -fPIC -o "$out/libfipsmatrix-canary.so" "$src/canary.c"
# A static binary cannot dlopen, and the batch driver never does: static, it needs nothing
# of the image. musl's static libc is small and has no NSS to drag in.
# shellcheck disable=SC2086
musl-gcc -O1 $warn -static -o "$out/fips_batch" "$src/fips_batch.c"

if [ "$family" = glibc ]; then
    newest=$(objdump -T "$out/fips_probe" "$out/libfipsmatrix-canary.so" \
        | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1)
    if [ "$(printf '%s\n%s\n' "$newest" "GLIBC_$libc_version" | sort -V | tail -n 1)" != "GLIBC_$libc_version" ]; then
        echo "portable-build.sh: the probe needs $newest, newer than glibc $libc_version" >&2
        exit 1
    fi
else
    newest="none (musl has no symbol versions)"
fi
# No OpenSSL symbol may be imported or exported: each must come from dlsym.
if objdump -T "$out/fips_probe" | grep -E '(OSSL|EVP|ERR|OPENSSL|OpenSSL|CRYPTO|RAND)_' >&2; then
    echo "portable-build.sh: the probe links an OpenSSL name" >&2
    exit 1
fi

{
    echo "family=$family"
    echo "arch=$arch"
    echo "libc_version=$libc_version"
    echo "newest_symbol_version=$newest"
    echo "cc=$($cc --version | head -n 1)"
    echo "interp=$(readelf -l "$out/fips_probe" | sed -n 's/.*interpreter: \(.*\)]/\1/p')"
} >"$out/BUILDINFO"
chmod 0755 "$out" "$out"/fips_probe "$out"/fips_batch "$out"/libfipsmatrix-canary.so
chmod 0644 "$out/BUILDINFO"
cat "$out/BUILDINFO"
