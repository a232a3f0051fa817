"""The batch driver (probes/fips_batch.c) and its Python side (matrix/execute/probes/batch.py): the
command line, the framed report and its parser, and the real driver compiled and run here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support.fakes import FakeDockerClient, ProbePlan

from matrix import assets
from matrix.execute.probes import batch, probing
from matrix.execute.probes.batch import BatchRun, ProbeRun, batch_command, parse_batch

DRIVER = Path(__file__).resolve().parents[2] / "probes" / "fips_batch.c"
MIB = 1024 * 1024


def frame(index: int, exit: int, out: bytes, err: bytes, timed_out: int = 0) -> bytes:
    header = f"fips-batch-run {index} exit={exit} timed_out={timed_out} seconds=0.125 "
    return (header + f"stdout={len(out)} stderr={len(err)}\n").encode() + out + err


def runs(*scenarios: str) -> list[BatchRun]:
    return [
        BatchRun(sc, probing.probe_command(sc, [], probing.run_workdir(i)))
        for i, sc in enumerate(scenarios)
    ]


# --- the command line --------------------------------------------------------------------


def test_batch_command_prefixes_each_run_with_its_count_and_parses_none() -> None:
    script = "import sys\n-- 2 x\nprint('--workdir')\n"  # looks like options and counts
    batch = [
        BatchRun("a", probing.probe_command("a", [("defer-tests", "1")], "/tmp/run-0")),
        BatchRun("a", probing.twin_command("a", [], "/tmp/run-1")),
        BatchRun("b", ["python3", "-c", script]),
    ]
    command = batch_command(batch, 7.5)
    driver = ["/opt/fips-matrix/bin/fips_batch", "--timeout", "7.5", "--workdir", "/tmp"]
    assert command[:6] == [*driver, "--"]
    rest = command[6:]
    for run in batch:  # count, then exactly the argv, as it was
        assert rest[0] == str(len(run.argv))
        assert rest[1 : 1 + len(run.argv)] == run.argv
        rest = rest[1 + len(run.argv) :]
    assert rest == []
    probe, twin = batch[0].argv, batch[1].argv
    assert probe[0] == assets.PROBE and probe[probe.index("--workdir") + 1] == "/tmp/run-0"
    assert probe[-2:] == ["--config", "defer-tests=1"]
    assert twin[:2] == ["python3", "-c"] and twin[2] == assets.TWIN_SOURCE.read_text()
    assert twin[twin.index("--libcrypto") + 1] == assets.LIBCRYPTO_DIR
    assert twin[twin.index("--workdir") + 1] == "/tmp/run-1"
    assert probing.run_workdir(3) == "/tmp/run-3"


def test_batch_command_refuses_a_run_without_a_program() -> None:
    with pytest.raises(ValueError, match="needs a program"):
        batch_command([BatchRun("a", [])], 1.0)


# --- the parser --------------------------------------------------------------------------


def test_parser_reads_exit_codes_signals_and_timeouts() -> None:
    out = frame(0, 3, b'{"a": 1}', b"warn\n")
    out += frame(1, 139, b"", b"")
    out += frame(2, -1, b'{"partial', b"spinning\n", timed_out=1)
    got = parse_batch(runs("x", "y", "z"), out)
    assert got == [
        ProbeRun("x", 3, False, '{"a": 1}', "warn\n", 0.125),
        ProbeRun("y", 139, False, "", "", 0.125),
        ProbeRun("z", None, True, '{"partial', "spinning\n", 0.125),
    ]


def test_parser_counts_bytes_not_characters() -> None:
    # bytes that are not UTF-8, a character of three bytes, and a header look-alike inside
    body = b"\xff\xfe\xe2\x82\xac\n" + frame(1, 0, b"", b"")
    out = frame(0, 0, body, b"\xc3(") + frame(1, 5, b"second", b"")
    first, second = parse_batch(runs("x", "y"), out)
    assert first.stdout.startswith("\ufffd\ufffd\u20ac\nfips-batch-run 1")
    assert first.stderr == "\ufffd("
    assert (second.exit_code, second.stdout) == (5, "second")


def test_parser_cut_output_leaves_the_rest_unreported() -> None:
    whole = frame(0, 0, b"{}", b"") + frame(1, 0, b"0123456789", b"") + frame(2, 0, b"", b"")
    cut = whole[: whole.index(b"01234") + 4]
    got = parse_batch(runs("x", "y", "z"), cut, exit_code=137, stderr="driver said this")
    assert got[0] == ProbeRun("x", 0, False, "{}", "", 0.125)
    for r in got[1:]:
        assert (r.exit_code, r.timed_out, r.stdout) == (None, False, "")
        assert "the batch driver exited 137" in r.stderr
        assert "driver said this" in r.stderr
    assert "cut inside this run's output" in got[1].stderr


def test_parser_after_a_killed_container_times_out_the_unreported_runs() -> None:
    out = frame(0, 0, b"{}", b"")
    got = parse_batch(runs("x", "y", "z"), out, timed_out=True, exit_code=None)
    assert got[0].exit_code == 0 and not got[0].timed_out
    assert [(r.exit_code, r.timed_out) for r in got[1:]] == [(None, True), (None, True)]
    assert "timed out and was killed" in got[1].stderr
    assert "ends before this run's" in got[1].stderr


def test_parser_refuses_output_that_is_not_a_report() -> None:
    got = parse_batch(runs("x"), b"Segmentation fault\n", exit_code=139)
    assert got[0].exit_code is None and "unexpected batch report at byte 0" in got[0].stderr
    # a report of another run than the one due is not taken for it
    got = parse_batch(runs("x", "y"), frame(0, 0, b"", b"") + frame(2, 0, b"", b""))
    assert got[0].exit_code == 0
    assert got[1].exit_code is None and "run 2 where run 1" in got[1].stderr
    # a header whose counts are not numbers
    got = parse_batch(runs("x"), b"fips-batch-run 0 exit=0 timed_out=0 seconds=1.0 stdout=x\n")
    assert got[0].exit_code is None


def test_run_batch_reads_the_raw_stream_not_the_log() -> None:
    """The engine's json-file log rewrites bytes that are not UTF-8 (the fake's logs do too),
    which would shift every count after them; the attach stream is the driver's bytes."""
    client = FakeDockerClient()
    image = client.add_image("fips-matrix/cell:test").id
    client.plans[(image, "x")] = ProbePlan(0, b"\xff\xff\xff{}", b"")
    client.plans[(image, "y")] = ProbePlan(0, b'{"ok": true}', b"")
    x, y = batch.run_batch(client, image, runs("x", "y"), 5.0)
    assert (x.stdout, y.stdout, y.exit_code) == ("\ufffd\ufffd\ufffd{}", '{"ok": true}', 0)
    [container] = client.batches
    assert container.removed and container.wait_timeouts == [70.0]


