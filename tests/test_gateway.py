"""``capkit gateway`` (issue 14) in front of the official MCP servers from the npm registry
(@modelcontextprotocol/server-filesystem, server-everything), with the official SDK's client and the
official Inspector (CLI mode) as unmodified hosts, over stdio and over streamable HTTP.

The peers are installed by .ci/run into peers/node_modules at the versions pinned in peers/package-lock.json
(with Node.js 22 for the Inspector). Without them these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from capkit import AgentKey, Keyring, mint  # noqa: E402
from capkit.caveats import CallLimit, Eq, Holder, PathUnder, Tools  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "peers" / "node_modules" / ".bin"
CAPKIT = str(Path(sys.executable).with_name("capkit"))


def peer(name: str) -> str:
    path = PEERS / name
    if not path.exists():
        message = f"{path} is missing (install the MCP peers: npm ci --prefix peers)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires them", pytrace=False)
        pytest.skip(message)
    return str(path)


def env() -> dict[str, str]:
    return {"PATH": f"{PEERS}:{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root")}


@pytest.fixture
def setup(tmp_path):
    """A capkit home with a keyring, an agent key, a folder to grant and one outside it."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    keyring = Keyring.generate()
    keyring.save(home / "keys.json")
    agent = AgentKey.generate()
    agent.save(tmp_path / "agent.key")
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "notes.txt").write_text("the granted notes\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("do not read\n")

    def token(*caveats, name="fs.token") -> str:
        text = mint(keyring, Holder(agent.public_key), *caveats, location="files").serialize()
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    return {"home": home, "tmp": tmp_path, "granted": granted, "secret": secret, "token": token,
            "key": str(tmp_path / "agent.key")}


def gateway_args(setup, token_file: str, *upstream: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["gateway", "--home", str(setup["home"]), "--token", "@" + token_file, "--key", setup["key"], *extra,
            *(("--",) + upstream if upstream and not upstream[0].startswith("--upstream") else upstream)]


def read_only(setup, **more):
    return setup["token"](Tools("read_text_file", "list_directory"), PathUnder("path", str(setup["granted"])),
                          **more)


async def _session(args: list[str], work):
    params = StdioServerParameters(command=CAPKIT, args=args, env=env())
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            with anyio.fail_after(60):
                await session.initialize()
                return await work(session)


def host(args: list[str], work):
    """Run ``work(session)`` with the official SDK's client as the host, over stdio, against the gateway."""
    return anyio.run(lambda: _session(args, work))


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


# ------------------------------------------------------------------- filesystem


def test_granted_reads_pass_and_the_listing_shows_only_granted_tools(setup):
    fs = peer("mcp-server-filesystem")
    args = gateway_args(setup, read_only(setup), fs, str(setup["granted"]))

    async def work(session):
        tools = await session.list_tools()
        read = await session.call_tool("read_text_file", {"path": str(setup["granted"] / "notes.txt")})
        listed = await session.call_tool("list_directory", {"path": str(setup["granted"])})
        return tools, read, listed

    tools, read, listed = host(args, work)
    assert sorted(t.name for t in tools.tools) == ["list_directory", "read_text_file"]
    assert not read.is_error and text_of(read) == "the granted notes\n"
    assert not listed.is_error and "notes.txt" in text_of(listed)


def test_reads_outside_traversal_and_ungranted_writes_are_denied_with_no_effect(setup):
    fs = peer("mcp-server-filesystem")
    # the server itself may serve both folders: capkit's token is narrower than the server's configuration
    args = gateway_args(setup, read_only(setup), fs, str(setup["granted"]), str(setup["secret"]))
    target = setup["granted"] / "planted.txt"

    async def work(session):
        return [
            await session.call_tool("read_text_file", {"path": str(setup["secret"] / "key.txt")}),
            await session.call_tool("read_text_file", {"path": f"{setup['granted']}/../secret/key.txt"}),
            await session.call_tool("write_file", {"path": str(target), "content": "owned"}),
            await session.call_tool("edit_file", {"path": str(setup["granted"] / "notes.txt"),
                                                  "edits": [{"oldText": "granted", "newText": "stolen"}]}),
        ]

    outside, traversal, write, edit = host(args, work)
    for result in (outside, traversal, write, edit):
        assert result.is_error and text_of(result).startswith("capkit denied this call")
        assert "do not read" not in text_of(result)
    assert result.meta["dev.capkit/decision"]["reasons"][0]["code"] == "tool_not_granted"
    assert "not under" in text_of(outside) and ".." in text_of(traversal)
    assert not target.exists() and (setup["granted"] / "notes.txt").read_text() == "the granted notes\n"


def test_call_limits_hold_across_calls_and_gateway_restarts(setup):
    fs = peer("mcp-server-filesystem")
    token = setup["token"](Tools("read_text_file"), CallLimit(3))
    args = gateway_args(setup, token, fs, str(setup["granted"]))
    path = str(setup["granted"] / "notes.txt")

    async def two(session):
        return [await session.call_tool("read_text_file", {"path": path}) for _ in range(2)]

    first = host(args, two)  # the state lives in the home's SQLite store: a new gateway sees it
    second = host(args, two)
    assert [r.is_error for r in first + second] == [False, False, False, True]
    assert second[1].meta["dev.capkit/decision"]["reasons"][0]["code"] == "calls_exceeded"


def test_arguments_of_another_type_than_the_servers_schema_are_refused(setup):
    fs = peer("mcp-server-filesystem")
    args = gateway_args(setup, setup["token"](Tools("read_text_file")), fs, str(setup["granted"]))
    path = str(setup["granted"] / "notes.txt")

    async def work(session):
        outcomes = []
        for arguments in ({"path": path, "head": "1"}, {"path": [path]}):
            try:
                await session.call_tool("read_text_file", arguments)
                outcomes.append("answered")
            except MCPError as exc:
                outcomes.append(exc.error.message)
        return outcomes

    outcomes = host(args, work)
    assert all("capkit refuses this call" in o for o in outcomes), outcomes


def test_a_gateway_whose_store_goes_down_denies(setup):
    import secrets

    from .backends import require_server
    from .tcp import Proxy

    fs = peer("mcp-server-filesystem")
    redis_url = require_server("redis")
    proxy = Proxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    store = f"redis://127.0.0.1:{proxy.port}/0?prefix=capkit-test-gw-{secrets.token_hex(4)}"
    args = gateway_args(setup, read_only(setup), fs, str(setup["granted"]), extra=("--store", store))
    path = str(setup["granted"] / "notes.txt")

    async def work(session):
        before = await session.call_tool("read_text_file", {"path": path})
        proxy.stop()  # the store goes away mid-session
        after = await session.call_tool("read_text_file", {"path": path})
        return before, after

    before, after = host(args, work)
    assert not before.is_error
    assert after.is_error and after.meta["dev.capkit/decision"]["reasons"][0]["code"] == "state_unavailable"
    # a store that is down when the gateway starts: the gateway does not start (an error, never an allow)
    down = subprocess.run([CAPKIT, *gateway_args(setup, read_only(setup), fs, str(setup["granted"]),
                                                 extra=("--store", "redis://127.0.0.1:1/0"))],
                          capture_output=True, text=True, timeout=60, env=env(), stdin=subprocess.DEVNULL)
    assert down.returncode == 2 and "cannot connect to the Redis store" in down.stderr


_CRASHING_SERVER = """
import os
from mcp.server.mcpserver import MCPServer
server = MCPServer("crashes")
@server.tool()
def pay(amount: int) -> str:
    os._exit(3)  # dies mid-call: did the payment happen? nobody knows
server.run()
"""


def test_an_upstream_that_dies_mid_call_gives_an_error_and_keeps_the_spend(setup):
    (setup["tmp"] / "crash.py").write_text(_CRASHING_SERVER)
    token = setup["token"](Tools("pay"), CallLimit(1))
    args = gateway_args(setup, token, sys.executable, str(setup["tmp"] / "crash.py"))

    async def call(session):
        try:
            return await session.call_tool("pay", {"amount": 5})
        except MCPError as exc:
            return exc.error

    error = host(args, call)
    assert "ended before answering" in error.message  # an error, never an allow
    denied = host(args, call)  # the outcome was unknown: the attempt counts
    assert getattr(denied, "is_error", False) and \
        denied.meta["dev.capkit/decision"]["reasons"][0]["code"] == "calls_exceeded"


# --------------------------------------------------------------- the Inspector


def inspector(setup, gateway: list[str], *method: str) -> dict:
    command = [peer("mcp-inspector"), "--cli", CAPKIT, *gateway, *method]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env())
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def test_the_official_inspector_is_an_unmodified_host(setup):
    fs = peer("mcp-server-filesystem")
    gateway = gateway_args(setup, read_only(setup), fs, str(setup["granted"]))
    listed = inspector(setup, gateway, "--method", "tools/list")
    assert sorted(t["name"] for t in listed["tools"]) == ["list_directory", "read_text_file"]
    read = inspector(setup, gateway, "--method", "tools/call", "--tool-name", "read_text_file",
                     "--tool-arg", f"path={setup['granted'] / 'notes.txt'}")
    assert not read.get("isError") and read["content"][0]["text"] == "the granted notes\n"
    denied = inspector(setup, gateway, "--method", "tools/call", "--tool-name", "read_text_file",
                       "--tool-arg", f"path={setup['secret'] / 'key.txt'}")
    assert denied["isError"] and denied["_meta"]["dev.capkit/decision"]["reasons"][0]["code"] == "arg_not_allowed"


# ------------------------------------------------------------ over streamable HTTP


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_upstream_over_streamable_http(setup):
    everything = peer("mcp-server-everything")
    port = _free_port()
    server = subprocess.Popen([everything, "streamableHttp"], env={**env(), "PORT": str(port)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        token = setup["token"](Tools("echo", "get-sum"), Eq("message", "hello", tool="echo"))
        gateway = ["gateway", "--home", str(setup["home"]), "--token", "@" + token, "--key", setup["key"],
                   "--upstream", f"http://127.0.0.1:{port}/mcp"]
        listed = inspector(setup, gateway, "--method", "tools/list")
        assert sorted(t["name"] for t in listed["tools"]) == ["echo", "get-sum"]
        echoed = inspector(setup, gateway, "--method", "tools/call", "--tool-name", "echo",
                           "--tool-arg", "message=hello")
        assert not echoed.get("isError") and "hello" in echoed["content"][0]["text"]
        refused = inspector(setup, gateway, "--method", "tools/call", "--tool-name", "echo",
                            "--tool-arg", "message=goodbye")
        assert refused["isError"] and "must be 'hello'" in refused["content"][0]["text"]
    finally:
        server.terminate()
        server.wait(10)


def test_print_config_is_a_block_a_host_can_paste(setup):
    token = read_only(setup)
    result = subprocess.run([CAPKIT, "gateway", "--home", str(setup["home"]), "--token", "@" + token,
                             "--key", setup["key"], "--print-config", "files", "--",
                             "npx", "-y", "@modelcontextprotocol/server-filesystem", str(setup["granted"])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    block = json.loads(result.stdout)["mcpServers"]["files"]
    assert block["command"].endswith("capkit") and block["env"] == {"CAPKIT_HOME": str(setup["home"].resolve())}
    assert block["args"][:3] == ["gateway", "--token", "@" + str(Path(token).resolve())]
    assert block["args"][-4:] == ["npx", "-y", "@modelcontextprotocol/server-filesystem", str(setup["granted"])]
    assert open(token).read() not in result.stdout  # the token's file, never the token
    bare = subprocess.run([CAPKIT, "gateway", "--token", open(token).read(), "--print-config", "x", "--", "srv"],
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "@FILE" in bare.stderr


# ------------------------------------------------- hosts over streamable HTTP (--listen)


class listening:
    """``capkit gateway --listen`` on a free loopback port, as a child process; the URL while it runs."""

    def __init__(self, setup, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.command = [CAPKIT, "gateway", "--home", str(setup["home"]), "--listen", self.url, *args]

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.command, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the gateway exited: {self.process.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.url
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the gateway did not start listening")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def inspector_http(url: str, *method: str, headers: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [peer("mcp-inspector"), "--cli", url, "--transport", "http",
               *[x for h in headers for x in ("--header", h)], *method]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env())


def test_the_inspector_over_http_through_a_gateway_holding_the_token(setup):
    fs = peer("mcp-server-filesystem")
    token = read_only(setup)
    with listening(setup, "--token", "@" + token, "--key", setup["key"], "--", fs, str(setup["granted"])) as url:
        listed = json.loads(inspector_http(url, "--method", "tools/list").stdout)
        assert sorted(t["name"] for t in listed["tools"]) == ["list_directory", "read_text_file"]
        read = json.loads(inspector_http(url, "--method", "tools/call", "--tool-name", "read_text_file",
                                         "--tool-arg", f"path={setup['granted'] / 'notes.txt'}").stdout)
        assert not read.get("isError") and read["content"][0]["text"] == "the granted notes\n"
        denied = json.loads(inspector_http(url, "--method", "tools/call", "--tool-name", "read_text_file",
                                           "--tool-arg", f"path={setup['secret'] / 'key.txt'}").stdout)
        assert denied["isError"] and denied["_meta"]["dev.capkit/decision"]["reasons"][0]["code"] == "arg_not_allowed"


def test_the_inspector_over_http_with_its_own_bearer_token_in_a_header(setup):
    fs = peer("mcp-server-filesystem")
    keyring = Keyring.load(setup["home"] / "keys.json")
    bearer = mint(keyring, Tools("read_text_file"), PathUnder("path", str(setup["granted"])), location="files")
    header = f"Authorization: Capkit {bearer.serialize()}"
    with listening(setup, "--location", "files", "--allow-bearer", "--", fs, str(setup["granted"])) as url:
        read = json.loads(inspector_http(url, "--method", "tools/call", "--tool-name", "read_text_file",
                                         "--tool-arg", f"path={setup['granted'] / 'notes.txt'}",
                                         headers=(header,)).stdout)
        assert not read.get("isError") and read["content"][0]["text"] == "the granted notes\n"
        denied = json.loads(inspector_http(url, "--method", "tools/call", "--tool-name", "read_text_file",
                                           "--tool-arg", f"path={setup['secret'] / 'key.txt'}",
                                           headers=(header,)).stdout)
        assert denied["isError"] and "is not under" in denied["content"][0]["text"]
        anonymous = inspector_http(url, "--method", "tools/call", "--tool-name", "read_text_file",
                                   "--tool-arg", f"path={setup['granted'] / 'notes.txt'}")
        # no session without a token that verifies: the gateway answers 401 (WWW-Authenticate: Capkit), which
        # the Inspector reports as authentication required
        assert "auth_required" in anonymous.stdout + anonymous.stderr
        assert "the granted notes" not in anonymous.stdout


def _sdk_over_http(url: str, credentials, work):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from capkit.integrations.mcp_http import CapkitHttpAuth

    async def run():
        async with httpx2.AsyncClient(auth=CapkitHttpAuth(credentials), timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    with anyio.fail_after(60):
                        await session.initialize()
                        return await work(session)

    return anyio.run(run)


def test_each_http_client_signs_its_own_calls_and_sessions_share_the_budget(setup):
    from capkit.integrations import Credentials
    from capkit.integrations.mcp import call_tool

    fs = peer("mcp-server-filesystem")
    agent = AgentKey.load(setup["key"])
    token = open(setup["token"](Tools("read_text_file", "list_directory"), PathUnder("path", str(setup["granted"])),
                                CallLimit(2, tool="read_text_file"))).read()
    credentials = Credentials(token, agent)
    notes = str(setup["granted"] / "notes.txt")
    with listening(setup, "--location", "files", "--", fs, str(setup["granted"])) as url:
        async def first(session):
            listed = await session.list_tools()  # a listing carries its own proof, in the headers
            read = await session.call_tool("read_text_file", {"path": notes})
            outside = await session.call_tool("read_text_file", {"path": str(setup["secret"] / "key.txt")})
            both = None
            try:  # credentials in the headers and in _meta: which were meant cannot be told
                await call_tool(session, "read_text_file", {"path": notes}, credentials)
            except MCPError as exc:
                both = exc.error.message
            return sorted(t.name for t in listed.tools), read, outside, both

        names, read, outside, both = _sdk_over_http(url, credentials, first)
        assert names == ["list_directory", "read_text_file"]
        assert not read.is_error and text_of(read) == "the granted notes\n"
        assert outside.is_error and outside.meta["dev.capkit/decision"]["reasons"][0]["code"] == "arg_not_allowed"
        assert both is not None and "send them one way" in both

        async def second(session):  # another session, its own upstream process, the same store
            return [await session.call_tool("read_text_file", {"path": notes}) for _ in range(2)]

        again, over = _sdk_over_http(url, credentials, second)
        assert not again.is_error
        assert over.is_error and over.meta["dev.capkit/decision"]["reasons"][0]["code"] == "calls_exceeded"
        # another agent's key cannot use the token: each proof is checked against the token's holder
        stranger = Credentials(token, AgentKey.generate())
        stolen = _sdk_over_http(url, stranger, lambda s: s.call_tool("read_text_file", {"path": notes}))
        assert stolen.is_error and stolen.meta["dev.capkit/decision"]["reasons"][0]["code"] == "wrong_holder"


def test_a_listener_refuses_ambiguous_headers_and_other_hosts(setup):
    import httpx2

    fs = peer("mcp-server-filesystem")
    token = open(read_only(setup)).read()
    accept = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with listening(setup, "--location", "files", "--", fs, str(setup["granted"])) as url:
        with httpx2.Client(timeout=30) as http:
            hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            opened = http.post(url, json=hello, headers={**accept, "authorization": f"Capkit {token}"})
            assert opened.status_code == 200, opened.text
            session = {**accept, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
            http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
            twice = http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                              headers=[*session.items(), ("authorization", f"Capkit {token}"),
                                       ("authorization", "Capkit other")])
            assert "more than one authorization header" in twice.text and "read_text_file" not in twice.text
            rebound = http.post(url, json=hello, headers={**accept, "authorization": f"Capkit {token}",
                                                          "host": f"evil.example:{url.split(':')[2][:-4]}"})
            assert rebound.status_code in (400, 403, 421) and "mcp-session-id" not in rebound.headers
            foreign = http.post(url, json=hello, headers={**accept, "authorization": f"Capkit {token}",
                                                          "origin": "http://evil.example"})  # a web page elsewhere
            assert foreign.status_code in (400, 403) and "mcp-session-id" not in foreign.headers
            unknown = http.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                headers={**session, "mcp-session-id": "no-such-session"})
            assert unknown.status_code == 404


def test_no_session_and_no_upstream_for_a_client_without_a_token_that_verifies(setup):
    import httpx2

    fs = peer("mcp-server-filesystem")
    started = setup["tmp"] / "started"
    upstream = ("/bin/sh", "-c", f'echo started >> "{started}"; exec "$0" "$@"', fs, str(setup["granted"]))
    foreign = mint(Keyring.generate(), Tools("read_text_file"), location="files").serialize()
    accept = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    with listening(setup, "--location", "files", "--", *upstream) as url:
        with httpx2.Client(timeout=30) as http:
            for headers, fragment in (({}, "open a session with your token"),
                                      ({"authorization": f"Capkit {foreign}"}, "does not verify here"),
                                      ({"authorization": "Capkit not-a-token"}, "does not verify here")):
                knocked = http.post(url, json=hello, headers={**accept, **headers})
                assert knocked.status_code == 401 and fragment in knocked.text, knocked.text
                assert "mcp-session-id" not in knocked.headers
            assert not started.exists()  # nothing was started for them
            token = open(read_only(setup)).read()
            opened = http.post(url, json=hello, headers={**accept, "authorization": f"Capkit {token}"})
            assert opened.status_code == 200 and started.read_text() == "started\n"


@pytest.mark.parametrize("args, fragment", [
    (("--listen", "http://0.0.0.0:8931/mcp", "--token", "@TOKEN"), "lends it to every client"),
    (("--listen", "ftp://127.0.0.1:8931/mcp", "--location", "files"), "--listen takes http://HOST:PORT/PATH"),
    (("--listen", "http://127.0.0.1/mcp", "--location", "files"), "--listen takes http://HOST:PORT/PATH"),
    (("--listen", "http://127.0.0.1:8931/mcp",), "give --location"),
    ((), "give --token"),
])
def test_listen_refuses_what_it_cannot_do_safely(setup, args, fragment):
    token = read_only(setup)
    args = tuple(a.replace("@TOKEN", "@" + token) for a in args)
    result = subprocess.run([CAPKIT, "gateway", "--home", str(setup["home"]), "--key", setup["key"], *args, "--",
                             "true"], capture_output=True, text=True, timeout=60, env=env(), stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


# ------------------------------------------------------ approvals in the host's own UI (elicitation)


_LEDGER_SERVER = """
import sys
from mcp.server.mcpserver import MCPServer
server = MCPServer("bank")
@server.tool()
def pay(recipient: str, amount: int) -> str:
    with open(sys.argv[1], "a") as ledger:
        ledger.write(f"{recipient} {amount}\\n")
    return f"paid {amount} to {recipient}"
server.run()
"""


def _with_elicitation(args: list[str], answers: list, calls: list[dict]):
    """Make ``calls`` through the gateway with the SDK client as a host whose user answers each approval
    question with the next of ``answers`` (a dict: accept with that content; a string: that action)."""
    import mcp.types as types

    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        answer = answers.pop(0)
        if isinstance(answer, dict):
            return types.ElicitResult(action="accept", content=answer)
        return types.ElicitResult(action=answer)

    async def run():
        params = StdioServerParameters(command=CAPKIT, args=args, env=env())
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, elicitation_callback=elicit) as session:
                with anyio.fail_after(60):
                    await session.initialize()
                    return [await session.call_tool("pay", c) for c in calls]

    return anyio.run(run), asked


def test_a_call_that_needs_approval_is_put_to_the_person_in_the_host(setup):
    from capkit.caveats import Approval

    approver = AgentKey.generate()
    approver.save(setup["tmp"] / "alice.key")
    ledger = setup["tmp"] / "ledger.txt"
    (setup["tmp"] / "bank.py").write_text(_LEDGER_SERVER)
    token = setup["token"](Tools("pay"), Approval(approver.public_key, arg="amount", above=100))
    args = gateway_args(setup, token, sys.executable, str(setup["tmp"] / "bank.py"), str(ledger),
                        extra=("--approver-key", str(setup["tmp"] / "alice.key")))
    results, asked = _with_elicitation(args, [{"approve": True}, {"approve": False}, "decline"], [
        {"recipient": "plumber", "amount": 80},     # routine: no question
        {"recipient": "landlord", "amount": 1250},  # asked, approved: runs once
        {"recipient": "landlord", "amount": 1250},  # asked again (an approval is for one call), refused
        {"recipient": "mallory", "amount": 5000},   # asked, declined
    ])
    assert [r.is_error for r in results] == [False, False, True, True]
    assert ledger.read_text() == "plumber 80\nlandlord 1250\n"
    assert len(asked) == 3 and '"amount": 1250' in asked[0] and "pay" in asked[0] and '"mallory"' in asked[2]
    assert "the person declined the approval" in text_of(results[2])
    assert results[3].meta["dev.capkit/decision"]["reasons"][0]["code"] == "approval_required"


def test_without_elicitation_or_the_approvers_key_the_denial_stands(setup):
    from capkit.caveats import Approval

    approver, other = AgentKey.generate(), AgentKey.generate()
    other.save(setup["tmp"] / "other.key")
    ledger = setup["tmp"] / "ledger.txt"
    (setup["tmp"] / "bank.py").write_text(_LEDGER_SERVER)
    token = setup["token"](Tools("pay"), Approval(approver.public_key))
    upstream = (sys.executable, str(setup["tmp"] / "bank.py"), str(ledger))
    # a host without elicitation: the call is denied with the approval request, as without --approver-key
    plain = gateway_args(setup, token, *upstream, extra=("--approver-key", str(setup["tmp"] / "other.key")))
    denied = host(plain, lambda s: s.call_tool("pay", {"recipient": "landlord", "amount": 5}))
    assert denied.is_error and "dev.capkit/approval" in denied.meta
    # a host with elicitation, but the gateway holds another approver's key: nobody is asked
    results, asked = _with_elicitation(plain, [{"approve": True}], [{"recipient": "landlord", "amount": 5}])
    assert results[0].is_error and asked == [] and not ledger.exists()
    result = subprocess.run([CAPKIT, "gateway", "--home", str(setup["home"]), "--listen", "http://127.0.0.1:1/mcp",
                             "--location", "files", "--approver-key", str(setup["tmp"] / "other.key"), "--", "true"],
                            capture_output=True, text=True, timeout=60, env=env(), stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "--approver-key needs --token" in result.stderr
