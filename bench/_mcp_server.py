"""The servers bench/mcp_overhead.py compares over stdio: ``bare``, ``capkit`` (signature proofs) or
``capkit-mac`` (designated-verifier proofs); keyring and proof key in $CAPKIT_HOME."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp.server.mcpserver import MCPServer  # noqa: E402

from capkit import AgentKey, Keyring, Verifier  # noqa: E402
from capkit.integrations.mcp import protect  # noqa: E402


def main() -> None:
    server = MCPServer(sys.argv[1])
    if sys.argv[1] in ("capkit", "capkit-mac"):
        keyring = Keyring.load(Path(os.environ["CAPKIT_HOME"]) / "keys.json")
        if sys.argv[1] == "capkit-mac":
            verifier = Verifier(keyring, location="bank", proof_modes={"mac"},
                                proof_key=AgentKey.load(Path(os.environ["CAPKIT_HOME"]) / "proof.key"))
        else:
            verifier = Verifier(keyring, location="bank")
        protect(server, verifier, audience="bank-mcp")

    @server.tool()
    def transfer(recipient: str, amount: float, currency: str) -> str:
        return "ok"

    server.run("stdio")


if __name__ == "__main__":
    main()
