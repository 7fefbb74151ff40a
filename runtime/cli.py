"""The runner the project's command lines share: a user error is one `error:` line and exit 1.

Usage errors exit 2 (argparse's own, or no command given); spec errors print
one line per diagnostic. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .trainer import NonFiniteLoss, one_line_error

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, NonFiniteLoss)  # DatasetError, ConfigError are ValueErrors


def run_command(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    """Parse argv and run the chosen subcommand's `run(args)`."""
    try:
        from omgen import SpecErrors
        spec_errors: tuple = (SpecErrors,)
    except ImportError:  # the compiler's dependencies (libcst) are not installed: generated/ is used as is
        spec_errors = ()

    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except spec_errors as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)  # "file:line:col: error: message"
        return EXIT_ERROR
    except USER_ERRORS as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else one_line_error(exc)
        print(f"error: {message.splitlines()[0] if message.strip() else type(exc).__name__}", file=sys.stderr)
        return EXIT_ERROR
