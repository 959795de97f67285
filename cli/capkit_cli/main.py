"""Entry point of the ``capkit`` command. Exit codes: 0 ok/allowed, 1 denied, 2 usage or input error."""

from __future__ import annotations

import click

import capkit

from .commands.agent import agent_group
from .commands.approve import approval_server_command, approve_command, approver_group
from .commands.audit import audit_group
from .commands.gateway import gateway_command
from .commands.alignment import eval_command, suggest_command, trace_group
from .commands.check import check_command, prove_command
from .commands.codes import codes_command
from .commands.demo import demo_command
from .commands.inspect import inspect_command
from .commands.keys import keys_group
from .commands.mint import attenuate_command, delegate_command, mint_command
from .commands.state import budget_group, revoke_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(capkit.__version__, "-V", "--version", prog_name="capkit")
def cli() -> None:
    """capkit: capability tokens for AI agents.

    A person mints a token scoped to one task; the agent presents it with
    every tool call; the tool backend verifies it with no model involved.
    Exit codes: 0 allowed/ok, 1 denied, 2 usage or input error. Reason codes: capkit codes.
    Shell completion: eval "$(_CAPKIT_COMPLETE=bash_source capkit)" (zsh_source, fish_source).

    \b
    Example session:
      capkit keys init
      PLANNER=$(capkit agent keygen --out planner.key)
      PAYER=$(capkit agent keygen --out payer.key)
      TOKEN=$(capkit mint --location bank --holder "$PLANNER" --tool bank.transfer \\
              --one-of recipient=landlord --max amount=1250 --eq currency=USD --expires 24h)
      SUB=$(capkit delegate "$TOKEN" --key planner.key --to "$PAYER" --max amount=50)
      capkit inspect "$SUB"
      capkit check "$SUB" --key payer.key --tool bank.transfer \\
              --arg recipient=landlord --arg amount=50 --arg currency=USD
    """


cli.add_command(keys_group)
cli.add_command(agent_group)
cli.add_command(mint_command)
cli.add_command(attenuate_command)
cli.add_command(delegate_command)
cli.add_command(inspect_command)
cli.add_command(prove_command)
cli.add_command(check_command)
cli.add_command(budget_group)
cli.add_command(revoke_command)
cli.add_command(demo_command)
cli.add_command(eval_command)
cli.add_command(suggest_command)
cli.add_command(trace_group)
cli.add_command(audit_group)
cli.add_command(approver_group)
cli.add_command(approve_command)
cli.add_command(approval_server_command)
cli.add_command(gateway_command)
cli.add_command(codes_command)
