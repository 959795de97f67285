"""FastAPI: refuse, at start-up, routes whose arguments capkit's HTTP middleware cannot see.

    app.add_middleware(CapkitASGIMiddleware, verifier=verifier, audience="bank-api")
    check_routes(app, public=["/health"])      # raises UnsafeRoutes listing every route it cannot guarantee

``CapkitASGIMiddleware`` authorizes the JSON body, or the query string of a
request without a body. A route that also reads headers, cookies, form fields
or files, or that reads both a body and query parameters, would act on values
capkit never saw. ``check_routes`` finds those routes before the app serves
anything.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..core.errors import UnsafeRoutes

__all__ = ["UnsafeRoutes", "check_routes", "route_problems"]


def route_problems(route: Any) -> list[str]:
    """Why capkit cannot guarantee what ``route`` (a FastAPI ``APIRoute``) receives; empty if it can."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return []
    problems = []
    flat = _flatten(dependant)
    if any(True for d in flat for _ in d.header_params):
        problems.append("reads request headers")
    if any(True for d in flat for _ in d.cookie_params):
        problems.append("reads cookies")
    body = [p for d in flat for p in d.body_params]
    query = [p for d in flat for p in d.query_params]
    for param in body:
        info = getattr(param, "field_info", None)
        kind = type(info).__name__ if info is not None else ""
        if kind in ("Form", "File"):
            problems.append(f"reads {kind.lower()} data ({param.name})")
    if body and query:
        problems.append("reads both a body and query parameters")
    return problems


def _flatten(dependant: Any) -> list[Any]:
    out, pending = [], [dependant]
    while pending:
        current = pending.pop()
        out.append(current)
        pending.extend(getattr(current, "dependencies", ()))
    return out


def check_routes(app: Any, *, public: Iterable[str] = ()) -> None:
    """Raise ``UnsafeRoutes`` naming every non-public route of ``app`` that reads arguments capkit cannot see."""
    public = set(public)
    found = []
    for route in getattr(app, "routes", ()):
        path = getattr(route, "path", None)
        if path in public:
            continue
        problems = route_problems(route)
        if problems:
            found.append(f"{path} {', '.join(problems)}")
    if found:
        raise UnsafeRoutes("capkit cannot guarantee what these routes receive: " + "; ".join(found)
                           + " (read arguments only from the JSON body, or only from the query string)")
