"""What every caveat is: a typed predicate with one canonical byte encoding.

A caveat kind is a frozen attrs class deriving from ``Caveat`` with a unique
``kind`` name. It converts to and from a JSON object (``to_json`` /
``from_json``), the object always carrying its kind under the key ``"k"``;
the bytes signed into a token are the canonical JSON of that object. Its
``check`` judges one ``Call`` and returns ``None`` (holds) or a ``Failure``
(code and sentence). ``describe`` says in plain words what it grants.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, TypeVar

import attrs

from .. import canonical
from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits


C = TypeVar("C", bound="Caveat")
_raw_decode = canonical.FAST_DECODER.raw_decode


@attrs.frozen
class Failure:
    """One failed check: a stable reason code and one sentence for a person."""

    code: str
    message: str


@attrs.frozen
class Call:
    """An invocation after validation: what caveat checks look at.

    ``at`` is Unix seconds (float). ``args`` holds JSON-like values (dicts,
    lists, str, int, float, Decimal, bool, None) that the verifier has checked.
    """

    tool: str
    args: Mapping[str, Any]
    audience: str | None
    at: float


class Caveat:
    """Base class of all caveat kinds (see module docstring for the contract)."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    #: Field names of the JSON object besides "k" that must be present.
    json_fields: ClassVar[frozenset[str]] = frozenset()
    #: Field names that may be present besides the required ones.
    json_optional: ClassVar[frozenset[str]] = frozenset()
    #: True for caveats about the chain of holders, which the verifier enforces itself.
    structural: ClassVar[bool] = False
    #: True for caveats that consume shared state (budgets, call limits) when a call is allowed.
    metered: ClassVar[bool] = False

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Caveat":  # pragma: no cover
        raise NotImplementedError

    def check(self, call: Call) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def applies_to(self, tool: str) -> bool:
        """True if this caveat constrains calls of ``tool`` (caveats scoped with ``for`` may not)."""
        return True

    def encode(self) -> bytes:
        """The canonical bytes that are signed into a token for this caveat.

        Always ``canonical.dumps(self.to_json())``; kinds may override it with
        a faster spelling of the same bytes (tests/test_caveat_encoding.py
        proves the two agree for every kind).
        """
        return canonical.dumps(self.to_json())


def build_validated(cls: "type[C]", *values: Any) -> "C":
    """An instance of ``cls`` from field values its ``from_json`` has fully validated.

    Skips the public constructor, which would validate (and normalize) again.
    Only for values already in the normalized form the constructor produces;
    the registry's byte-exact re-encoding check still applies afterwards.
    """
    inst = object.__new__(cls)
    inst.__attrs_init__(*values)  # type: ignore[attr-defined]
    return inst


@attrs.frozen
class UnknownCaveat(Caveat):
    """A caveat this version of capkit cannot interpret. It always denies.

    ``problem`` says why (unknown kind, malformed fields, not canonical JSON);
    ``raw`` keeps the exact signed bytes so the token re-serializes unchanged.
    """

    raw: bytes = attrs.field(repr=False)
    problem: str
    code: str = "unknown_caveat"

    kind: ClassVar[str] = "?"

    def encode(self) -> bytes:
        return self.raw

    def to_json(self) -> dict[str, Any]:
        raise InvalidCaveat("an unrecognized caveat has no JSON form")

    def check(self, call: Call) -> Failure:
        return Failure(self.code, f"caveat cannot be checked: {self.problem}")

    def describe(self) -> str:
        return f"unrecognized caveat ({self.problem}); every call is denied"


class Registry:
    """The caveat kinds a parser recognizes, by kind name. Immutable once built."""

    __slots__ = ("_kinds",)

    def __init__(self, kinds: "tuple[type[Caveat], ...]") -> None:
        table: dict[str, tuple[type[Caveat], frozenset[str], frozenset[str]]] = {}
        for kind in kinds:
            if not kind.kind or kind.kind in table:
                raise ValueError(f"caveat kind {kind.kind!r} is empty or registered twice")
            required = kind.json_fields | {"k"}
            table[kind.kind] = (kind, required, required | kind.json_optional)
        self._kinds = table

    def kinds(self) -> tuple[str, ...]:
        """Names of the registered kinds."""
        return tuple(self._kinds)

    def decode(self, raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Caveat:
        """The typed caveat for ``raw``, or an ``UnknownCaveat`` saying why there is none.

        Never raises: a caveat that cannot be interpreted still occupies its place
        in the chain and denies every call.
        """
        if len(raw) > limits.max_caveat_bytes:
            return UnknownCaveat(raw, f"caveat is longer than {limits.max_caveat_bytes} bytes", "too_large")
        try:
            # The byte-exact re-encoding check below covers canonical form.
            text = raw.decode("utf-8")
            obj, end = _raw_decode(text)
        except canonical.NotCanonical as exc:
            return UnknownCaveat(raw, f"not a canonical capkit caveat ({exc})")
        except (ValueError, RecursionError):
            return UnknownCaveat(raw, "not a canonical capkit caveat (not valid JSON text)")
        if end != len(text):
            return UnknownCaveat(raw, "not a canonical capkit caveat (data follows the JSON value)")
        name = obj.get("k") if type(obj) is dict else None
        if type(name) is not str:
            return UnknownCaveat(raw, "not a capkit caveat object")
        entry = self._kinds.get(name)
        if entry is None:
            return UnknownCaveat(raw, f"unknown caveat kind {name[:40]!r}")
        kind, required, allowed = entry
        if not (required <= obj.keys() <= allowed):
            return UnknownCaveat(raw, f"{kind.kind} caveat has missing or unexpected fields", "malformed_caveat")
        try:
            caveat = kind.from_json(obj, limits)
            if caveat.encode() == raw:
                return caveat
        except InvalidCaveat as exc:
            return UnknownCaveat(raw, f"{kind.kind} caveat is invalid: {exc.message}", "malformed_caveat")
        except (ValueError, TypeError):  # e.g. a lone surrogate that cannot be encoded
            return UnknownCaveat(raw, f"{kind.kind} caveat cannot be encoded", "malformed_caveat")
        return UnknownCaveat(raw, f"{kind.kind} caveat is not in canonical form", "malformed_caveat")
