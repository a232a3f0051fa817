"""Command line: `fips-matrix COMMAND` (also `python -m matrix COMMAND`). Lists the commands
and dispatches to matrix/commands/, importing only the module of the command given (so the
Docker SDK only for a command that talks to an engine); prints a user error (MatrixError)
without a traceback and ends with its exit status. Text from users and results files is
printed as it is: the console reads no markup unless a caller asks for it, and shows every
control character as its escape (matrix/visible.py)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from rich.console import Console
from rich.text import Text

from matrix import __version__
from matrix.errors import Abandoned, MatrixError
from matrix.visible import visible_console

# Each command is the module of its name in matrix/commands/, with `arguments(parser)` and
# `main(args, console) -> exit status`; listed here with its help, in the order --help shows.
COMMANDS: dict[str, str] = {
    "run": "build and probe the cells of a matrix",
    "probe": "probe existing images as they are (local, or pulled): is the process able to "
    "recover when the image's FIPS provider fails a self-test? The same tables, findings and "
    "reports as a run",
    "plan": "print the cells, for a CI job matrix",
    "merge": "merge result directories into one report",
    "publish": "copy a run's results for readers: cell JSON, summary, tables and HTML, without "
    "logs or this machine's paths (e.g. the committed results/reference)",
    "bundle": "build the cells, then write their images and verified sources into one archive",
    "report": "judge a results directory's stored observations again under the current rules, "
    "REWRITE its cell files with the new verdicts, and make every report again (runs "
    "nothing, needs no engine)",
    "diff": "cells whose status (the verdict, or DIED_AFTER_RELOAD) changed, appeared or "
    "disappeared between two runs; exit 1 if one got worse or a cell file cannot be read",
    "repro": "write a directory that reproduces one scenario of one cell with plain docker: a "
    "Dockerfile (pinned source, the cell's build), one C file, and a README saying what "
    "to expect",
    "bench": "measure the matrix's cost: cold, warm, and against the plain way",
}

PIPE_CLOSED = 128 + signal.SIGPIPE  # what a shell reports for a writer whose reader left


class _Console(Console):
    """rich ends the process itself on a closed pipe (SystemExit(1)); here it is the same
    BrokenPipeError as everywhere else, so main() ends every command alike."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says it (an option
    whose default is computed says in words what it is)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line: every command listed; each command's own options added by its
    module (`arguments`), for every command, or with `only` for that one alone (the others'
    modules are not imported, so a command that needs no engine never loads its SDK)."""
    p = argparse.ArgumentParser(
        prog="fips-matrix",
        description="Can a process recover when the OpenSSL 3 FIPS provider fails a self-test?",
        formatter_class=_Help,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        command = sub.add_parser(name, help=text, description=text, formatter_class=_Help)
        if only is None or only == name:
            _module(name).arguments(command)
    return p


def _module(name: str) -> ModuleType:
    """A command's module: its options (`arguments`) and what it does (`main`)."""
    return importlib.import_module(f"matrix.commands.{name}")


def _command_word(argv: Sequence[str]) -> str:
    """The command a command line names: its first word that is no option (the top level
    has no option that takes a value); "" when it names none it knows."""
    word = next((a for a in argv if not a.startswith("-")), "")
    return word if word in COMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`fips-matrix plan | head -1`): nothing is left to tell it.
        # Point stdout at /dev/null so that the interpreter's last flush fails no more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser(_command_word(words)).parse_args(words)
    # SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: probe containers are removed
    # and finished cells stay on disk.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _interrupted)
    # Colour only on a terminal (rich's own test); NO_COLOR: no styles at all, not even bold.
    plain = bool(os.environ.get("NO_COLOR"))
    console = _Console(
        highlight=False, soft_wrap=True, markup=False, color_system=None if plain else "auto"
    )
    visible_console(console)  # no text from elsewhere drives the terminal
    try:
        code: int = _module(args.command).main(args, console)
    except MatrixError as exc:
        console.print(Text.assemble(("fips-matrix: error:", "red"), " ", str(exc)))
        code = exc.exit_code
    except KeyboardInterrupt as exc:
        what = f"{exc}; " if isinstance(exc, Abandoned) else ""
        console.print(
            f"fips-matrix: interrupted; {what}finished cells are kept in the results directory"
        )
        if _workers_left():
            # Abandoned work still runs in threads the interpreter would wait for at exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        code = 130
    sys.stdout.flush()  # a closed pipe shows here, inside main, not at the interpreter's exit
    return code


def _workers_left() -> bool:
    return any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    )


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
