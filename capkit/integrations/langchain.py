"""LangChain (``langchain-core``): ``CapkitTool`` wraps a tool, keeping its name and schema.

    safe = CapkitTool.wrap(transfer_tool, verifier, tool="bank.transfer")
    safe.invoke({"recipient": "landlord", "amount": 50},
                config={"configurable": {"capkit": Credentials(token, agent_key)}})

The credentials come from ``config["configurable"]["capkit"]``, which the
application sets and the model never writes. Every call is authorized with
the tool's input as LangChain validated it against the wrapped tool's schema
(what the wrapped tool receives); a denial becomes a ``ToolException`` whose
text lists every reason (returned to the model as the tool's output, since
``handle_tool_error`` is on). The call's spend is committed whatever the
wrapped tool does, unless it raises ``NothingSpent``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict

from ..core.errors import CapkitError
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ._boundary import authorize_async, denial_text, run_allowed, run_allowed_sync
from .credentials import Credentials


def _credentials(config: RunnableConfig | None) -> Credentials:
    found = ((config or {}).get("configurable") or {}).get("capkit")
    if not isinstance(found, Credentials):
        raise CapkitError('no capkit credentials: pass config={"configurable": {"capkit": Credentials(...)}}')
    return found


class CapkitTool(BaseTool):
    """A LangChain tool that authorizes every call of the tool it wraps."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    wrapped: BaseTool
    verifier: Any
    capkit_tool: str
    audience: str | None = None
    handle_tool_error: Any = True

    @classmethod
    def wrap(cls, wrapped: BaseTool, verifier: Verifier, *, tool: str | None = None,
             audience: str | None = None) -> "CapkitTool":
        """Wrap ``wrapped``: same name, description and argument schema; ``tool`` names it for the grant."""
        return cls(name=wrapped.name, description=wrapped.description, args_schema=wrapped.args_schema,
                   wrapped=wrapped, verifier=verifier, capkit_tool=tool or wrapped.name, audience=audience)

    def _invocation(self, kwargs: dict[str, Any], config: RunnableConfig | None) \
            -> tuple[Invocation, str, str | None, tuple[str, ...]]:
        credentials = _credentials(config)
        invocation = Invocation(self.capkit_tool, dict(kwargs), self.audience or credentials.audience)
        token, proof = credentials.present(invocation.tool, dict(kwargs))
        return invocation, token, proof, credentials.discharges

    def _run(self, *args: Any, config: RunnableConfig, run_manager: Any = None, **kwargs: Any) -> Any:
        invocation, token, proof, discharges = self._invocation(kwargs, config)
        decision = self.verifier.authorize(token, invocation, proof, discharges)
        if not decision.allowed:
            raise ToolException(denial_text(decision))
        return run_allowed_sync(self.verifier, decision,
                                lambda: self.wrapped.invoke(kwargs, config=_without_callbacks(config)))

    async def _arun(self, *args: Any, config: RunnableConfig, run_manager: Any = None, **kwargs: Any) -> Any:
        invocation, token, proof, discharges = self._invocation(kwargs, config)
        decision = await authorize_async(self.verifier, token, invocation, proof, discharges)
        if not decision.allowed:
            raise ToolException(denial_text(decision))
        return await run_allowed(self.verifier, decision,
                                 lambda: self.wrapped.ainvoke(kwargs, config=_without_callbacks(config)))


def _without_callbacks(config: RunnableConfig | None) -> RunnableConfig:
    """The config for the wrapped tool: the same, without re-running this tool's callbacks."""
    return {k: v for k, v in (config or {}).items() if k != "callbacks"}  # type: ignore[return-value]
