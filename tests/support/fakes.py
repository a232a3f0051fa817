"""A fake Docker engine for the runner's unit tests: the subset of docker.DockerClient the
package uses (images.get/pull, api.build, api.import_image_from_file, containers.create and
the container's attach/start/wait/logs/kill/remove, volumes.get/create/list and a volume's
remove), with the SDK's own exceptions, and a record of every call so tests can assert on what
the runner asked for."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"


def fixture_bytes(build: str, scenario: str) -> bytes:
    """A real probe document: build is "nodelete" or "unpinned"."""
    return (FIXTURES / f"glibc-{build}-{scenario}.json").read_bytes()


def fixture_doc(build: str, scenario: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_bytes(build, scenario))
    return doc


def discovery_bytes(name: str) -> bytes:
    """A real discovery document (`fips_probe --discover`): fixtures/discovery-NAME.json."""
    return (FIXTURES / f"discovery-{name}.json").read_bytes()


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FakeImage:
    id: str
    tags: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    buildargs: dict[str, str] = field(default_factory=dict)
    architecture: str = "amd64"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        config = {"Labels": self.labels, "Entrypoint": self.entrypoint, "Cmd": self.cmd}
        return {
            "Id": self.id,
            "RepoTags": self.tags,
            "Architecture": self.architecture,
            "Os": "linux",
            "Config": config,
        }


@dataclass
class ProbePlan:
    """What one probe run does: exit code and output, or hang until the batch driver's
    timeout kills it."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    hang: bool = False
    engine_dies: bool = False  # the engine goes away while this run's batch is waited for
    interrupt: bool = False  # the user presses Ctrl-C while this run's batch is waited for
    wedge: bool = False  # the batch driver never gets past this run: its container is killed


@dataclass
class BuildCall:
    tag: str
    kwargs: dict[str, Any]
    context: dict[str, bytes]  # member name -> bytes of the tar context


BATCH = "/opt/fips-matrix/bin/fips_batch"
PORTABLE = "/opt/fips-matrix-portable"  # the portable probe's volume, in a probe container


class FakeRun:
    """One run inside a batch container: what used to be a container of its own."""

    def __init__(self, container: FakeContainer, index: int, argv: list[str]) -> None:
        self.container = container
        self.index = index
        self.argv = argv
        self.twin = argv[0] == "python3"
        engine = container.engine
        self.discovery = "--discover" in argv
        if self.discovery:  # the portable probe's, of one libc family
            self.scenario = "discover"
            self.workdir = ""
            self.plan = engine.discovery_for(container.image, argv[0])
            return
        self.scenario = argv[argv.index("--scenario") + 1]
        self.workdir = argv[argv.index("--workdir") + 1]
        self.plan = engine.plan_for(container.image, self.scenario)
        if not self.twin and engine.plan_queue.get(self.scenario):
            self.plan = engine.plan_queue[self.scenario].pop(0)
        if self.twin and self.scenario in engine.twin_plans:
            self.plan = engine.twin_plans[self.scenario]
        elif self.twin and not engine.twin_answers:
            # an image without Python: the driver cannot exec python3
            self.plan = ProbePlan(
                exit_code=127, stderr=b"fips_batch: cannot execute python3: No such file\n"
            )

    @property
    def tags(self) -> list[str]:
        return self.container.tags

    @property
    def removed(self) -> bool:
        return self.container.removed

    def report(self) -> bytes:
        """What the driver writes for this run: the header, then its stdout and stderr."""
        p = self.plan
        code, hung = (-1, 1) if p.hang else (p.exit_code, 0)
        header = (
            f"fips-batch-run {self.index} exit={code} timed_out={hung} seconds=0.010 "
            f"stdout={len(p.stdout)} stderr={len(p.stderr)}\n"
        )
        return header.encode() + p.stdout + p.stderr


class FakeStream:
    """The attach stream: the driver's stdout, raw, in a few chunks."""

    def __init__(self, data: bytes) -> None:
        self.chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


