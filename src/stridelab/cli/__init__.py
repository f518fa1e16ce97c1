"""The ``stridelab`` command: one module per subcommand, dispatched from here.

Every subcommand module exposes ``add_parser(subparsers)`` and ``run(args) -> int`` and imports
heavy libraries (torch, matplotlib) only inside ``run``, so ``stridelab size`` stays instant.
Bad input of any kind prints one line to stderr and exits 2; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from stridelab._version import __version__

# name -> module; a module that is not present in this build is simply not offered.
SUBCOMMANDS = {
    "size": "stridelab.cli.size",
    "solve": "stridelab.cli.solve",
    "inspect": "stridelab.cli.inspect_cmd",
    "study": "stridelab.cli.study",
    "animate": "stridelab.cli.animate",
    "erf": "stridelab.cli.erf",
    "explore": "stridelab.cli.explore",
}

EXIT_USAGE = 2


class UsageError(Exception):
    """Raised for bad command-line input; main() prints it as one line and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> Parser:
    parser = Parser(prog="stridelab", description="Stride and padding, first-class.")
    parser.add_argument("--version", action="version", version=f"stridelab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for _name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stridelab`` console script; returns the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, OSError, KeyError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"stridelab: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("stridelab: interrupted", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    sys.exit(main())
