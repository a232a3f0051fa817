"""A cell's image and what it is made from: the platform's base image, the OpenSSL source,
the platform's stages before compile (built ahead, once), and the image itself: built, found
cached, or, for a skew cell, put together from two other cells' images. Each of these is made
once per run, whichever worker asks first; the others wait for it and get the same answer."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from matrix import assets
from matrix.acquire.baseimages import BaseImage, ensure_base_image, find_image
from matrix.acquire.sources import FetchedSource, fetch_source
from matrix.errors import BaseImageError, BuildFailed, BuildTimedOut, SourceError
from matrix.execute.context import RunContext
from matrix.execute.images.builder import Builder, BuildInputs, CellImage, build_args, image_tag
from matrix.execute.images.existing import ExistingCell, NotProbed, examine
from matrix.execute.images.portable import PLATFORM as PORTABLE_PLATFORM
from matrix.execute.images.portable import PortableProbe, ensure_portable
from matrix.execute.lockfile import LockKeeper
from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.policy import dockerfile_path
from matrix.model.types import Platform
from matrix.model.vocabulary import Outcome

T = TypeVar("T")


class CellStopped(Exception):
    """The cell cannot go on: it ends with this outcome and reason."""

    def __init__(
        self,
        outcome: Outcome,
        reason: str,
        logs: dict[str, str] | None = None,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.logs = logs or {}
        self.fingerprint = fingerprint or {}  # what is known of the cell all the same

    @classmethod
    def of_build(cls, exc: BuildFailed) -> CellStopped:
        """A build that failed (BUILD_FAILED) or ran past its time (TIMEOUT), with its log."""
        outcome = Outcome.TIMEOUT if isinstance(exc, BuildTimedOut) else Outcome.BUILD_FAILED
        return cls(outcome, f"{exc}; log: {exc.log_path}", {"build": str(exc.log_path)})


@dataclass(frozen=True)
class Made:
    """A cell's image and what it was made from."""

    base: BaseImage
    image: CellImage
    sources: list[FetchedSource]  # the cell's own source first; a skew cell's provider second
    existing: ExistingCell | None = None  # an existing image's: its portable probe and discovery


