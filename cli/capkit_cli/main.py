"""Entry point of the ``capkit`` command."""

from __future__ import annotations

import click

import capkit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(capkit.__version__, prog_name="capkit")
def cli() -> None:
    """capkit: capability tokens for AI agents.

    A person mints a token scoped to one task; the agent presents it with
    every tool call; the tool backend verifies it with no model involved.
    """
