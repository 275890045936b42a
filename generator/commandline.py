"""What both command lines (`ipadgen`, `ipad-detect`) share: a typer app with `--version` and `-h`,
verbs whose bad input is reported as one line per problem and exit 2 (anything else is a bug and
keeps its traceback), and an entry point that words typer's own refusals as one line too.

Each CLI says what counts as bad input and how a range or a choice it refused is worded; the rest
is here, so the two cannot drift apart. typer only: the detector imports it without bpy. No
`from __future__ import annotations`: typer evaluates the --version option's annotation, which
names a local function.
"""
import functools
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Annotated

import typer

DISTRIBUTION = "ipad-vad"  # the name on PyPI, whose version --version prints

# click's ClickException, the base of every error typer reports (vendored in typer since 0.26)
FrameworkError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # sources on the path, not installed
        return "unknown (not installed)"


class CommandLine:
    """One CLI: `verb` registers a command, `main` runs it. `bad_input(error)` gives the lines an
    error is reported as, or None for a bug; `framework_error(error)` the one line for what typer
    refused (an unknown option, a value out of range)."""

    def __init__(self, prog: str, summary: str, bad_input: Callable[[Exception], list[str] | None],
                 framework_error: Callable[[Exception], str]) -> None:
        self.prog, self.bad_input, self.framework_error = prog, bad_input, framework_error
        self.app = typer.Typer(name=prog, help=summary, add_completion=False, pretty_exceptions_enable=False,
                               context_settings={"help_option_names": ["-h", "--help"]})

        def print_version(value: bool) -> None:
            if value:
                print(f"{prog} {version()}")
                raise typer.Exit()

        @self.app.callback()
        def root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=print_version,
                                                       help="print the version and exit")] = False) -> None:
            pass

    def verb(self, name: str, summary: str, description: str | None = None):
        """Register a function as `PROG NAME`; its return value is the exit code (None: 0)."""
        def register(fn):
            @functools.wraps(fn)
            def run(*args, **kwargs) -> int:
                try:
                    return fn(*args, **kwargs) or 0
                except Exception as error:
                    lines = self.bad_input(error)
                    if lines is None:
                        raise
                    for line in lines:
                        print(f"{self.prog} {name}: error: {line}", file=sys.stderr)
                    return 2
            self.app.command(name, help=description or summary, short_help=summary)(run)
            return fn
        return register

    def main(self, argv: list[str] | None) -> int:
        command = typer.main.get_command(self.app)
        try:
            return command.main(args=argv, prog_name=self.prog, standalone_mode=False)
        except FrameworkError as error:  # typer's usage errors: unknown option, bad value, range, missing
            ctx = getattr(error, "ctx", None)
            print(f"{ctx.command_path if ctx else self.prog}: error: {self.framework_error(error)}", file=sys.stderr)
            return error.exit_code
