"""The action boundary: thin adapters that put ``Verifier.authorize`` in front of tools.

Every adapter builds an ``Invocation`` from the request, calls the verifier,
runs the tool only if allowed, and then commits (the tool returned) or
releases (it raised) what the call reserved. None re-implements a check.

* ``capkit.integrations.guard``         — a decorator for plain Python tools (sync and async)
* ``capkit.integrations.mcp``           — the official MCP SDK: server middleware and client helper
* ``capkit.integrations.fastmcp``       — the same for the ``fastmcp`` package
* ``capkit.integrations.asgi``          — HTTP tool backends (Starlette / FastAPI)
* ``capkit.integrations.openai_agents`` — OpenAI Agents SDK: tool wrapper, input guardrail, MCP meta
* ``capkit.integrations.langchain``     — LangChain: a wrapper tool with the same name and schema

The agent side keeps its token and key in ``Credentials`` (``credentials.py``),
in the agent runtime, never in a model's context. Framework packages are
imported only by the module that adapts them (extras ``capkit[mcp]``,
``capkit[fastmcp]``, ``capkit[fastapi]``, ``capkit[openai-agents]``,
``capkit[langchain]``).
"""

from .credentials import Credentials, acting_as, current_credentials

__all__ = ["Credentials", "acting_as", "current_credentials"]
