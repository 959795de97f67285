"""An MCP banking server protected by capkit (official MCP SDK, ``MCPServer``).

Run over stdio (as an MCP client launches it):
    CAPKIT_HOME=/path/with/keys.json python examples/mcp_bank/bank_server.py

The keyring comes from $CAPKIT_HOME/keys.json; budgets, nonces and revocations
from $CAPKIT_STORE (default: SQLite next to the keyring). Every tools/call
must carry a capkit token and proof in _meta["dev.capkit/credentials"] (see run.py).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from capkit import Keyring, Verifier, open_store
from capkit.integrations.mcp import protect

AUDIENCE = "bank-mcp"


def build_server(verifier: Verifier, ledger: list[str] | None = None) -> MCPServer:
    """The bank: three tools, every call authorized by ``verifier``."""
    ledger = [] if ledger is None else ledger
    server = MCPServer("bank")
    protect(server, verifier, audience=AUDIENCE)  # every request, checked against what the tools receive

    @server.tool()
    def transfer(recipient: str, amount: float, currency: str, reference: str = "") -> str:
        """Send money from the checking account."""
        if Decimal(str(amount)) <= 0:
            raise ValueError("the amount must be positive")
        ledger.append(f"transfer {amount} {currency} to {recipient} ({reference})")
        return f"sent {amount} {currency} to {recipient}"

    @server.tool()
    def balance() -> str:
        """The checking account's balance."""
        return "4,210.55 USD"

    @server.tool()
    def close_account(account: str) -> str:
        """Close an account."""
        ledger.append(f"closed {account}")
        return f"closed {account}"

    return server


def main() -> None:
    home = Path(os.environ["CAPKIT_HOME"])
    store = open_store(os.environ.get("CAPKIT_STORE") or f"sqlite://{home.resolve() / 'state.db'}")
    build_server(Verifier(Keyring.load(home / "keys.json"), location="bank", store=store)).run("stdio")


if __name__ == "__main__":
    main()
