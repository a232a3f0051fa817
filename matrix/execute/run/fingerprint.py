"""A cell's fingerprint: everything a reader needs to tell where and from what its verdicts
were measured (tool, matrix, host, engine, base and cell images, sources with their
signatures, the fips.so that ran, the libc)."""

from __future__ import annotations

from typing import Any

from matrix import __version__
from matrix.execute.engine import EngineFacts
from matrix.execute.images.imaging import Made
from matrix.model.types import MatrixDefinition, matrix_label
from matrix.results.records import CellResult


def fingerprint(
    made: Made, result: CellResult, definition: MatrixDefinition, engine: EngineFacts
) -> dict[str, Any]:
    baseline: dict[str, Any] = next(
        ((s.probe or {}).get("baseline") or {} for s in result.scenarios if s.probe), {}
    )
    libc = next(((s.probe or {}).get("libc") for s in result.scenarios if s.probe), None)
    image = made.image
    existing = (
        {
            "discovery": made.existing.discovery,
            "portable_probe": made.existing.portable,
            "second_witness": second_witness(result),
        }
        if made.existing is not None
        else {}
    )
    return {
        "tool_version": __version__,
        "matrix": {"path": matrix_label(definition.path), "digest": definition.digest},
        "host": {"kernel": engine.kernel, "machine": engine.arch},
        "engine": {
            "version": engine.version,
            "api_version": engine.api_version,
            "os": engine.os,
            "storage_driver": engine.storage_driver,
        },
        "base_image": {"ref": made.base.ref, "id": made.base.image_id, "origin": made.base.origin},
        "image": {
            "tag": image.tag,
            "id": image.image_id,
            "parts": list(image.parts),
            "inputs": image.key,
            "cached": image.cached,
        },
        "sources": [
            {
                "version": s.version,
                "sha256": s.sha256,
                "origin": s.origin,
                "signature": s.signature,
            }
            for s in made.sources
        ],
        "fips_so_sha256": baseline.get("module_sha256"),
        "libc": libc,
        **existing,  # an existing image: what discovery found, the portable probe that ran
    }


def second_witness(result: CellResult) -> str:
    """Whether the cffi twin witnessed the cell's scenarios, or why it could not (no python3
    or no cffi in the image): the first twin run says it for them all."""
    for s in result.scenarios:
        if s.witness is None:
            continue
        if "unavailable" in s.witness:
            lines = str(s.witness["unavailable"]).strip().splitlines()
            return f"unavailable: {lines[-1] if lines else 'the twin did not run'}"
        return "cffi"
    return "not run"
