"""The ``xcorr`` command: a typer app whose subcommands live in one module each, and ``main``, the entry point.

``main`` owns the exit codes (0 ok, 1 some inputs failed, 2 usage error, 130 interrupted) and turns every failure
into one ``xcorr: error: ...`` line on stderr, without a traceback: the expected ones with their own message, a
filesystem failure with the path and the system's reason, anything else as an internal error (set ``XCORR_DEBUG=1``
to see its traceback).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

import typer

import xcorr
from xcorr.cli import bench_command, console, demo_command, filter_command, fit_command, match_command, plan_command
from xcorr.cli.errors import EXIT_INPUT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliError

app = typer.Typer(
    name="xcorr",
    help="2-D cross-correlation for image files: filter, fit a kernel, find templates, explain the plan, benchmark.\n\n"
    "Exit codes: 0 ok, 1 some inputs failed (the others were processed), 2 usage error (nothing was run), "
    "130 interrupted.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("filter", epilog=filter_command.EXAMPLES)(filter_command.filter_command)
app.command("fit", epilog=fit_command.EXAMPLES)(fit_command.fit_command)
app.command("match", epilog=match_command.EXAMPLES)(match_command.match_command)
app.command("plan", epilog=plan_command.EXAMPLES)(plan_command.plan_command)
app.command("demo", epilog=demo_command.EXAMPLES)(demo_command.demo_command)
app.command(
    "bench", epilog=bench_command.EXAMPLES, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)(bench_command.bench_command)


def _print_version(value: bool) -> None:
    if value:
        console.stdout.print(f"xcorr {xcorr.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options shared by every subcommand; without a subcommand, print the help."""
    if ctx.invoked_subcommand is None:
        console.stdout.print(ctx.get_help(), markup=False)


class Interrupted(Exception):  # noqa: N818 - it is what happened, not a programming error
    """Ctrl-C (SIGINT) while a command runs: raised by :func:`_interrupts`, so no command's handler can take it."""


@contextmanager
def _interrupts() -> Iterator[None]:
    """Turn SIGINT into :class:`Interrupted` for the block (typer would turn KeyboardInterrupt into a silent 130).

    A signal that lands in a C callback (numba compiling) is swallowed there; it is raised again when the block
    ends, so Ctrl-C always ends in :class:`Interrupted`. Only the main thread can set signal handlers; elsewhere
    (a test runner's thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def interrupted(signum: int, frame: object) -> None:
        received.append(signum)
        raise Interrupted

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise Interrupted


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xcorr`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        xcorr ...
        0
    """
    command = typer.main.get_command(app)
    try:
        with _interrupts():
            result = command.main(args=argv, prog_name="xcorr", standalone_mode=False)
    except CliError as exc:
        console.error(str(exc))
        return exc.exit_code
    except typer.TyperException as exc:  # typer's usage errors (bad option, missing argument, bad choice)
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        console.error(exc.format_message() + (hint if exc.exit_code == EXIT_USAGE else ""))
        return exc.exit_code
    except (Interrupted, typer.Abort, KeyboardInterrupt):
        console.error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a filesystem failure no command anticipated: the path and the system's reason
        where = f"{exc.filename}: " if exc.filename else ""
        console.error(f"{where}{exc.strerror or exc}")
        return EXIT_INPUT_FAILED
    except Exception as exc:
        if os.environ.get("XCORR_DEBUG"):
            raise
        console.error(f"internal error: {type(exc).__name__}: {exc} (set XCORR_DEBUG=1 for a traceback)")
        return EXIT_INPUT_FAILED
    return result if isinstance(result, int) else 0
