"""Exit codes and how errors reach the person: 0 ok/allowed, 1 denied, 2 usage or input error."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import click

from capkit import CapkitError

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


class InputError(click.ClickException):
    """Bad input or configuration: printed as 'error: ...' on stderr, exit code 2."""

    exit_code = EXIT_INPUT

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def reports_errors(fn: F) -> F:
    """Turn capkit's typed errors into exit code 2 with their sentence (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CapkitError as exc:
            raise InputError(exc.message) from None

    return wrapper  # type: ignore[return-value]
