"""OpenAI Agents SDK (``openai-agents``): capkit at the tool boundary of an agent run.

The token and agent key live in the run context (``Runner.run(..., context=...)``),
which never reaches the model: pass a ``Credentials``, or any object with a
``capkit`` attribute (or mapping key) holding one.

* ``capkit_function_tool(fn, verifier)`` — a function tool with ``fn``'s name,
  docstring and JSON schema whose every call is authorized first, with the
  arguments ``fn`` is called with (after the SDK's validation); a denial is
  returned to the model as text listing every reason; the spend is committed
  whatever ``fn`` does, unless it raises ``NothingSpent``.
* ``capkit_tool_input_guardrail(verifier)`` — a tool input guardrail for
  existing function tools: a denial rejects the call with the reasons. A
  guardrail sees the model's argument text, not what the tool is called with,
  so it refuses a tool whose schema is not strict and arguments whose JSON
  types differ from the tool's schema (its validation would transform them).
  It cannot see the tool's outcome, so an allowed call's spend is committed at once.
* ``capkit_tool_meta_resolver()`` — for an MCP server's ``tool_meta_resolver``:
  attaches the token and a fresh proof over the exact arguments sent, for a
  server protected by ``capkit.integrations.mcp``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

from agents import FunctionTool, RunContextWrapper, ToolGuardrailFunctionOutput, ToolInputGuardrail, function_tool
from agents.tool_context import ToolContext

from .. import strictjson
from ..core.errors import CapkitError, StrictJSONError
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ._boundary import authorize_async, call_of, denial_text, run_allowed, settle_async
from ._schema import type_problem
from .credentials import Credentials


def credentials_from(context: Any) -> Credentials:
    """The capkit credentials in an agent run's context; raise ``CapkitError`` if there are none."""
    if isinstance(context, Credentials):
        return context
    found = context.get("capkit") if isinstance(context, Mapping) else getattr(context, "capkit", None)
    if not isinstance(found, Credentials):
        raise CapkitError("the run context holds no capkit Credentials (context=Credentials(...) or .capkit)")
    return found


def capkit_function_tool(fn: Callable[..., Any], verifier: Verifier, *, tool: str | None = None,
                         audience: str | None = None, **function_tool_options: Any) -> FunctionTool:
    """A function tool that authorizes every call of ``fn`` (see the module docstring)."""
    signature = inspect.signature(fn)
    capkit_tool = tool or fn.__name__

    async def guarded(ctx: ToolContext[Any], *args: Any, **kwargs: Any) -> Any:
        credentials = credentials_from(ctx.context)
        invocation = call_of(signature, capkit_tool, audience or credentials.audience, args, kwargs)
        token, proof = credentials.present(invocation.tool, dict(invocation.args))
        decision = await authorize_async(verifier, token, invocation, proof, credentials.discharges)
        if not decision.allowed:
            return denial_text(decision)

        async def run() -> Any:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return await run_allowed(verifier, decision, run)

    functools.update_wrapper(guarded, fn)
    context_parameter = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                          annotation=ToolContext[Any])
    guarded.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[context_parameter, *signature.parameters.values()])
    guarded.__annotations__ = {"ctx": ToolContext[Any], **inspect.get_annotations(fn, eval_str=True)}
    return function_tool(guarded, **function_tool_options)


def capkit_tool_input_guardrail(verifier: Verifier, *, audience: str | None = None) -> ToolInputGuardrail[Any]:
    """A tool input guardrail that authorizes function-tool calls (see the module docstring)."""

    async def check(data: Any) -> ToolGuardrailFunctionOutput:
        context = data.context
        credentials = credentials_from(context.context)
        try:  # strict: the SDK parses the same text again for the tool, and must not read it differently
            args = strictjson.loads(context.tool_arguments or "{}")
        except StrictJSONError:
            args = None
        if not isinstance(args, dict):
            return ToolGuardrailFunctionOutput.reject_content(
                "capkit denied this call: the arguments are not one unambiguous JSON object")
        problem = _untransformed(data, context.tool_name, args)
        if problem is not None:
            return ToolGuardrailFunctionOutput.reject_content(f"capkit denied this call: {problem}")
        invocation = Invocation(context.tool_name, args, audience or credentials.audience)
        token, proof = credentials.present(invocation.tool, args)
        decision = await authorize_async(verifier, token, invocation, proof, credentials.discharges)
        if not decision.allowed:
            return ToolGuardrailFunctionOutput.reject_content(denial_text(decision), output_info=decision.to_json())
        await settle_async(verifier, decision, spent=True)
        return ToolGuardrailFunctionOutput.allow(output_info=decision.to_json())

    return ToolInputGuardrail(guardrail_function=check, name="capkit")


def _untransformed(data: Any, tool_name: str, args: dict[str, Any]) -> str | None:
    """Why the tool could receive other values than ``args`` (so the guardrail cannot vouch for them), or None."""
    agent = getattr(data, "agent", None)
    tools = [t for t in getattr(agent, "tools", []) or [] if getattr(t, "name", None) == tool_name]
    if len(tools) != 1 or not isinstance(tools[0], FunctionTool):
        return f"the tool {tool_name} is not one function tool of this agent, so its arguments cannot be checked"
    tool = tools[0]
    if not tool.strict_json_schema:
        return (f"the tool {tool_name} has a non-strict schema, so its validation may change the arguments after "
                "authorization; use strict_json_schema=True or capkit_function_tool")
    return type_problem(args, tool.params_json_schema)


def capkit_tool_meta_resolver() -> Callable[[Any], dict[str, Any]]:
    """An MCP ``tool_meta_resolver`` that attaches the run's token and a proof over the exact arguments."""

    def resolve(context: Any) -> dict[str, Any]:
        credentials = credentials_from(context.run_context.context)
        return credentials.meta(context.tool_name, context.arguments or {})

    return resolve


__all__ = ["RunContextWrapper", "capkit_function_tool", "capkit_tool_input_guardrail", "capkit_tool_meta_resolver",
           "credentials_from"]
