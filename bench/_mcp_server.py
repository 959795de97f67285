"""The two servers bench/mcp_overhead.py compares over stdio: ``bare`` or ``capkit`` (keyring in $CAPKIT_HOME)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp.server.mcpserver import MCPServer  # noqa: E402

from capkit import Keyring, Verifier  # noqa: E402
from capkit.integrations.mcp import protect  # noqa: E402


def main() -> None:
    server = MCPServer(sys.argv[1])
    if sys.argv[1] == "capkit":
        keyring = Keyring.load(Path(os.environ["CAPKIT_HOME"]) / "keys.json")
        protect(server, Verifier(keyring, location="bank"), audience="bank-mcp")

    @server.tool()
    def transfer(recipient: str, amount: float, currency: str) -> str:
        return "ok"

    server.run("stdio")


if __name__ == "__main__":
    main()
