#!/usr/bin/env python3
"""Benchmark: what capkit adds to one MCP tools/call (official SDK, in-memory transport).

The same tool is served twice: by a bare ``MCPServer``, and by one with
``CapkitMiddleware``. The capkit client sends a holder-bound token after a
2-hop delegation chain and a fresh proof of possession with every call
(signing the proof is counted: it is part of the call). Each figure is the
median latency of one ``call_tool`` over many calls, measured in one run,
interleaved in batches so that drift affects both alike.

Prints one JSON object with ``bare_us``, ``capkit_us`` and ``overhead`` (capkit / bare - 1),
the client's cost of making a proof (``client_proof_us``), and the same
comparison over the stdio transport (``stdio_*``), where a bare call costs more.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402

from capkit import AgentKey, Keyring, Verifier, mint  # noqa: E402
from capkit.caveats import Audience, Eq, Holder, Max, OneOf, Tools  # noqa: E402
from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.mcp import call_tool, protect  # noqa: E402

from _report import emit  # noqa: E402

GOAL = 0.15


def _time_us(fn, n: int = 2000) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return round(statistics.median(samples) / 1000, 1)


ARGS = {"recipient": "landlord", "amount": 50, "currency": "USD"}


def add_tool(server: MCPServer) -> MCPServer:
    @server.tool()
    def transfer(recipient: str, amount: float, currency: str) -> str:
        return "ok"

    return server


def credentials(keyring: Keyring | None = None) -> tuple[Verifier, Credentials]:
    keyring = Keyring.generate() if keyring is None else keyring
    planner, payer, runner = (AgentKey.generate() for _ in range(3))
    token = mint(keyring, Holder(planner.public_key), Audience("bank-mcp"), Tools("transfer"),
                 OneOf("recipient", ["landlord"]), Max("amount", 1250), Eq("currency", "USD"), location="bank")
    token = token.delegate(planner, payer.public_key, Max("amount", 500)).delegate(payer, runner.public_key)
    return Verifier(keyring, location="bank"), Credentials(token, runner, "bank-mcp")


async def interleaved(plain: Client, protected: Client, creds: Credentials, iterations: int, batch: int
                      ) -> tuple[list[int], list[int]]:
    """Time ``iterations`` calls on each client, alternating batches so drift hits both equally."""
    bare: list[int] = []
    guarded: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(iterations // batch):
        for _ in range(batch):
            start = clock()
            await plain.call_tool("transfer", ARGS)
            bare.append(clock() - start)
        for _ in range(batch):
            start = clock()
            await call_tool(protected, "transfer", ARGS, creds)
            guarded.append(clock() - start)
    return bare, guarded


async def measure(iterations: int, batch: int) -> tuple[list[int], list[int]]:
    verifier, creds = credentials()
    bare_server = add_tool(MCPServer("bare"))
    capkit_server = MCPServer("capkit")
    protect(capkit_server, verifier, audience="bank-mcp")
    capkit_server = add_tool(capkit_server)
    async with Client(bare_server) as plain, Client(capkit_server) as protected:
        for _ in range(50):  # warm both paths (imports, caches, the verified chain)
            await plain.call_tool("transfer", ARGS)
            assert not (await call_tool(protected, "transfer", ARGS, creds)).is_error
        gc.collect()
        return await interleaved(plain, protected, creds, iterations, batch)


async def measure_stdio(iterations: int, batch: int) -> tuple[list[int], list[int]]:
    """The same comparison over the stdio transport (each server a subprocess)."""
    import tempfile

    from mcp import StdioServerParameters

    with tempfile.TemporaryDirectory() as home:
        keyring = Keyring.generate()
        keyring.save(Path(home) / "keys.json")
        _, creds = credentials(keyring)
        script = str(Path(__file__).resolve().parent / "_mcp_server.py")

        def params(mode: str) -> StdioServerParameters:
            return StdioServerParameters(command=sys.executable, args=[script, mode], env={"CAPKIT_HOME": home})

        async with Client(params("bare")) as plain, Client(params("capkit")) as protected:
            for _ in range(20):
                await plain.call_tool("transfer", ARGS)
                assert not (await call_tool(protected, "transfer", ARGS, creds)).is_error
            return await interleaved(plain, protected, creds, iterations, batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    bare, guarded = anyio.run(measure, args.iterations, 100)
    bare_us = round(statistics.median(bare) / 1000, 1)
    capkit_us = round(statistics.median(guarded) / 1000, 1)
    stdio_bare, stdio_guarded = anyio.run(measure_stdio, max(200, args.iterations // 3), 50)
    stdio_bare_us = round(statistics.median(stdio_bare) / 1000, 1)
    stdio_capkit_us = round(statistics.median(stdio_guarded) / 1000, 1)
    _, creds = credentials()
    sign_us = _time_us(lambda: creds.meta("transfer", ARGS))
    result = {
        "benchmark": "mcp_overhead",
        "transport": "in-memory (official MCP SDK Client and MCPServer)",
        "token": "holder-bound, 2 delegations, fresh proof per call",
        "iterations": args.iterations,
        "bare_us": bare_us,
        "capkit_us": capkit_us,
        "added_us": round(capkit_us - bare_us, 1),
        "overhead": round(capkit_us / bare_us - 1, 3),
        "goal_overhead_below": GOAL,
        "goal_met": capkit_us / bare_us - 1 < GOAL,
        "client_proof_us": sign_us,
        "stdio_bare_us": stdio_bare_us,
        "stdio_capkit_us": stdio_capkit_us,
        "stdio_overhead": round(stdio_capkit_us / stdio_bare_us - 1, 3),
        "python": platform.python_version(),
    }
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
