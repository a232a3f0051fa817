"""Where things are: the files the package ships, the paths inside the images and probe
containers, and the names of the images, labels and result files the tool makes."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _asset_dir(name: str, marker: str) -> Path:
    """A checkout has probes/ and dockerfiles/ beside the package; a wheel has them inside."""
    return next(
        (d for d in (PACKAGE_DIR.parent / name, PACKAGE_DIR / name) if (d / marker).is_file()),
        PACKAGE_DIR.parent / name,
    )


# --- files the package ships -------------------------------------------------------------

DEFAULT_MATRIX = PACKAGE_DIR / "default.toml"
KEYRING = PACKAGE_DIR / "keys" / "openssl-release-keys.asc"
PROBES_DIR = _asset_dir("probes", "fips_probe.c")
DOCKERFILES_DIR = _asset_dir("dockerfiles", "fips-matrix-build.sh")
BUILD_SCRIPT = DOCKERFILES_DIR / "fips-matrix-build.sh"
SKEW_DOCKERFILE = DOCKERFILES_DIR / "skew.Dockerfile"
PLAIN_DOCKERFILE = DOCKERFILES_DIR / "plain-bench.Dockerfile"
TWIN_SOURCE = PROBES_DIR / "fips_twin.py"
PORTABLE_DOCKERFILE = DOCKERFILES_DIR / "portable-probe.Dockerfile"
PORTABLE_BUILD_SCRIPT = DOCKERFILES_DIR / "portable-build.sh"


def probe_files() -> list[Path]:
    """The probe's sources, as every cell image is built from them."""
    return sorted(p for p in PROBES_DIR.iterdir() if p.suffix in (".c", ".h"))


def portable_files() -> list[tuple[str, Path]]:
    """(name in the build context, file): everything the portable probe's builder image is
    made of besides its Dockerfile (dockerfiles/portable-probe.Dockerfile)."""
    portable = PROBES_DIR / "portable"
    files = [(f"probes/{p.name}", p) for p in probe_files()]
    files += [
        (f"probes/{p.relative_to(PROBES_DIR).as_posix()}", p)
        for p in sorted(portable.rglob("*"))
        if p.is_file() and p.suffix in (".c", ".h")
    ]
    return [*files, ("portable-build.sh", PORTABLE_BUILD_SCRIPT)]


# --- paths inside a cell image and its probe container ------------------------------------

PREFIX = "/opt/fips-matrix"
MODULE = f"{PREFIX}/lib/ossl-modules/fips.so"
CANARY = f"{PREFIX}/lib/libfipsmatrix-canary.so"
PROBE = f"{PREFIX}/bin/fips_probe"
BATCH = f"{PREFIX}/bin/fips_batch"
LIBCRYPTO_DIR = f"{PREFIX}/lib"
WORKDIR = "/tmp"  # the batch's; run i works in WORKDIR/run-<i>
# The portable probe's volume, mounted read-only in a probe container of an existing image;
# each libc family's programs are in PORTABLE_MOUNT/<libc>-<arch>/.
PORTABLE_MOUNT = "/opt/fips-matrix-portable"

# --- images and labels --------------------------------------------------------------------

CELL_REPOSITORY = "fips-matrix/cell"
STAGES_REPOSITORY = "fips-matrix/stages"  # a platform's stages before compile, built ahead
BASE_REPOSITORY = "fips-matrix/base-debian"  # named apart from the upstream images
PLAIN_REPOSITORY = "fips-matrix/plain"  # the benchmark's one-Dockerfile-per-cell builds
INPUTS_LABEL = "org.fips-reload-matrix.inputs"
DEBOOTSTRAP_LABEL = "org.fips-reload-matrix.debootstrap"
PROBE_LABEL = "org.fips-reload-matrix.probe"  # a probe container's cell
OWNER_LABEL = "org.fips-reload-matrix.owner"  # which run made it: "HOST PID START-TICKS"
TOOL_LABEL = "org.fips-reload-matrix.tool"  # on every image the tool builds
PORTABLE_REPOSITORY = "fips-matrix/portable-probe"  # the portable probe's builder image
PORTABLE_VOLUME_PREFIX = "fips-matrix-portable-"  # its volumes, by the inputs' key
PORTABLE_LABEL = "org.fips-reload-matrix.portable-inputs"  # on those volumes: the whole key

# --- results ------------------------------------------------------------------------------

LOCK_NAME = "matrix.lock.json"
BENCH_NAME = "bench.json"  # the bench's figures, beside a run's results
# The committed reference run of the default matrix, in a checkout: the README's figures,
# table and findings, and docs/speed.md's bench figures, are made from it (`fips-matrix report
# --readme`), a test holds them equal.
REFERENCE_DIR = PACKAGE_DIR.parent / "results" / "reference"


def slug(cell_id: str) -> str:
    """A cell id made safe for one file or directory name."""
    return cell_id.replace("/", "__")
