"""A FastMCP bank protected by capkit, for tests (in memory, and over stdio: ``python tests/fastmcp_bank.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastmcp import Context, FastMCP

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capkit import Keyring, Verifier, open_store  # noqa: E402
from capkit.integrations.fastmcp import CapkitFastMCPMiddleware  # noqa: E402


def build(verifier: Verifier, seen: list | None = None) -> FastMCP:
    seen = [] if seen is None else seen
    server = FastMCP("bank", strict_input_validation=True,
                     middleware=[CapkitFastMCPMiddleware(verifier, audience="bank-mcp")])

    @server.tool
    def transfer(recipient: str, amount: float, currency: str, ctx: Context) -> str:
        seen.append(dict(ctx.request_context.meta or {}))
        if amount == 13:
            raise RuntimeError("the bank is down")
        return f"sent {amount} {currency} to {recipient}"

    @server.tool
    def balance(ctx: Context) -> str:
        seen.append(dict(ctx.request_context.meta or {}))
        return "4,210.55 USD"

    return server


if __name__ == "__main__":
    home = Path(os.environ["CAPKIT_HOME"])
    store = open_store(f"sqlite://{home / 'state.db'}")
    build(Verifier(Keyring.load(home / "keys.json"), location="bank", store=store)).run("stdio")
