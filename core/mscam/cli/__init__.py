"""The `mscam` command line: `mscam COMMAND …` and `python -m mscam COMMAND …`.

Each sub-command lives in its own module of this package with two functions:
`add_parser(subparsers)` (which calls `parser.set_defaults(run=run)`) and `run(args) -> int`.
User-facing failures raise `mscam.errors.MscamError`; they are printed as one line on stderr and
the exit code is 1 (2 for bad command-line usage, 130 for Ctrl-C, 143 for SIGTERM; both clean up
first). GDAL's own messages go through the same logging, never raw to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from mscam._version import __version__
from mscam.errors import MscamError, Terminated

log = logging.getLogger("mscam")

# Order is the order of `mscam --help`.
COMMANDS: tuple[str, ...] = (
    "explain",
    "batch",
    "localize",
    "evaluate",
    "sanity",
    "synth",
    "train",
    "demo",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (`mscam: error: …`, exit 2), like every other failure."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mscam",
        description="Explain a CNN's decisions on SAR imagery with MS-CAM and baseline CAMs.",
    )
    parser.add_argument("--version", action="version", version=f"mscam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        importlib.import_module(f"mscam.cli.{name}").add_parser(subparsers)
    return parser


@contextmanager
def gdal_messages_logged() -> Iterator[None]:
    """GDAL's messages as log records for the block: warnings as warnings; failures at debug
    level, since the exception that follows carries them into the one-line error."""
    try:
        from osgeo import gdal
    except ImportError:  # pragma: no cover - depends on the machine
        yield
        return

    def handler(level: int, number: int, message: str) -> None:
        if level >= gdal.CE_Failure:
            log.debug("GDAL error %d: %s", number, message)
        elif level == gdal.CE_Warning:
            log.warning("GDAL: %s", message)
        else:
            log.debug("GDAL: %s", message)

    # The process-wide handler, not a pushed one: GDAL's handler stacks are per thread, and the
    # scene pipeline reads in a second thread.
    gdal.SetErrorHandler(handler)
    try:
        yield
    finally:
        gdal.SetErrorHandler("CPLDefaultErrorHandler")


@contextmanager
def sigterm_handled() -> Iterator[None]:
    """SIGTERM raises `Terminated` in the block (so the same cleanup as Ctrl-C runs); the
    previous handler is put back after it (tests call `main` in-process)."""
    import threading

    from mscam.scene.outputs import install_signal_handlers

    if threading.current_thread() is not threading.main_thread():  # signals are the main's
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    install_signal_handlers()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="mscam: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with sigterm_handled(), gdal_messages_logged():
            return int(args.run(args) or 0)
    except MscamError as exc:
        print(f"mscam: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mscam: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("mscam: terminated", file=sys.stderr)
        return 143
    except MemoryError:
        print("mscam: error: out of memory (try a smaller --tile or --batch)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: still one line, the traceback with -v
        log.debug("traceback of the unexpected error", exc_info=True)
        print(
            f"mscam: error: unexpected {type(exc).__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        return 1