class Once:
    """Runs each keyed job once, whichever worker asks first; the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = make()
            value: T = self._values[key]
            return value


class Imager:
    """Makes cells' images, each the way its kind says (matrix/model/kinds/): the kinds'
    Workshop."""

    def __init__(self, ctx: RunContext, *, builder: Builder, lockfile: LockKeeper) -> None:
        self.client = ctx.client
        self.definition = ctx.definition
        self.engine = ctx.engine
        self.options = ctx.options
        self.out = ctx.out
        self.reporter = ctx.reporter
        self.builder = builder
        self.lockfile = lockfile  # the run's lock file: what it used, checked (--locked)
        self._once = Once()
        self._gates: dict[str, threading.Event] = {}  # see _gate
        self._gates_lock = threading.Lock()
        self._base_locks: dict[str, threading.Lock] = {}  # see ahead
        self.timeline = ctx.timeline  # when each base, stage, source and build ran

    def image(self, cell: Cell) -> Made:
        """The cell's image, built when needed, with what it was made from; CellStopped when
        it cannot be had (kept like an image, so every cell that needs it learns why)."""
        made: Made | CellStopped = self._once.get(("image", cell.id), lambda: self._make(cell))
        if isinstance(made, CellStopped):
            raise made
        return made

    def ahead(self, platform: Platform, cells: Sequence[Cell] = ()) -> None:
        """The platform's base image, then its stages before compile, made once, before its
        first build: two builds of a platform that made these layers each for itself would
        each get their own, and a later cell would find its compile under the other's.
        Given the platform's cells, and all of their images exist: nothing to make."""

        if not kinds.of(platform.kind).builds_ahead:
            return  # an existing image: nothing is built for it

        def make() -> None:
            base = self.base(platform)
            if isinstance(base, BaseImageError) or self.options.force:
                return  # the cells say why; --force builds without the cache anyway
            if cells and not base.made_now and not self._any_to_build(cells, base):
                return  # a warm run: every image is there, no stage is needed
            log = self.out.root / "stages" / f"{platform.name}.log"
            t0 = time.monotonic()
            try:
                # One platform's stages at a time per base image: Dockerfiles on one base
                # share their first package step, and two builds making that layer at once
                # would each make their own; the engine's cache then gives later builds
                # the newer one, under which a cell's compile is not found (and is redone).
                with self._base_lock(base.image_id), self.timeline.span("stages", platform.name):
                    target = self.builder.build_ahead(
                        platform.name,
                        dockerfile_path(platform, self.definition),
                        base,
                        log_path=log,
                    )
            except BuildFailed as exc:  # the cells' own builds fail too, each with its log
                self.reporter.note(f"{platform.name}: stages before compile: {exc}; log: {log}")
                return
            if target is not None:
                seconds = time.monotonic() - t0
                self.reporter.note(f"{platform.name}: stages up to {target!r} ({seconds:.0f}s)")

        self._once.get(("ahead", platform.name), make)

    def skew_parts(self, cell: Cell) -> list[Cell]:
        """The cells whose images a skew cell is made of: libcrypto's, then fips.so's."""
        variant = self.definition.variants[cell.variant.base]
        return [
            Cell(cell.platform, self.definition.sources[version], variant, cell.scenarios)
            for version in (cell.source.version, str(cell.variant.provider))
        ]

    def _make(self, cell: Cell) -> Made | CellStopped:
        try:
            return kinds.of(cell.kind).make(self, cell)
        except CellStopped as stop:
            return stop

    # --- the ways a kind's image is made (kinds.Workshop) ---

    def compiled(self, cell: Cell) -> Made:
        base = self._cell_base(cell)
        source = self._source(cell)
        if isinstance(source, SourceError):
            raise CellStopped(Outcome.SKIPPED, f"source: {source}")
        self.reporter.phase(cell.id, "source", f"openssl {source.version} ({source.signature})")
        return self._own_image(cell, base, [source])

    def packaged(self, cell: Cell) -> Made:
        return self._own_image(cell, self._cell_base(cell), [])

    def assembled(self, cell: Cell) -> Made:
        return self._skew_image(cell, self._cell_base(cell))

    def as_it_is(self, cell: Cell) -> Made:
        return self._existing_image(cell)

    def _cell_base(self, cell: Cell) -> BaseImage:
        base = self.base(cell.platform)
        if isinstance(base, BaseImageError):
            raise CellStopped(Outcome.SKIPPED, f"base image: {base}")
        self.reporter.phase(cell.id, "base", f"{base.ref} ({base.origin})")
        return base

    def _own_image(self, cell: Cell, base: BaseImage, sources: list[FetchedSource]) -> Made:
        inputs = self._inputs(cell, base, sources[0] if sources else None)
        # before any build of the platform (they share these layers); none when it is cached
        made = self._build(cell, inputs, "compile, link, probe", lambda: self.ahead(cell.platform))
        return Made(base, made, sources)

    def _inputs(self, cell: Cell, base: BaseImage, source: FetchedSource | None) -> BuildInputs:
        return BuildInputs(
            dockerfile=dockerfile_path(cell.platform, self.definition),
            tarball=source.path if source else None,
            tarball_sha256=source.sha256 if source else "",
            base=base,
            build_args=build_args(cell, base, self.options.jobs),
        )

    def _any_to_build(self, cells: Sequence[Cell], base: BaseImage) -> bool:
        """Whether the image of any of these cells (with a source here) must be built."""
        for cell in cells:
            source = self._source(cell) if kinds.of(cell.kind).compiles else None
            if isinstance(source, SourceError):
                continue  # skipped, never built
            if self._cached(cell, self._inputs(cell, base, source)) is None:
                return True
        return False

    def _cached(self, cell: Cell, inputs: BuildInputs) -> CellImage | None:
        """The cell's image if one built from exactly these inputs exists: as the engine
        listed the tool's images at the run's first question (one call for all of them, not
        one per cell), else (an image made since, or none) as the engine says now."""

        def listing() -> dict[str, tuple[str, str]]:
            images = self.client.api.images(filters={"reference": f"{assets.CELL_REPOSITORY}:*"})
            return {
                tag: (str(i["Id"]), str((i.get("Labels") or {}).get(assets.INPUTS_LABEL, "")))
                for i in images
                for tag in i.get("RepoTags") or ()
            }

        listed: dict[str, tuple[str, str]] = self._once.get("listing", listing)
        key = inputs.key()
        image_id, label = listed.get(image_tag(cell), ("", ""))
        if image_id and label == key:
            return CellImage(image_tag(cell), image_id, key, cached=True, seconds=0.0)
        return self.builder.cached(cell, inputs)

    def _skew_image(self, cell: Cell, base: BaseImage) -> Made:
        """libcrypto from the cell's version, fips.so from the variant's provider version:
        both come from the images of their own cells, so nothing is compiled here."""
        parts = []
        for part in self.skew_parts(cell):
            self.reporter.phase(cell.id, "skew", f"needs {part.id}")
            try:
                parts.append(self.image(part))
            except CellStopped as stop:
                raise CellStopped(stop.outcome, f"{part.id}: {stop.reason}", stop.logs) from None
        libcrypto, provider = parts
        inputs = BuildInputs(
            dockerfile=assets.SKEW_DOCKERFILE,
            tarball=None,
            tarball_sha256="",
            base=base,
            build_args={
                "LIBCRYPTO_IMAGE": libcrypto.image.tag,
                "PROVIDER_IMAGE": provider.image.tag,
            },
            extra_key=f"{libcrypto.image.image_id} {provider.image.image_id}",
        )
        built = self._build(cell, inputs, "libcrypto and fips.so of two builds")
        built = dataclasses.replace(built, parts=(libcrypto.image.tag, provider.image.tag))
        return Made(base, built, [*libcrypto.sources, *provider.sources])

    def _build(
        self,
        cell: Cell,
        inputs: BuildInputs,
        what: str,
        prepare: Callable[[], None] | None = None,
    ) -> CellImage:
        """The cell's image: found cached, or built (after `prepare`)."""
        image = None if self.options.force else self._cached(cell, inputs)
        if image is not None:
            self.reporter.phase(cell.id, "build", f"cached image {image.tag}")
            return image
        if prepare is not None:
            prepare()
        self.reporter.phase(cell.id, "build", f"docker build: {what}")
        gate, first = self._gate(cell.platform.name) if inputs.tarball else (None, False)
        if gate is not None and not first:
            gate.wait()
        try:
            with self.timeline.span(kinds.of(cell.kind).build_phase, cell.id):
                image = self.builder.build_cell(
                    cell,
                    inputs,
                    log_path=self.out.log_path(cell.id, "build"),
                    nocache=self.options.force,
                    passed_compile=gate if first else None,
                )
        except BuildFailed as exc:
            raise CellStopped.of_build(exc) from exc
        finally:
            if first and gate is not None:
                gate.set()
        self.reporter.phase(cell.id, "build", f"built {image.tag} in {image.seconds:.0f}s")
        return image

    def _existing_image(self, cell: Cell) -> Made:
        """An existing image, used as it is: found (or pulled), never built or changed; the
        portable probe beside it; what it holds (discovery). SKIPPED when it cannot be had or
        holds nothing to probe."""
        ref = cell.platform.base_image

        def find() -> BaseImage | CellStopped:
            offline = self.options.offline or self.options.locked is not None
            found, why = find_image(self.client, ref, self.reporter, offline)
            if found is None:
                why = f"image {ref} is not in the engine and cannot be pulled ({why})"
                return CellStopped(Outcome.SKIPPED, why)
            self.lockfile.base(found.ref, found.image_id)
            return found

        found = self._once.get(("existing", ref), find)
        if isinstance(found, CellStopped):
            raise found
        self.reporter.phase(cell.id, "image", f"{found.ref} ({found.origin}), as it is")
        probe = self._portable()
        try:
            existing = examine(
                self.client,
                cell,
                found,
                probe,
                engine_arch=self.engine.arch,
                timeout=self.options.probe_timeout,
                out=self.out,
                reporter=self.reporter,
            )
        except NotProbed as exc:
            seen = {"image": {"tag": found.ref, "id": found.image_id}, **exc.fingerprint}
            raise CellStopped(Outcome.SKIPPED, exc.reason, exc.logs, seen) from None
        return Made(found, existing.image, [], existing)

    def _portable(self) -> PortableProbe:
        """The portable probe's builder image and volume, made once per run."""

        def make() -> PortableProbe | CellStopped:
            base = self.base(PORTABLE_PLATFORM)
            if isinstance(base, BaseImageError):
                return CellStopped(Outcome.SKIPPED, f"the portable probe's base image: {base}")
            log = self.out.root / "stages" / "portable-probe.log"
            try:
                with self.timeline.span("stages", "portable-probe"):
                    probe = ensure_portable(
                        self.builder,
                        base,
                        log_path=log,
                        reporter=self.reporter,
                        force=self.options.force,
                    )
            except BuildFailed as exc:
                return CellStopped.of_build(exc)
            how = f"built in {probe.seconds:.0f}s" if probe.built else "found"
            self.reporter.note(f"portable probe: {probe.tag} {how}, volume {probe.volume}")
            return probe

        made: PortableProbe | CellStopped = self._once.get(("portable",), make)
        if isinstance(made, CellStopped):
            raise made
        return made

    def _base_lock(self, image_id: str) -> threading.Lock:
        with self._gates_lock:
            return self._base_locks.setdefault(image_id, threading.Lock())

    def _gate(self, platform: str) -> tuple[threading.Event, bool]:
        """The platform's gate, and whether the caller is its first build. The compile
        stage's ARG layers are made by the first build to reach them; two builds reaching
        them at once would each make their own, the engine's cache then gives later builds
        the newer chain, and a cell compiled under the other one is compiled again. So the
        platform's other builds wait until its first has passed them."""
        with self._gates_lock:
            gate = self._gates.get(platform)
            if gate is not None:
                return gate, False
            gate = self._gates[platform] = threading.Event()
            return gate, True

    def base(self, platform: Platform) -> BaseImage | BaseImageError:
        """The platform's base image (or why there is none), made once per run."""
        fallback = platform.fallback
        key = (platform.base_image, fallback.debootstrap if fallback else "")

        def make() -> BaseImage | BaseImageError:
            self.reporter.note(f"{platform.name}: looking for {platform.base_image}")
            try:
                with self.timeline.span("base", platform.name):
                    base = ensure_base_image(
                        self.client,
                        platform,
                        self.options.mirror,
                        self.reporter,
                        offline=self.options.offline or self.options.locked is not None,
                    )
            except BaseImageError as exc:
                return exc
            self.lockfile.base(base.ref, base.image_id)
            return base

        return self._once.get(("base", *key), make)

    def _source(self, cell: Cell) -> FetchedSource | SourceError:
        def fetch() -> FetchedSource | SourceError:
            wanted = cell.source
            if not self.options.downloads:
                wanted = dataclasses.replace(wanted, urls=(), debian_orig=False)
            try:
                with self.timeline.span("source", wanted.version):
                    source = fetch_source(
                        wanted,
                        self.options.cache_dir,
                        self.options.mirror,
                        self.reporter,
                        allow_unknown_signer=self.options.allow_unknown_signer,
                    )
            except SourceError as exc:
                return exc
            self.lockfile.source(source.version, source.sha256)
            return source

        return self._once.get(("source", cell.source.version), fetch)
