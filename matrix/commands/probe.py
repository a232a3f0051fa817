"""`fips-matrix probe IMAGE...`: probe existing images as they are, and print the same tables,
findings and reports as a matrix run. It writes a matrix file of one image platform per image
(`probe.toml` in its results directory, which `fips-matrix run --matrix` takes again) and runs
it through the same pipeline: each image's one cell, PLATFORM/image/as-is, probed by the
portable probe."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from matrix import session
from matrix.commands import common
from matrix.errors import MatrixError
from matrix.files import write_text
from matrix.model.cells import expand
from matrix.model.definition import IMAGE_PATH_RE, NAME_RE, SONAME_RE, load_definition
from matrix.model.imageref import reference_problem
from matrix.model.vocabulary import KNOWN_SCENARIOS
from matrix.report.diff import read_baseline
from matrix.report.images import describe
from matrix.results.store import ResultsDir

DEFAULT_RESULTS = Path("results/probe")  # git-ignored, as every run's output
MATRIX_NAME = "probe.toml"
NAME_LENGTH = 64  # of a platform made from an image reference
_NOT_NAME = re.compile(r"[^a-z0-9._-]+")
_IMAGE_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{12,64})$")


def arguments(parser: argparse.ArgumentParser) -> None:
    common.add(parser, *common.MEASURING)
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image references (name:tag, name@digest, id)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="results directory: these images' cells, reports, and the matrix made of them "
        f"({MATRIX_NAME})",
    )
    parser.add_argument(
        "--libcrypto",
        metavar="PATH",
        help="the libcrypto in the images to probe: a file, a directory or a bare soname "
        "(default: found in each image)",
    )
    parser.add_argument(
        "--modules",
        metavar="PATH",
        help="fips.so in the images, or the directory holding it (default: found in each image)",
    )
    parser.add_argument(
        "--fips-config",
        metavar="PATH",
        help="the module's configuration in the images, where --module-mac-from-image reads "
        "first (default: found in each image)",
    )
    parser.add_argument(
        "--module-mac-from-image",
        action="store_true",
        help="configure the module with the module-mac of the image's own configuration "
        "(default: computed from fips.so, as fipsinstall does)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="a scenario to run, repeatable (default: every scenario)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="build the portable probe again, without the cache, and probe again",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    common.check_numbers(args)
    images = list(dict.fromkeys(args.images))  # the same image twice is probed once
    text = matrix_text(images, args)
    path = args.results / MATRIX_NAME
    with ResultsDir(args.results).locked():  # not over the matrix of a run going on
        write_text(path, text)
    definition = load_definition(path)
    cells = expand(definition)
    base = session.defaults(args.results)
    options = dataclasses.replace(
        base,
        parallel=args.parallel or base.parallel,
        probe_timeout=args.probe_timeout,
        repeat=args.repeat,
        fate_runs=args.fate_runs,
        force=args.force,
        offline=args.offline,
    )
    baseline = read_baseline(args.baseline) if args.baseline else None
    results, _ = session.run(definition, cells, options, console, baseline=baseline)
    console.print()
    for line in describe(results):
        console.print(line)
    console.print(f"the matrix of these images: {path} (fips-matrix run --matrix {path})")
    return session.exit_status(results, args.allow_empty)


def matrix_text(images: Sequence[str], args: argparse.Namespace) -> str:
    """A matrix file of one image platform per image, with the overrides given."""
    for image in images:
        why = reference_problem(image)
        if why is not None:
            raise MatrixError(
                f"{image!r} is not an image reference (name:tag, name@digest, id): {why}"
            )
    overrides: dict[str, Any] = {}
    for key, value in (
        ("libcrypto", args.libcrypto),
        ("modules", args.modules),
        ("fips_config", args.fips_config),
    ):
        if value is None:
            continue
        if not (IMAGE_PATH_RE.match(value) or (key == "libcrypto" and SONAME_RE.match(value))):
            flag = f"--{key.replace('_', '-')}"
            raise MatrixError(f"{flag} {value!r}: want an absolute path in the image")
        overrides[key] = value
    if args.module_mac_from_image:
        overrides["module_mac"] = "image"
    scenarios = list(dict.fromkeys(args.scenario)) or list(KNOWN_SCENARIOS)
    for scenario in scenarios:
        if scenario not in KNOWN_SCENARIOS:
            raise MatrixError(
                f"--scenario {scenario!r}: not a scenario (known: {', '.join(KNOWN_SCENARIOS)})"
            )
    lines = [
        "# Made by `fips-matrix probe`: one platform per image, each probed as it is.",
        "schema = 1",
        f"scenarios = {json.dumps(scenarios)}",
    ]
    for name, image in zip(platform_names(images), images, strict=True):
        lines += ["", f"[platforms.{json.dumps(name)}]", f"image = {json.dumps(image)}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in overrides.items()]
    return "\n".join(lines) + "\n"


def platform_names(images: Sequence[str]) -> list[str]:
    """A platform name for each image reference: its last path component and tag (or the
    image id's first 12 digits), made a valid name (the matrix's NAME_RE), unique."""
    names: list[str] = []
    for image in images:
        base = _name(image)
        name, n = base, 2
        while name in names:
            name = f"{base}-{n}"
            n += 1
        names.append(name)
    return names


def _name(image: str) -> str:
    ref = image.lower()
    as_id = _IMAGE_ID.match(ref)
    if as_id:
        return f"image-{as_id.group(1)[:12]}"
    ref, _, digest = ref.partition("@")
    last = ref.rsplit("/", 1)[-1]
    if digest:
        last += "-" + digest.split(":")[-1][:12]
    name = _NOT_NAME.sub("-", last.replace(":", "-"))
    name = name.lstrip("._-")[:NAME_LENGTH].rstrip("._-") or "image"
    if not NAME_RE.match(name):  # cannot happen with the rules above; say so if it does
        raise MatrixError(f"no platform name can be made of {image!r}")
    return name
