"""The CLI's two failures and their exit codes: a bad command line (2) and an input that could not be processed (1)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class CliError(Exception):
    """A failure reported as one line on stderr, without a traceback, and turned into ``exit_code``."""

    exit_code = EXIT_INPUT_FAILED


class InputError(CliError):
    """An input file (or pair of files) could not be read or processed; a batch goes on with the next one."""

    exit_code = EXIT_INPUT_FAILED


class UsageError(CliError):
    """The command line itself is wrong (a malformed kernel, conflicting options): nothing was run."""

    exit_code = EXIT_USAGE
