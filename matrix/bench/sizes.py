"""The runtime images' sizes for the bench's figures, asked of the engine (the other figures
are read from files: matrix/bench/figures.py)."""

from __future__ import annotations

from pathlib import Path

import docker
import docker.errors

from matrix.results.store import ResultsDir


def image_sizes(client: docker.DockerClient, results: Path) -> dict[str, dict[str, float]]:
    """Runtime image size per platform (MB): smallest, largest."""
    sizes: dict[str, list[float]] = {}
    for cell in ResultsDir(results).all_cells():
        image = cell.fingerprint.get("image")
        if not image:
            continue
        try:
            size = client.images.get(image["id"]).attrs["Size"] / 1e6
        except docker.errors.ImageNotFound:
            continue
        sizes.setdefault(cell.platform, []).append(size)
    return {p: {"min_mb": round(min(s), 1), "max_mb": round(max(s), 1)} for p, s in sizes.items()}
