#!/usr/bin/env python3
"""Benchmark: what capkit adds to one MCP tools/call (official SDK, in-memory transport).

The same tool is served twice: by a bare ``MCPServer``, and by one with
``CapkitMiddleware``. The capkit client sends a holder-bound token after a
2-hop delegation chain and a fresh proof of possession with every call
(signing the proof is counted: it is part of the call). Each figure is the
median latency of one ``call_tool`` over many calls, measured in one run,
interleaved in batches so that drift affects both alike.

Prints one JSON object: for each proof mode (``signature``: Ed25519, the default;
``mac``: designated-verifier proofs, specs/SPEC.md §16.6) the median call, its overhead
(capkit / bare - 1), the same over the stdio transport (``stdio_*``), and a breakdown of
what capkit adds, each piece measured apart (the client's proof and ``_meta``, reading the
credentials, the check that the tool receives the arguments as authorized, ``authorize``).
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
GOAL_STDIO = 0.05


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


PROOF_KEY = AgentKey.from_seed(b"\x0f" * 32)  # the verifier's proof key (MAC mode)


def credentials(keyring: Keyring | None = None, mode: str = "signature") -> tuple[Verifier, Credentials]:
    keyring = Keyring.generate() if keyring is None else keyring
    planner, payer, runner = (AgentKey.generate() for _ in range(3))
    token = mint(keyring, Holder(planner.public_key), Audience("bank-mcp"), Tools("transfer"),
                 OneOf("recipient", ["landlord"]), Max("amount", 1250), Eq("currency", "USD"), location="bank")
    token = token.delegate(planner, payer.public_key, Max("amount", 500)).delegate(payer, runner.public_key)
    if mode == "mac":
        verifier = Verifier(keyring, location="bank", proof_modes={"mac"}, proof_key=PROOF_KEY)
        return verifier, Credentials(token, runner, "bank-mcp", verifier_key=PROOF_KEY.public_key)
    return Verifier(keyring, location="bank"), Credentials(token, runner, "bank-mcp")


async def interleaved(plain: Client, protected: "dict[str, tuple[Client, Credentials]]", iterations: int,
                      batch: int) -> "dict[str, list[int]]":
    """Time ``iterations`` calls on each client, alternating batches so drift hits all equally."""
    samples: dict[str, list[int]] = {"bare": [], **{mode: [] for mode in protected}}
    clock = time.perf_counter_ns
    for _ in range(iterations // batch):
        for _ in range(batch):
            start = clock()
            await plain.call_tool("transfer", ARGS)
            samples["bare"].append(clock() - start)
        for mode, (client, creds) in protected.items():
            for _ in range(batch):
                start = clock()
                await call_tool(client, "transfer", ARGS, creds)
                samples[mode].append(clock() - start)
    return samples


async def measure(iterations: int, batch: int) -> "dict[str, list[int]]":
    bare_server = add_tool(MCPServer("bare"))
    servers = {}
    for mode in ("signature", "mac"):
        verifier, creds = credentials(mode=mode)
        server = MCPServer("capkit-" + mode)
        protect(server, verifier, audience="bank-mcp")
        servers[mode] = (add_tool(server), creds)
    async with Client(bare_server) as plain, Client(servers["signature"][0]) as signed, \
            Client(servers["mac"][0]) as maced:
        protected = {"signature": (signed, servers["signature"][1]), "mac": (maced, servers["mac"][1])}
        for _ in range(50):  # warm every path (imports, caches, the verified chain)
            await plain.call_tool("transfer", ARGS)
            for client, creds in protected.values():
                assert not (await call_tool(client, "transfer", ARGS, creds)).is_error
        gc.collect()
        return await interleaved(plain, protected, iterations, batch)


async def measure_stdio(iterations: int, batch: int) -> "dict[str, list[int]]":
    """The same comparison over the stdio transport (each server a subprocess)."""
    import tempfile

    from mcp import StdioServerParameters

    with tempfile.TemporaryDirectory() as home:
        keyring = Keyring.generate()
        keyring.save(Path(home) / "keys.json")
        PROOF_KEY.save(Path(home) / "proof.key")
        creds = {mode: credentials(keyring, mode)[1] for mode in ("signature", "mac")}
        script = str(Path(__file__).resolve().parent / "_mcp_server.py")

        def params(mode: str) -> StdioServerParameters:
            return StdioServerParameters(command=sys.executable, args=[script, mode], env={"CAPKIT_HOME": home})

        async with Client(params("bare")) as plain, Client(params("capkit")) as signed, \
                Client(params("capkit-mac")) as maced:
            protected = {"signature": (signed, creds["signature"]), "mac": (maced, creds["mac"])}
            for _ in range(20):
                await plain.call_tool("transfer", ARGS)
                for client, c in protected.values():
                    assert not (await call_tool(client, "transfer", ARGS, c)).is_error
            return await interleaved(plain, protected, iterations, batch)


def breakdown() -> dict:
    """Median microseconds of each piece capkit adds, measured apart (server and client side)."""
    from capkit import Invocation
    from capkit.integrations.mcp import read_credentials

    out: dict = {}
    server = add_tool(MCPServer("probe"))
    middleware = protect(server, credentials()[0], audience="bank-mcp")
    params = {"name": "transfer", "arguments": ARGS}
    out["server_transform_check_us"] = _time_us(lambda: middleware._transformed("tools/call", params))
    for mode in ("signature", "mac"):
        verifier, creds = credentials(mode=mode)
        out[f"client_proof_{mode}_us"] = _time_us(lambda: creds.meta("transfer", ARGS))
        metas = [creds.meta("transfer", ARGS) for _ in range(2001)]
        out[f"server_read_credentials_us"] = _time_us(lambda: read_credentials(metas[0], verifier))
        invocation = Invocation("transfer", ARGS, "bank-mcp")
        entries = iter(m["dev.capkit/credentials"] for m in metas)
        first = next(entries)
        assert verifier.authorize(first["token"], invocation, first["proof"])
        out[f"server_authorize_{mode}_us"] = _time_us(
            lambda: verifier.authorize((e := next(entries))["token"], invocation, e["proof"]))
    return out


def _overheads(samples: "dict[str, list[int]]", prefix: str = "") -> dict:
    bare = statistics.median(samples["bare"]) / 1000
    out = {f"{prefix}bare_us": round(bare, 1)}
    for mode in ("signature", "mac"):
        us = statistics.median(samples[mode]) / 1000
        out[f"{prefix}{mode}_us"] = round(us, 1)
        out[f"{prefix}{mode}_overhead"] = round(us / bare - 1, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    memory = anyio.run(measure, args.iterations, 100)
    stdio = anyio.run(measure_stdio, max(200, args.iterations // 3), 50)
    result = {
        "benchmark": "mcp_overhead",
        "transport": "in-memory and stdio (official MCP SDK Client and MCPServer)",
        "token": "holder-bound, 2 delegations, fresh proof per call",
        "iterations": args.iterations,
        **_overheads(memory),
        **_overheads(stdio, "stdio_"),
        "breakdown": breakdown(),
        "goals": {"memory_overhead_at_most": GOAL, "stdio_overhead_at_most": GOAL_STDIO},
        "python": platform.python_version(),
    }
    pieces = result["breakdown"]
    for mode in ("signature", "mac"):
        measured = round(result[f"{mode}_us"] - result["bare_us"], 1)
        parts = round(pieces[f"client_proof_{mode}_us"] + pieces["server_read_credentials_us"]
                      + pieces["server_transform_check_us"] + pieces[f"server_authorize_{mode}_us"], 1)
        pieces[f"{mode}_added_us"] = measured
        pieces[f"{mode}_pieces_us"] = parts
        pieces[f"{mode}_unattributed_us"] = round(measured - parts, 1)  # the SDK's middleware path and glue
    fastest = min(result["signature_overhead"], result["mac_overhead"])
    result["goals_met"] = {"memory": fastest <= GOAL,
                           "stdio": min(result["stdio_signature_overhead"], result["stdio_mac_overhead"]) <= GOAL_STDIO}
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