def test_run_batch_of_nothing_makes_no_container() -> None:
    client = FakeDockerClient()
    assert batch.run_batch(client, "sha256:none", [], 5.0) == []
    assert client.batches == []


# --- the real driver ---------------------------------------------------------------------


def compilers() -> list[str]:
    return [c for c in ("cc", "musl-gcc") if shutil.which(c)]


@pytest.mark.skipif(not compilers(), reason="no C compiler")
@pytest.mark.parametrize("compiler", compilers())
def test_driver_builds_without_warnings(compiler: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [compiler, "-O1", "-Wall", "-Werror", "-o", str(tmp_path / "fips_batch"), str(DRIVER)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for whoever inherited it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(") ", 1)[1].startswith("Z")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    path = tmp_path_factory.mktemp("driver") / "fips_batch"
    subprocess.run(["cc", "-O1", "-Wall", "-o", str(path), str(DRIVER)], check=True)
    return path


def frames_end(out: bytes) -> tuple[int, int]:
    """How many reports the driver wrote and where they end, read by their byte counts."""
    header = re.compile(rb"fips-batch-run \d+ [^\n]* stdout=(\d+) stderr=(\d+)\n")
    pos = count = 0
    while (found := header.match(out, pos)) is not None:
        pos = found.end() + int(found.group(1)) + int(found.group(2))
        count += 1
    return count, pos


def test_real_driver_runs_each_run_fresh_and_reports_it(driver: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    big = "head -c 5000000 /dev/zero | tr '\\0' a"
    batch = [
        BatchRun("exit-3", ["sh", "-c", "echo out; echo err >&2; exit 3"]),
        BatchRun("segv", ["sh", "-c", "kill -SEGV $$"]),
        BatchRun("hang", ["sh", "-c", "echo started; exec sleep 30"]),
        BatchRun("no-exec", ["fips-batch-no-such-program"]),
        BatchRun("bytes", ["sh", "-c", f"printf '\\377\\376A'; {big}; {big} >&2"]),
        BatchRun("where", ["sh", "-c", "pwd; cat; sleep 30 & echo $!"]),
    ]
    command = [str(driver), "--timeout", "1", "--workdir", str(work), "--"]
    for run in batch:
        command += [str(len(run.argv)), *run.argv]
    done = subprocess.run(command, capture_output=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    assert frames_end(done.stdout) == (6, len(done.stdout))  # six reports, nothing after
    exit3, segv, hang, no_exec, raw, where = parse_batch(batch, done.stdout)

    assert (exit3.exit_code, exit3.timed_out, exit3.stdout, exit3.stderr) == (
        3,
        False,
        "out\n",
        "err\n",
    )
    assert (segv.exit_code, segv.timed_out) == (139, False)
    assert (hang.exit_code, hang.timed_out, hang.stdout) == (None, True, "started\n")
    assert 1.0 <= hang.seconds < 5
    assert no_exec.exit_code == 127 and "fips-batch-no-such-program" in no_exec.stderr
    # capped at 4 MiB each; bytes that are not UTF-8 replaced, one character each
    assert raw.exit_code == 0
    assert raw.stdout.startswith("\ufffd\ufffdAaaa") and len(raw.stdout) == 4 * MIB
    assert raw.stderr == "a" * (4 * MIB)
    # its own directory, stdin empty, and what it left running died with it
    cwd, pid = where.stdout.split()
    assert Path(cwd) == (work / "run-5").resolve()
    assert gone(int(pid))
    # every run had a directory of its own; the captured output was deleted once reported
    assert sorted(p.name for p in work.iterdir()) == [f"run-{i}" for i in range(6)]
    assert all((work / f"run-{i}").stat().st_mode & 0o777 == 0o700 for i in range(6))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="nothing"),
        pytest.param(["--timeout", "1", "--workdir", "W", "1"], id="no-separator"),
        pytest.param(["--timeout", "0", "--workdir", "W", "--", "1", "true"], id="zero-timeout"),
        pytest.param(["--timeout", "x", "--workdir", "W", "--", "1", "true"], id="bad-timeout"),
        pytest.param(["--timeout", "1", "--", "1", "true"], id="no-workdir"),
        pytest.param(["--timeout", "1", "--workdir", "W", "--", "2", "true"], id="count-too-big"),
        pytest.param(["--timeout", "1", "--workdir", "W", "--", "0"], id="empty-run"),
        pytest.param(["--timeout", "1", "--workdir", "W", "--", "1", "true", "x"], id="no-count"),
        pytest.param(["--bogus", "1", "--workdir", "W", "--", "1", "true"], id="unknown-option"),
    ],
)
def test_real_driver_usage_errors_run_nothing(
    driver: Path, tmp_path: Path, args: list[str]
) -> None:
    args = [str(tmp_path) if a == "W" else a for a in args]
    done = subprocess.run([str(driver), *args], capture_output=True, timeout=10, check=False)
    assert done.returncode == 2
    assert done.stdout == b"" and b"usage: fips_batch" in done.stderr
    assert list(tmp_path.iterdir()) == []