class FakeContainer:
    """One batch container: tests/unit/test_batch.py checks the real driver's command line
    and report; this one parses the same command line and writes the same report."""

    def __init__(self, engine: FakeDockerClient, cid: str, image: str, kwargs: dict[str, Any]):
        self.engine = engine
        self.id = cid
        self.image = image
        self.kwargs = kwargs
        command = list(kwargs.get("command") or [])
        assert command[0].endswith("/fips_batch") and command[1] == "--timeout"
        assert command[3:6] == ["--workdir", "/tmp", "--"]
        # the image's own driver, or the portable probe's on its volume (mounted read-only)
        assert command[0] == BATCH or (
            command[0].startswith(f"{PORTABLE}/")
            and [v["bind"] for v in (kwargs.get("volumes") or {}).values()] == [PORTABLE]
        ), command[0]
        self.driver = command[0]
        self.run_timeout = float(command[2])
        self.runs: list[FakeRun] = []
        i = 6
        while i < len(command):
            n = int(command[i])
            assert n >= 1 and i + 1 + n <= len(command), command[i:]
            self.runs.append(FakeRun(self, len(self.runs), command[i + 1 : i + 1 + n]))
            i += 1 + n
        self.tags = list(engine.images_by_id[image].tags)  # the image's tags when created
        self.labels: dict[str, str] = dict(kwargs.get("labels") or {})
        self.events: list[str] = []
        self.wait_timeouts: list[float | None] = []
        self.streams: list[FakeStream] = []
        self.removed = False
        self.killed = False

    def report(self) -> bytes:
        """The driver's whole stdout: every run up to one it wedges on, then the end."""
        out = b""
        for run in self.runs:
            if run.plan.wedge:
                return out
            out += run.report()
        return out

    def attach(
        self, stdout: bool = False, stderr: bool = False, stream: bool = False, **kw: Any
    ) -> FakeStream:
        self.engine.check_alive()
        self.events.append(f"attach(stdout={stdout},stderr={stderr},stream={stream})")
        # attached after the start, the stream would miss what the driver wrote already
        data = self.report() if stdout and "start" not in self.events else b""
        self.streams.append(FakeStream(data))
        return self.streams[-1]

    def start(self) -> None:
        self.engine.check_alive()
        self.events.append("start")

    def wait(self, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        plans = [r.plan for r in self.runs]
        for plan in plans:
            if plan.interrupt:
                plan.interrupt = False  # the user presses it once
                raise KeyboardInterrupt
        if any(p.engine_dies for p in plans):
            self.engine.gone = True
        self.engine.check_alive()
        self.events.append("wait")
        self.wait_timeouts.append(timeout)
        if any(p.wedge for p in plans) and not self.killed:
            # what docker-py raises when the engine does not answer within `timeout`
            raise requests.exceptions.ReadTimeout(
                f"UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. "
                f"(read timeout={timeout})"
            )
        return {"StatusCode": 137 if self.killed else 0, "Error": None}

    def kill(self, signal: str | int | None = None) -> None:
        self.engine.check_alive()
        self.events.append("kill")
        self.killed = True

    def logs(self, stdout: bool = True, stderr: bool = True, **_: Any) -> bytes:
        self.engine.check_alive()
        self.events.append(f"logs(stdout={stdout},stderr={stderr})")
        out = b""
        if stdout:  # as the json-file log driver keeps it: text, not the driver's bytes
            out += self.report().decode("utf-8", "replace").encode()
        if stderr:
            out += self.engine.batch_stderr
        return out

    def remove(self, force: bool = False, **_: Any) -> None:
        self.engine.check_alive()
        self.events.append(f"remove(force={force})")
        self.removed = True


class FakeHelper:
    """A container that is no probe batch: the one that fills the portable probe's volume."""

    def __init__(self, engine: FakeDockerClient, image: str, kwargs: dict[str, Any]):
        self.engine = engine
        self.image = image
        self.kwargs = kwargs
        self.command = list(kwargs.get("command") or [])
        self.labels: dict[str, str] = dict(kwargs.get("labels") or {})
        self.removed = False

    def start(self) -> None:
        self.engine.check_alive()
        for name, mount in (self.kwargs.get("volumes") or {}).items():
            if mount["mode"] == "rw":  # the fill: the marker, with the key
                script = self.command[-1]
                self.engine.volumes.named[name].filled = script
                self.engine.fills.append(name)

    def wait(self, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        return {"StatusCode": self.engine.fill_exit, "Error": None}

    def logs(self, **_: Any) -> bytes:
        return b"cp: cannot create regular file: No space left on device\n"

    def remove(self, force: bool = False, **_: Any) -> None:
        self.removed = True


class FakeFilesContainer:
    """A container created only to copy files out of its image (never started): the
    symbolizer's. Every image holds the engine's image_files."""

    def __init__(self, engine: FakeDockerClient, image: str, kwargs: dict[str, Any]) -> None:
        self.engine = engine
        self.image = image
        self.kwargs = kwargs
        self.labels: dict[str, str] = dict(kwargs.get("labels") or {})
        self.copied: list[str] = []
        self.removed = False

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        self.engine.check_alive()
        self.copied.append(path)
        data = self.engine.image_files.get(path)
        if data is None:
            raise docker.errors.NotFound(f"Could not find the file {path} in container")
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo(path.rsplit("/", 1)[-1])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return iter([out.getvalue()]), {"name": info.name, "size": len(data)}

    def remove(self, force: bool = False, **_: Any) -> None:
        self.removed = True


@dataclass
class FakeVolume:
    name: str
    labels: dict[str, str]
    in_use: bool = False
    removed: bool = False
    filled: str = ""  # the script that filled it

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Name": self.name, "Labels": self.labels}

    def remove(self, force: bool = False) -> None:
        if self.in_use:
            raise docker.errors.APIError(f"remove {self.name}: volume is in use")
        self.removed = True


class FakeVolumes:
    def __init__(self, engine: FakeDockerClient) -> None:
        self.engine = engine
        self.named: dict[str, FakeVolume] = {}

    def get(self, name: str) -> FakeVolume:
        self.engine.check_alive()
        found = self.named.get(name)
        if found is None or found.removed:
            raise docker.errors.NotFound(f"get {name}: no such volume")
        return found

    def create(self, name: str, labels: dict[str, str] | None = None, **_: Any) -> FakeVolume:
        self.engine.check_alive()
        self.named[name] = FakeVolume(name, dict(labels or {}))
        return self.named[name]

    def list(self, filters: dict[str, Any] | None = None, **_: Any) -> list[FakeVolume]:
        label = (filters or {}).get("label")
        here = [v for v in self.named.values() if not v.removed]
        return [v for v in here if label is None or label in v.labels]


class FakeImages:
    def __init__(self, engine: FakeDockerClient) -> None:
        self.engine = engine

    def load(self, data: Any) -> list[FakeImage]:
        """`docker load`: records that it happened and how many bytes it was given."""
        self.engine.check_alive()
        self.engine.loads.append(len(data.read()))
        return []

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        self.engine.prunes.append(dict(filters or {}))
        return {"ImagesDeleted": None, "SpaceReclaimed": 0}

    def list(self, **_: Any) -> list[FakeImage]:
        return list({i.id: i for i in self.engine.images_by_ref.values()}.values())

    def remove(self, image: str, force: bool = False, **_: Any) -> None:
        found = self.engine.images_by_ref.pop(image, None)
        if found is not None:
            found.tags.remove(image)

    def get(self, name: str) -> FakeImage:
        self.engine.check_alive()
        self.engine.gets.append(name)
        image = self.engine.images_by_ref.get(name) or self.engine.images_by_id.get(name)
        if image is None:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return image

    def pull(self, repository: str, tag: str | None = None, **_: Any) -> FakeImage:
        self.engine.check_alive()
        ref = f"{repository}:{tag}" if tag else repository
        self.engine.pulls.append(ref)
        if ref in self.engine.pullable:
            return self.engine.add_image(ref)
        # what an engine with no registry reachable answers
        raise docker.errors.APIError(
            f'500 Server Error: Internal Server Error ("Get "https://registry.invalid/v2/": '
            f'dial tcp: lookup registry.invalid: no such host") for {ref}'
        )


class FakeAPI:
    def __init__(self, engine: FakeDockerClient) -> None:
        self.engine = engine

    def images(self, filters: dict[str, str] | None = None, **_: Any) -> list[dict[str, Any]]:
        """The engine's image list (GET /images/json), as the SDK's low-level API gives it;
        a reference filter "repo:*" keeps the images with a tag in that repository."""
        self.engine.check_alive()
        self.engine.listings += 1
        wanted = (filters or {}).get("reference", "")
        repository = wanted.removesuffix(":*")
        return [
            {"Id": image.id, "RepoTags": list(image.tags), "Labels": dict(image.labels)}
            for image in self.engine.images_by_id.values()
            if not wanted or any(t.rsplit(":", 1)[0] == repository for t in image.tags)
        ]

    def build(
        self,
        fileobj: io.BytesIO | None = None,
        tag: str = "",
        decode: bool = False,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        self.engine.check_alive()
        assert decode, "the runner reads decoded build chunks"
        assert fileobj is not None and kwargs.get("custom_context")
        with tarfile.open(fileobj=fileobj, mode="r") as tar:
            context = {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
        call = BuildCall(tag=tag, kwargs=dict(kwargs), context=context)
        # a build of the stages before compile (a target) is kept apart from the cells' builds
        (self.engine.stage_builds if kwargs.get("target") else self.engine.builds).append(call)
        self.engine.build_order.append(tag)
        return self._stream(call)

    def _stream(self, call: BuildCall) -> Iterator[dict[str, Any]]:
        engine = self.engine
        buildargs = dict(call.kwargs.get("buildargs") or {})
        if call.kwargs.get("target") and engine.stage_build_seconds:
            started = time.monotonic()  # the stages before compile take a while too
            time.sleep(engine.stage_build_seconds)
            engine.stage_times[call.tag] = (started, time.monotonic())
        yield {"stream": "Step 1/20 : ARG BASE_IMAGE=debian:bookworm\n"}
        yield {"stream": f"Step 2/20 : FROM {buildargs.get('BASE_IMAGE')} AS toolchain\n"}
        for line in engine.build_lines:
            yield {"stream": line}
        if "openssl.tar.gz" in call.context:
            # the steps before the compile take a while: long enough for another build of
            # the platform to run them too, unless it waits
            time.sleep(engine.steps_before_compile_seconds)
            engine.build_order.append(f"compile step of {call.tag}")
            yield {"stream": "Step 12/21 : RUN fips-matrix-build.sh compile\n"}
        if engine.build_raises is not None and engine.build_raises[0] in call.tag:
            raise engine.build_raises[1]
        failing = next((e for key, e in engine.build_errors.items() if key in call.tag), None)
        if failing is not None:
            yield {"stream": "Step 9/20 : RUN make -j2 build_generated\n"}
            yield {"errorDetail": {"code": 2, "message": failing}, "error": failing}
            return
        # Content-addressed, as with the engine's layer cache: same inputs, same image id.
        content = json.dumps(
            [
                sorted((k, hashlib.sha256(v).hexdigest()) for k, v in call.context.items()),
                sorted(buildargs.items()),
                sorted((call.kwargs.get("labels") or {}).items()),
            ]
        )
        image = engine.add_image(
            call.tag, dict(call.kwargs.get("labels") or {}), buildargs, _digest(content)
        )
        yield {"aux": {"ID": image.id}}
        yield {"stream": f"Successfully built {image.id[7:19]}\n"}
        yield {"stream": f"Successfully tagged {call.tag}\n"}

    def import_image_from_file(
        self,
        filename: str,
        repository: str | None = None,
        tag: str | None = None,
        changes: list[str] | None = None,
    ) -> str:
        self.engine.check_alive()
        self.engine.imports.append((filename, f"{repository}:{tag}", list(changes or [])))
        image = self.engine.add_image(f"{repository}:{tag}")
        return json.dumps({"status": image.id})


@dataclass
class FakeLeftover:
    """A container the engine holds from before (another run's, a killed run's, not ours)."""

    id: str
    labels: dict[str, str]
    removed: bool = False

    def remove(self, force: bool = False, **_: Any) -> None:
        self.removed = True


class FakeContainers:
    def __init__(self, engine: FakeDockerClient) -> None:
        self.engine = engine

    def list(self, all: bool = False, filters: dict[str, Any] | None = None, **_: Any) -> list[Any]:
        """Containers not removed yet, of every state (all=True), by label key."""
        self.engine.check_alive()
        assert all, "containers of every state: an exited one is left behind too"
        label = (filters or {}).get("label")
        here: list[Any] = [c for c in self.engine.leftovers if not c.removed]
        here += [c for c in self.engine.batches if not c.removed]
        return [c for c in here if label is None or label in c.labels]

    def create(self, image: str, **kwargs: Any) -> FakeContainer | FakeHelper | FakeFilesContainer:
        self.engine.creates_attempted += 1
        if (
            self.engine.gone_after_creates is not None
            and self.engine.creates_attempted > self.engine.gone_after_creates
        ):
            self.engine.gone = True
        self.engine.check_alive()
        if image not in self.engine.images_by_id:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        if kwargs.get("command") == ["none"]:  # never started: to copy files out
            files = FakeFilesContainer(self.engine, image, kwargs)
            self.engine.file_containers.append(files)
            return files
        if not str((kwargs.get("command") or [""])[0]).endswith("/fips_batch"):
            helper = FakeHelper(self.engine, image, kwargs)
            self.engine.helpers.append(helper)
            return helper
        container = FakeContainer(self.engine, f"c{len(self.engine.batches):04d}", image, kwargs)
        self.engine.batches.append(container)
        # the C probe's runs; the cffi twin's are kept apart
        for run in container.runs:
            if run.discovery:
                self.engine.discovery_runs.append(run)
            else:
                (self.engine.twins if run.twin else self.engine.created).append(run)
        return container


class FakeDockerClient:
    """One fake engine. Images it holds survive across Runner instances (like a real one)."""

    def __init__(self, local_images: tuple[str, ...] = ("debian:bookworm",)) -> None:
        self.images_by_ref: dict[str, FakeImage] = {}
        self.images_by_id: dict[str, FakeImage] = {}
        self.builds: list[BuildCall] = []
        self.stage_builds: list[BuildCall] = []
        # the tags of both kinds of build, in the order they were asked for, and when each
        # build of a cell reached its compile step
        self.build_order: list[str] = []
        self.steps_before_compile_seconds = 0.0
        self.stage_build_seconds = 0.0
        self.stage_times: dict[str, tuple[float, float]] = {}  # tag -> (start, end)
        self.batches: list[FakeContainer] = []  # one container per probed cell
        self.created: list[FakeRun] = []  # the C probe's runs, in every batch, in order
        self.twins: list[FakeRun] = []  # the cffi twin's runs
        # does python3 run in the fake images? (then the twin prints the same fixture)
        self.twin_answers = False
        self.twin_plans: dict[str, ProbePlan] = {}  # scenario -> what the twin does instead
        self.batch_stderr = b""  # what the batch driver itself writes to its stderr
        # scenario -> what the next C probe runs do, one plan each, in order
        self.plan_queue: dict[str, list[ProbePlan]] = {}
        self.gets: list[str] = []
        self.listings = 0  # calls of the image list
        self.pulls: list[str] = []
        self.imports: list[tuple[str, str, list[str]]] = []
        self.pullable: set[str] = set()
        # tag substring -> error message of a build that fails
        self.build_errors: dict[str, str] = {}
        # (tag substring, exception) raised while the build stream is read
        self.build_raises: tuple[str, BaseException] | None = None
        self.build_lines: list[str] = ["Step 3/20 : RUN apt-get install -y gcc make perl\n"]
        # (image id or tag substring, scenario) -> plan; the default is the fixture document
        self.plans: dict[tuple[str, str], ProbePlan] = {}
        self.leftovers: list[FakeLeftover] = []  # containers from before this client
        self.helpers: list[FakeHelper] = []  # containers that fill the portable probe's volume
        self.fills: list[str] = []  # volumes filled, in order
        self.discovery_runs: list[FakeRun] = []  # `fips_probe --discover` runs
        self.fill_exit = 0
        # (image tag part, libc family) -> what `fips_probe --discover` does in that image;
        # default: the glibc probe finds a cell image's OpenSSL, the musl one cannot run
        self.discoveries: dict[tuple[str, str], ProbePlan] = {}
        self.volumes = FakeVolumes(self)
        self.image_files: dict[str, bytes] = {}  # path -> bytes, in every image
        self.file_containers: list[FakeFilesContainer] = []
        self.loads: list[int] = []  # `docker load`s, by size
        self.prunes: list[dict[str, Any]] = []  # image prunes, by filters
        self.gone = False
        self.gone_after_creates: int | None = None
        self.creates_attempted = 0
        self.images = FakeImages(self)
        self.api = FakeAPI(self)
        self.containers = FakeContainers(self)
        for ref in local_images:
            self.add_image(ref)

    # --- engine state ----------------------------------------------------------------

    def check_alive(self) -> None:
        if self.gone:
            raise requests.exceptions.ConnectionError(
                "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
            )

    def add_image(
        self,
        ref: str,
        labels: dict[str, str] | None = None,
        buildargs: dict[str, str] | None = None,
        image_id: str | None = None,
    ) -> FakeImage:
        image = FakeImage(
            id=image_id or _digest(ref),
            tags=[ref],
            labels=labels or {},
            buildargs=buildargs or {},
        )
        old = self.images_by_ref.get(ref)
        if old is not None and old.id != image.id:
            old.tags.remove(ref)  # the tag moves to the new image, as in a real engine
        self.images_by_ref[ref] = image
        self.images_by_id[image.id] = image
        return image

    def image_for_tag_part(self, part: str) -> FakeImage:
        matches = [i for ref, i in self.images_by_ref.items() if part in ref]
        assert len(matches) == 1, f"{part!r} matches {[i.tags for i in matches]}"
        return matches[0]

    # --- probes ----------------------------------------------------------------------

    def plan_for(self, image_id: str, scenario: str) -> ProbePlan:
        image = self.images_by_id[image_id]
        for (key, sc), plan in self.plans.items():
            if sc == scenario and (key == image_id or any(key in t for t in image.tags)):
                return plan
        return ProbePlan(0, fixture_bytes(build_of(image), scenario), b"")

    def discovery_for(self, image_id: str, program: str) -> ProbePlan:
        image = self.images_by_id[image_id]
        family = program.split("/")[-2].split("-")[0]  # .../glibc-x86_64/fips_probe
        for (key, fam), plan in self.discoveries.items():
            if fam == family and (key == image_id or any(key in t for t in image.tags)):
                return plan
        if family == "glibc":
            return ProbePlan(0, discovery_bytes("cell-glibc"), b"")
        return ProbePlan(127, b"", f"fips_batch: cannot execute {program}: No such file\n".encode())

    def created_for(self, tag_part: str) -> list[FakeRun]:
        return [c for c in self.created if any(tag_part in t for t in c.tags)]

    def batches_for(self, tag_part: str) -> list[FakeContainer]:
        return [c for c in self.batches if any(tag_part in t for t in c.tags)]


def build_of(image: FakeImage) -> str:
    """Which fixture family an image's probe prints: no-pinshared relinks without -znodelete."""
    return "unpinned" if "no-pinshared" in image.buildargs.get("LINK_OPTIONS", "") else "nodelete"
