#!/usr/bin/env python3
"""Benchmark: a tools/call through ``capkit gateway`` against the filesystem server directly, over stdio.

The official MCP SDK client calls ``read_text_file`` on the official
@modelcontextprotocol/server-filesystem (from peers/node_modules: npm ci --prefix
peers), once directly and once through the gateway (a holder-bound token with
a path caveat and a call limit; the gateway signs each call's proof and
verifies it; state in SQLite, as the CLI's default). Both sessions run side by
side and are measured in alternating batches. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from capkit import AgentKey, Keyring, mint
from capkit.caveats import CallLimit, Holder, PathUnder, Tools

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "peers" / "node_modules" / ".bin"
GOAL_ADDED_MS = 1.0
GOAL_ADDED_PCT = 25.0


async def measure(directory: Path, iterations: int, batch: int = 50) -> dict:
    home = directory / "home"
    home.mkdir(mode=0o700)
    keyring = Keyring.generate()
    keyring.save(home / "keys.json")
    agent = AgentKey.generate()
    agent.save(directory / "agent.key")
    files = directory / "files"
    files.mkdir()
    (files / "notes.txt").write_text("x" * 1000)
    token = mint(keyring, Holder(agent.public_key), Tools("read_text_file"), PathUnder("path", str(files)),
                 CallLimit(10 * iterations + 100), location="files")
    (directory / "fs.token").write_text(token.serialize())
    env = {"PATH": f"{PEERS}:{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    server = [str(PEERS / "mcp-server-filesystem"), str(files)]
    direct = StdioServerParameters(command=server[0], args=server[1:], env=env)
    gateway = StdioServerParameters(command=str(Path(sys.executable).with_name("capkit")), env=env, args=[
        "gateway", "--home", str(home), "--token", "@" + str(directory / "fs.token"),
        "--key", str(directory / "agent.key"), "--", *server])
    arguments = {"path": str(files / "notes.txt")}
    samples: dict[str, list[float]] = {"direct": [], "gateway": []}
    async with stdio_client(direct) as (r1, w1), stdio_client(gateway) as (r2, w2):
        async with ClientSession(r1, w1) as plain, ClientSession(r2, w2) as guarded:
            await plain.initialize()
            await guarded.initialize()
            sessions = {"direct": plain, "gateway": guarded}
            for session in sessions.values():  # warm up: schemas, caches, the JIT
                for _ in range(20):
                    result = await session.call_tool("read_text_file", arguments)
                    assert not result.is_error, result
            done = 0
            while done < iterations:
                for name, session in sessions.items():
                    for _ in range(batch):
                        start = time.perf_counter()
                        await session.call_tool("read_text_file", arguments)
                        samples[name].append(time.perf_counter() - start)
                done += batch
    direct_ms = statistics.median(samples["direct"]) * 1000
    gateway_ms = statistics.median(samples["gateway"]) * 1000
    return {"direct_ms": round(direct_ms, 3), "gateway_ms": round(gateway_ms, 3),
            "added_ms": round(gateway_ms - direct_ms, 3),
            "added_pct": round(100 * (gateway_ms - direct_ms) / direct_ms, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    if not (PEERS / "mcp-server-filesystem").exists():
        sys.exit("bench/gateway.py needs the MCP peers: (cd peers && npm ci)")
    with tempfile.TemporaryDirectory(prefix="capkit-bench-gateway-") as tmp:
        result: dict = {"benchmark": "gateway", "iterations": args.iterations, "transport": "stdio",
                        "upstream": "@modelcontextprotocol/server-filesystem read_text_file (1 kB)"}
        result.update(anyio.run(measure, Path(tmp), args.iterations))
    result["goals"] = {"added_ms_at_most": GOAL_ADDED_MS, "added_pct_at_most": GOAL_ADDED_PCT}
    result["goals_met"] = {"added_ms": result["added_ms"] <= GOAL_ADDED_MS,
                           "added_pct": result["added_pct"] <= GOAL_ADDED_PCT}
    result["python"] = platform.python_version()
    result["machine"] = platform.machine()
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
