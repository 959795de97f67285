"""``capkit gateway``: put a verifier in front of an unmodified MCP server, for an unmodified MCP host."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

import click

from capkit import Verifier
from capkit.integrations import Credentials

from ..errors import InputError, reports_errors
from ..home import home_option, load_keyring, open_cli_audit, open_cli_store, store_option
from ..io import parse_token, read_token_text
from .agent import load_agent_key


def _token_text(value: str) -> str:
    """``--token``: the token, or ``@FILE`` holding it (keep tokens out of process listings)."""
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read the token file {value[1:]}: {exc.strerror}") from None
    return read_token_text(value)


@click.command("gateway", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--token", "token_value", metavar="TOKEN|@FILE",
              help="The token the gateway presents for every call (or @FILE holding it). Without it (--listen "
                   "only), each client sends its own.")
@click.option("--listen", "listen_url", metavar="URL",
              help="Serve hosts over streamable HTTP at http://HOST:PORT/PATH instead of stdio (one upstream "
                   "connection per MCP session).")
@click.option("--location", metavar="L", help="The location this gateway verifies (default: the token's).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The agent key the token is bound to: the gateway signs each call's proof with it.")
@click.option("--upstream", metavar="URL", help="An upstream MCP server over streamable HTTP (instead of COMMAND).")
@click.option("--audience", metavar="NAME", help="The audience calls are addressed to (for audience caveats).")
@click.option("--allow-bearer", is_flag=True, help="Accept a token that names no holder (off by default).")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every decision to this audit log (signed by the home's audit key).")
@click.option("--approver-key", "approver_path", type=click.Path(dir_okay=False, path_type=Path),
              help="An approver's key: a call that needs this approver's approval is put to the person in the "
                   "host's own UI (MCP elicitation); a yes approves exactly that call, once.")
@click.option("--print-config", "print_config", metavar="NAME",
              help="Print the JSON block a host's MCP configuration needs to run this gateway as server NAME, "
                   "then exit.")
@home_option
@store_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def gateway_command(token_value: str | None, listen_url: str | None, location: str | None, key_path: Path | None,
                    upstream: str | None, audience: str | None, allow_bearer: bool, audit_path: Path | None,
                    approver_path: Path | None, print_config: str | None, home: Path | None,
                    store_url: str | None, command: tuple[str, ...]) -> None:
    """Relay an MCP host (on stdio, or over HTTP) to an upstream server, deciding every request with the token.

    COMMAND (after --) starts the upstream server as a child over stdio; or
    --upstream URL reaches one over streamable HTTP. tools/call, resources,
    prompts and every other data method are authorized before the upstream sees
    them; listings show only what the token grants; a denied call is a tool
    error listing the reasons. Budgets, call limits, replay and revocation live
    in --store (default: SQLite in the capkit home). The model never sees the
    token or the key.

    With --listen http://HOST:PORT/PATH the gateway serves hosts over
    streamable HTTP; each client may then bring its own credentials on every
    request (Authorization: Capkit <token> and Capkit-Proof headers, or the
    request's _meta), checked against --location; a session opens only for a
    client whose first request carries a token that verifies here. A gateway
    holding --token
    lends its authority to every client that reaches the port, so that
    listens on a loopback address only.

    With --approver-key, a call denied only for lack of that approver's
    approval is shown to the person in the host (when the host supports MCP
    elicitation); a yes approves exactly that call, once, and it runs.

    \b
    Example:
      capkit gateway --token @fs.token --key agent.key -- npx @modelcontextprotocol/server-filesystem ~/Documents
      capkit gateway --token @fs.token --key agent.key --print-config files -- mcp-server-filesystem ~/Documents
      capkit gateway --listen http://127.0.0.1:8931/mcp --location files -- mcp-server-filesystem ~/Documents
    """
    import asyncio

    argv = list(command[1:] if command[:1] == ("--",) else command)
    if (not argv) == (upstream is None):
        raise InputError("give the upstream server's command after --, or --upstream URL (one of them)")
    if token_value is None and (listen_url is None or print_config is not None):
        raise InputError("give --token (the gateway presents it for every call); only with --listen may each "
                         "client send its own instead")
    parsed = None if token_value is None else parse_token(_token_text(token_value))
    if print_config is not None:
        _print_config(print_config, token_value, key_path, upstream, audience, allow_bearer, audit_path,
                      approver_path, home, store_url, argv)
        return
    if approver_path is not None and parsed is None:
        raise InputError("--approver-key needs --token: the gateway signs the approved call again itself")
    if listen_url is not None:
        from capkit.gateway.http import is_loopback, parse_listen_url

        listen_host = parse_listen_url(listen_url)[0]
        if parsed is not None and not is_loopback(listen_host):
            raise InputError(f"a gateway holding --token lends it to every client that reaches {listen_host}; "
                             "listen on 127.0.0.1 (or localhost), or leave --token out so each client sends its own")
    location = location if location is not None else (parsed.location if parsed is not None else None)
    if location is None:
        raise InputError("give --location: the location the clients' tokens are minted for")
    if parsed is not None and parsed.claimed_holder is not None and key_path is None:
        raise InputError("the token is bound to an agent key: give it with --key so the gateway can sign proofs")
    key = load_agent_key(key_path) if key_path is not None else None
    audit = None if audit_path is None else open_cli_audit(home, audit_path)
    verifier = Verifier(load_keyring(home), location=location, allow_bearer=allow_bearer,
                        store=open_cli_store(home, store_url), audit=audit)
    from capkit.gateway import Gateway, serve, serve_listening

    credentials = None if parsed is None else Credentials(parsed, key, audience)
    approver = None if approver_path is None else load_agent_key(approver_path)
    try:
        if listen_url is None:
            asyncio.run(serve(Gateway(verifier, credentials=credentials, approver=approver), command=argv or None,
                              url=upstream))
        else:
            make = lambda: Gateway(verifier, credentials=credentials, audience=audience,  # noqa: E731
                                   approver=approver)
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve_listening(make, listen_url, command=argv or None, url=upstream))
    finally:
        verifier.close()


def _print_config(name: str, token_value: str, key_path: Path | None, upstream: str | None, audience: str | None,
                  allow_bearer: bool, audit_path: Path | None, approver_path: Path | None, home: Path | None,
                  store_url: str | None, argv: list[str]) -> None:
    """The ``mcpServers`` block (Claude Desktop, Cursor, VS Code and most hosts use this shape)."""
    if not token_value.startswith("@"):
        raise InputError("--print-config writes the token's file, not the token, into the host's configuration: "
                         "give --token @FILE")
    absolute = lambda p: str(Path(p).expanduser().resolve())  # noqa: E731
    args = ["gateway", "--token", "@" + absolute(token_value[1:])]
    if key_path is not None:
        args += ["--key", absolute(key_path)]
    if upstream is not None:
        args += ["--upstream", upstream]
    if audience is not None:
        args += ["--audience", audience]
    if allow_bearer:
        args.append("--allow-bearer")
    if audit_path is not None:
        args += ["--audit", absolute(audit_path)]
    if approver_path is not None:
        args += ["--approver-key", absolute(approver_path)]
    if store_url is not None:
        args += ["--store", store_url]
    if argv:
        args += ["--", *argv]
    env = {"CAPKIT_HOME": absolute(home)} if home is not None else {}
    executable = shutil.which("capkit") or os.path.join(os.path.dirname(sys.executable), "capkit")
    block = {"mcpServers": {name: {"command": executable, "args": args, **({"env": env} if env else {})}}}
    click.echo(json.dumps(block, indent=2))
