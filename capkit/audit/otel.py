"""``OpenTelemetrySink``: each audit record as a span, in the tracing people already run (extra ``otel``).

The span is named ``capkit.decision``, ``capkit.listing`` or ``capkit.settle``
and carries the record's fields as ``capkit.*`` attributes: decision, reason
codes with caveat, hop and agent, token and hop ids, tool, invocation digest,
the proof's agent key and nonce, what was reserved. Argument values are not
attributes (the file or database log keeps them under the redaction policy);
nothing secret is in a record to begin with. A denied decision sets the span
status to ERROR with the codes as its description.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import AuditError

__all__ = ["OpenTelemetrySink", "span_attributes"]


def span_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``capkit.*`` attributes of a record (OpenTelemetry values: str, bool, int, sequences of them)."""
    out: dict[str, Any] = {}
    for key in ("id", "event", "verifier", "allowed", "token", "tool", "audience", "digest", "holder",
                "decision", "outcome", "done", "reservation"):
        value = record.get(key)
        if value is not None:
            out[f"capkit.{key}"] = value
    if record.get("hops"):
        out["capkit.hops"] = list(record["hops"])
    reasons = record.get("reasons") or []
    if reasons:
        out["capkit.reason.codes"] = [r["code"] for r in reasons]
        out["capkit.reason.caveats"] = [-1 if r.get("caveat") is None else r["caveat"] for r in reasons]
        out["capkit.reason.hops"] = [-1 if r.get("hop") is None else r["hop"] for r in reasons]
        out["capkit.reason.agents"] = [r.get("agent") or "" for r in reasons]
    proof = record.get("proof")
    if proof:
        out["capkit.proof.key"] = proof["key"]
        out["capkit.proof.at"] = proof["at"]
        out["capkit.proof.nonce"] = proof["nonce"]
    reserved = record.get("reserved")
    if reserved:
        out["capkit.reserved.reservation"] = reserved["reservation"]
        out["capkit.reserved.caveats"] = [m["caveat"] for m in reserved["meters"]]
        out["capkit.reserved.amounts"] = [m["amount"] for m in reserved["meters"]]
    return out


class OpenTelemetrySink:
    """Emit every record as a span of ``tracer`` (default: the global tracer provider's ``capkit`` tracer)."""

    def __init__(self, tracer: Any = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:  # pragma: no cover - the [otel] extra
            raise AuditError("the OpenTelemetry sink needs opentelemetry-api: pip install 'capkit[otel]'") from None
        self._trace = trace
        self._tracer = tracer if tracer is not None else trace.get_tracer("capkit")

    def write(self, record: Mapping[str, Any]) -> None:
        at_ns = int(record["at_ms"]) * 1_000_000
        span = self._tracer.start_span(f"capkit.{record['event']}", start_time=at_ns,
                                       attributes=span_attributes(record))
        if record.get("allowed") is False:
            codes = ", ".join(r["code"] for r in record.get("reasons") or [])
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"denied: {codes}"))
        span.end(end_time=at_ns)

    def close(self) -> None:
        pass
