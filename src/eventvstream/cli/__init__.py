"""The ``evs`` command line: one module per command, shared flags and output in ``common.py``.

``evs segment | eval | run | query | memory | serve | stream``. Each command module has
``add_parser(subparsers)`` and ``main(args) -> exit status``; this module builds the parser,
sets up logging on stderr, and turns errors into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from eventvstream import __version__
from eventvstream.cli import eval as eval_command
from eventvstream.cli import memory, query, run, segment, serve, stream
from eventvstream.errors import EvsError

EXIT_ERROR = 1
EXIT_USAGE = 2

# In the order `evs --help` lists them.
COMMANDS: dict[str, ModuleType] = {
    "segment": segment,
    "run": run,
    "query": query,
    "memory": memory,
    "serve": serve,
    "stream": stream,
    "eval": eval_command,
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evs",
        description="Event-VStream: streaming video understanding in events.",
        epilog='start with `evs run VIDEO`, then `evs query "what happened?"` (give both the '
        "same --data-dir, if any); `evs serve` for the API and web page; `evs COMMAND --help` "
        "for each command's flags. Settings: --config PROFILE and EVS_* variables (README).",
    )
    parser.add_argument("--version", action="version", version=f"evs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    command: Callable[[argparse.Namespace], int] = COMMANDS[args.command].main
    try:
        return command(args)
    except EvsError as exc:
        print(f"evs: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.code == "invalid_config" else EXIT_ERROR
    except KeyboardInterrupt:
        print("evs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`evs segment ... | head`): that is not an error. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file the user named cannot be written or read (--trace into a missing folder, a
        # full disk): the system's reason and the path say it all; a traceback says nothing more.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"evs: error [io_error]: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
