"""Agent frameworks without a model: the OpenAI Agents SDK's scripted model, and LangChain tools invoked directly."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("agents")
pytest.importorskip("langchain_core")

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from agents.mcp import MCPServerStdio  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402
from langchain_core.tools import tool as langchain_tool  # noqa: E402

from capkit import CapkitError  # noqa: E402
from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.langchain import CapkitTool  # noqa: E402
from capkit.integrations.openai_agents import (  # noqa: E402
    capkit_function_tool,
    capkit_tool_input_guardrail,
    capkit_tool_meta_resolver,
)

from .integration_kit import KEYRING, RENT, THIEF, rent_credentials, verifier  # noqa: E402

set_tracing_disabled(True)
ROOT = Path(__file__).resolve().parent.parent


def outputs(result) -> list[str]:
    return [json.dumps(item.output) if not isinstance(item.output, str) else item.output
            for item in result.new_items if item.type == "tool_call_output_item"]


def model_saw(model: ScriptedModel) -> str:
    return json.dumps([repr(call) for call in model.calls], default=str)


# ------------------------------------------------------- OpenAI Agents SDK


def make_transfer(ran):
    def transfer(recipient: str, amount: float, currency: str) -> str:
        """Send money from the checking account."""
        if amount == 13:
            raise RuntimeError("the bank is down")
        ran.append((recipient, amount))
        return f"sent {amount} {currency} to {recipient}"

    return transfer


def test_function_tool_wrapper_keeps_the_schema_and_authorizes_every_call():
    ran: list = []
    v = verifier()
    plain = function_tool(make_transfer([]))
    wrapped = capkit_function_tool(make_transfer(ran), v, tool="transfer")
    assert wrapped.name == plain.name and wrapped.params_json_schema == plain.params_json_schema
    assert wrapped.description == plain.description
    credentials = rent_credentials(audience=None)
    model = ScriptedModel([
        [function_call("transfer", RENT, call_id="c1")],
        [function_call("transfer", {**RENT, "recipient": "mallory", "amount": 5000}, call_id="c2")],
        [function_call("transfer", {**RENT, "amount": 13}, call_id="c3")],
        [function_call("transfer", {**RENT, "amount": 737}, call_id="c4")],
        [function_call("transfer", {**RENT, "amount": 1}, call_id="c5")],
        [assistant_message("done")],
    ])
    agent = Agent(name="payer", model=model, tools=[wrapped])
    result = asyncio.run(Runner.run(agent, "pay the rent", context=credentials, max_turns=10))
    out = outputs(result)
    assert out[0] == "sent 1250.0 USD to landlord"
    assert out[1].startswith("capkit denied this call: recipient 'mallory' is not one of 'landlord'")
    assert "the bank is down" in out[2] or "error" in out[2].lower()
    assert out[3] == "sent 737.0 USD to landlord"  # 1,250 + 13 + 737: a failed call's spend is not given back
    assert "exceeds the budget" in out[4]
    assert ran == [("landlord", 1250.0), ("landlord", 737.0)]
    assert credentials.token_text not in model_saw(model)  # the model never saw the token


def test_a_stolen_token_in_the_run_context_is_refused():
    credentials = rent_credentials(audience=None)
    model = ScriptedModel([[function_call("transfer", RENT, call_id="c1")], [assistant_message("done")]])
    agent = Agent(name="thief", model=model, tools=[capkit_function_tool(make_transfer([]), verifier(),
                                                                           tool="transfer")])
    result = asyncio.run(Runner.run(agent, "pay", context={"capkit": Credentials(credentials.token, THIEF)}))
    assert "is held by agent" in outputs(result)[0]


def test_missing_credentials_are_an_error_not_an_allow():
    model = ScriptedModel([[function_call("transfer", RENT, call_id="c1")], [assistant_message("done")]])
    ran: list = []
    agent = Agent(name="payer", model=model, tools=[capkit_function_tool(make_transfer(ran), verifier(),
                                                                           tool="transfer")])
    result = asyncio.run(Runner.run(agent, "pay", context=None))
    assert ran == [] and "error" in outputs(result)[0].lower()  # a configuration error, never an allow


def test_tool_input_guardrail_rejects_with_reasons():
    ran: list = []
    guarded = function_tool(make_transfer(ran), tool_input_guardrails=[capkit_tool_input_guardrail(verifier())])
    credentials = rent_credentials(audience=None)
    model = ScriptedModel([
        [function_call("transfer", RENT, call_id="c1")],
        [function_call("transfer", {**RENT, "amount": 9999}, call_id="c2")],
        [assistant_message("done")],
    ])
    result = asyncio.run(Runner.run(Agent(name="payer", model=model, tools=[guarded]), "pay", context=credentials))
    out = outputs(result)
    assert out[0] == "sent 1250.0 USD to landlord"
    assert "amount 9999 exceeds max 1250" in out[1]
    assert ran == [("landlord", 1250.0)]


def test_tool_input_guardrail_refuses_ambiguous_arguments():
    # A model (steered by an injection) repeats a key: the guardrail must not judge one value while the
    # SDK hands the tool the other.
    ran: list = []
    guarded = function_tool(make_transfer(ran), tool_input_guardrails=[capkit_tool_input_guardrail(verifier())])
    twice = '{"recipient": "landlord", "amount": 1, "amount": 9999, "currency": "USD"}'
    nan = '{"recipient": "landlord", "amount": NaN, "currency": "USD"}'
    model = ScriptedModel([[function_call("transfer", twice, call_id="c1")],
                           [function_call("transfer", nan, call_id="c2")], [assistant_message("done")]])
    result = asyncio.run(Runner.run(Agent(name="payer", model=model, tools=[guarded]), "pay",
                                    context=rent_credentials(audience=None)))
    assert all("not one unambiguous JSON object" in out for out in outputs(result))
    assert ran == []


def test_mcp_tool_meta_resolver_against_the_protected_mcp_bank(tmp_path):
    KEYRING.save(tmp_path / "keys.json")
    credentials = rent_credentials()

    async def main():
        server = MCPServerStdio(
            {"command": sys.executable, "args": [str(ROOT / "examples/mcp_bank/bank_server.py")],
             "env": {"CAPKIT_HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}},
            tool_meta_resolver=capkit_tool_meta_resolver(), cache_tools_list=True)
        model = ScriptedModel([
            [function_call("transfer", RENT, call_id="c1")],
            [function_call("transfer", {**RENT, "recipient": "attacker-llc"}, call_id="c2")],
            [assistant_message("done")],
        ])
        async with server:
            agent = Agent(name="payer", model=model, mcp_servers=[server])
            result = await Runner.run(agent, "pay the rent", context=credentials)
        return outputs(result), model

    out, model = asyncio.run(main())
    assert "sent 1250.0 USD to landlord" in out[0]
    assert "recipient 'attacker-llc' is not one of 'landlord'" in out[1]
    assert credentials.token_text not in model_saw(model)


# ----------------------------------------------------------------- LangChain


@langchain_tool
def lc_transfer(recipient: str, amount: float, currency: str) -> str:
    """Send money from the checking account."""
    if amount == 13:
        raise RuntimeError("the bank is down")
    return f"sent {amount} {currency} to {recipient}"


def test_langchain_wrapper_keeps_name_and_schema():
    safe = CapkitTool.wrap(lc_transfer, verifier(), tool="transfer")
    assert safe.name == lc_transfer.name and safe.description == lc_transfer.description
    assert safe.args == lc_transfer.args


def test_langchain_wrapper_authorizes_from_config():
    safe = CapkitTool.wrap(lc_transfer, verifier(), tool="transfer")
    config = {"configurable": {"capkit": rent_credentials(audience=None)}}
    assert safe.invoke(RENT, config=config) == "sent 1250.0 USD to landlord"
    denied = safe.invoke({**RENT, "recipient": "mallory"}, config=config)
    assert denied.startswith("capkit denied this call: recipient 'mallory'")
    with pytest.raises(RuntimeError):
        safe.invoke({**RENT, "amount": 13}, config=config)
    assert "exceeds the budget" in safe.invoke({**RENT, "amount": 750}, config=config)  # the 13 stays spent
    assert asyncio.run(safe.ainvoke({**RENT, "amount": 737}, config=config)) == "sent 737.0 USD to landlord"
    assert "exceeds the budget" in safe.invoke({**RENT, "amount": 1}, config=config)
    with pytest.raises(CapkitError, match="no capkit credentials"):
        safe.invoke(RENT)
