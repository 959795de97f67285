"""What every caveat is: a typed predicate whose fields are declared once.

A caveat kind is a frozen attrs class made with ``@caveat("name")``. Each of
its fields carries a ``Spec`` that says, in one place, how a value given in
Python is validated and normalized (``convert``), how it is written to the
caveat's JSON object (``dump``) and how it is read back (``load``). From those
declarations the kind gets its canonical encoding (the canonical JSON of
``{"k": name, ...fields}``), its decoder (JSON → the same ``convert`` path as
the constructor → re-encode, and the bytes must be identical) and the key
sets the registry enforces. The class itself adds only its check (``check``
or ``_check``) and its sentence (``describe``).

``check`` judges one ``Call`` and returns ``None`` (holds) or a ``Failure``
(code and sentence). It never raises for any argument value.
"""

from __future__ import annotations

import datetime as _dt
import math
from decimal import Decimal
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar

import attrs

from .. import b64 as _b64
from .. import canonical
from ..text import require_text, text_problem
from ..timefmt import unix_seconds
from ..codes import Code
from ..errors import AmountError, InvalidCaveat, MalformedKey, MatchError, NotCanonical
from ..limits import DEFAULT_LIMITS, Limits
from ..publickey import PublicKey
from .amounts import amount_text, coerce_bound, format_amount, parse_canonical_amount

C = TypeVar("C", bound="Caveat")
SPEC = "capkit.spec"
_ABSENT: Any = object()
_raw_decode = canonical.FAST_DECODER.raw_decode


@attrs.frozen
class Failure:
    """One failed check: a stable reason code and one sentence for a person."""

    code: str
    message: str


class Work:
    """How many characters of argument text the pattern caveats of one call may still examine.

    A call carries one; each text caveat that scans a value (prefix, glob,
    path_under, domain, date) charges the value's length first and refuses a
    value longer than ``per_value``. So the time one ``authorize`` spends on
    argument values is bounded by ``Limits.max_match_work``, whatever the token
    and the call hold (specs/SPEC.md §13).
    """

    __slots__ = ("left", "per_value", "total")

    def __init__(self, total: int, per_value: int) -> None:
        self.left = self.total = total
        self.per_value = per_value

    def charge(self, value: str, caveat: "Caveat", arg: str) -> Failure | None:
        """Take ``len(value)`` from what is left; the Failure that denies if the value or the total is too long."""
        size = len(value)
        if size > self.per_value:
            return Failure(Code.TOO_LARGE, f"{arg} is {size:,} characters long; a {caveat.kind} caveat examines "
                                           f"at most {self.per_value:,}")
        self.left -= size
        if self.left < 0:
            return Failure(Code.TOO_LARGE, f"the call's arguments need more than {self.total:,} characters "
                                           "examined; the verifier's limit")
        return None


@attrs.frozen
class Call:
    """An invocation after validation: what caveat checks look at.

    ``at`` is Unix seconds (float). ``args`` holds JSON-like values (dicts,
    lists, str, int, float, Decimal, bool, None) that the verifier has checked.
    ``work`` bounds how much argument text pattern caveats may examine.
    """

    tool: str
    args: Mapping[str, Any]
    audience: str | None
    at: float
    work: Work = attrs.field(factory=lambda: Work(DEFAULT_LIMITS.max_match_work, DEFAULT_LIMITS.max_match_chars),
                             eq=False, repr=False)


# ------------------------------------------------------------------ field specs


class Spec:
    """How one field is validated (``convert``), written (``dump``) and read back (``load``)."""

    key: str = ""
    required: bool = True
    default: Any = None

    @property
    def keys(self) -> frozenset[str]:
        """Every JSON key this field may write."""
        return frozenset({self.key})

    @property
    def required_keys(self) -> frozenset[str]:
        """The JSON keys that must be present (a field spelled by one of several keys checks that itself)."""
        return self.keys if self.required else frozenset()

    def convert(self, value: Any, limits: Limits) -> Any:
        return value

    def dump(self, value: Any) -> dict[str, Any]:
        return {} if value is None and not self.required else {self.key: self.to_json(value)}

    def to_json(self, value: Any) -> Any:
        return value

    def load(self, obj: Mapping[str, Any], limits: Limits) -> Any:
        if self.key not in obj:
            if self.required:
                raise InvalidCaveat(f"field {self.key!r} is missing")
            return self.default
        return self.from_json(obj[self.key], limits)

    def from_json(self, value: Any, limits: Limits) -> Any:
        return value


class Text(Spec):
    """A string field: NFC text without controls, at most ``max_string_chars``; ``check`` may normalize it."""

    def __init__(self, key: str, what: str, check: Callable[[str], str] | None = None, *,
                 required: bool = True) -> None:
        self.key, self.what, self.check, self.required = key, what, check, required

    def convert(self, value: Any, limits: Limits) -> Any:
        if value is None and not self.required:
            return None
        text = require_text(value, self.what, limits.max_string_chars)
        if self.check is None:
            return text
        try:
            return self.check(text)
        except MatchError as exc:
            raise InvalidCaveat(f"{self.what}: {exc.message}") from None


class TextSet(Spec):
    """A non-empty set of strings, kept sorted and unique (its canonical order)."""

    def __init__(self, key: str, what: str, check: Callable[[str], str] | None = None) -> None:
        self.key, self.what, self.check = key, what, check

    def convert(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise InvalidCaveat(f"{self.what}s must be a list of strings, not {type(value).__name__}")
        items = []
        for item in value:
            text = require_text(item, self.what, limits.max_string_chars)
            if self.check is not None:
                try:
                    text = self.check(text)
                except MatchError as exc:
                    raise InvalidCaveat(f"{self.what}: {exc.message}") from None
            items.append(text)
        unique = tuple(sorted(set(items)))
        if not unique:
            raise InvalidCaveat(f"{self.what}s must not be empty")
        if len(unique) > limits.max_set_items:
            raise InvalidCaveat(f"{self.what}s have more than {limits.max_set_items} members")
        return unique

    def to_json(self, value: Any) -> Any:
        return list(value)

    def from_json(self, value: Any, limits: Limits) -> Any:
        if type(value) is not list:
            raise InvalidCaveat(f"{self.key} must be a list")
        return value


class Amount(Spec):
    """An exact decimal: written as its canonical decimal string; given as an int, Decimal or decimal text."""

    def __init__(self, key: str, what: str, *, minimum: Decimal | None = None) -> None:
        self.key, self.what, self.minimum = key, what, minimum

    def convert(self, value: Any, limits: Limits) -> Any:
        try:
            amount = coerce_bound(value)
        except AmountError as exc:
            raise InvalidCaveat(f"{self.what} {exc.message}") from None
        if self.minimum is not None and amount < self.minimum:
            raise InvalidCaveat(f"{self.what} must not be less than {format_amount(self.minimum)}")
        return amount

    def to_json(self, value: Any) -> Any:
        return amount_text(value)  # ``convert`` normalized it

    def from_json(self, value: Any, limits: Limits) -> Any:
        try:
            return parse_canonical_amount(value)
        except AmountError as exc:
            raise InvalidCaveat(f"{self.key} {exc.message}") from None


class Integer(Spec):
    """An integer in ``[low, high]`` (never a boolean)."""

    def __init__(self, key: str, what: str, low: int, high: int) -> None:
        self.key, self.what, self.low, self.high = key, what, low, high

    def convert(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise InvalidCaveat(f"{self.what} must be an integer from {self.low} to {self.high:,}")
        return value


#: Latest instant a time caveat may name (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253402300799


def to_seconds(value: object, what: str) -> float:
    """Unix seconds from an int, a float or a timezone-aware datetime; raise ``InvalidCaveat``."""
    return unix_seconds(value, what, InvalidCaveat)


class Instant(Spec):
    """A moment in whole Unix seconds; a fractional time is rounded ``down`` or ``up`` (never widening)."""

    def __init__(self, key: str, what: str, rounding: str) -> None:
        self.key, self.what, self.rounding = key, what, rounding

    def convert(self, value: Any, limits: Limits) -> Any:
        seconds = to_seconds(value, self.what)
        whole = int(seconds) if isinstance(seconds, int) else (math.floor(seconds) if self.rounding == "down"
                                                                else math.ceil(seconds))
        if not 0 <= whole <= MAX_TIMESTAMP:
            raise InvalidCaveat(f"{self.what} is outside 1970-01-01 .. 9999-12-31")
        return whole

    def from_json(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidCaveat(f"{self.key} must be an integer")
        return value


class Choice(Spec):
    """One of a fixed set of names."""

    def __init__(self, key: str, what: str, choices: tuple[str, ...]) -> None:
        self.key, self.what, self.choices = key, what, choices

    def convert(self, value: Any, limits: Limits) -> Any:
        if value not in self.choices or not isinstance(value, str):
            raise InvalidCaveat(f"{self.what} must be one of {', '.join(self.choices)}")
        return value


class Key(Spec):
    """An agent's Ed25519 public key: written as base64url of its 32 bytes."""

    def __init__(self, key: str, what: str) -> None:
        self.key, self.what = key, what

    def convert(self, value: Any, limits: Limits) -> Any:
        try:
            if isinstance(value, bytes):
                return PublicKey(value)
            return PublicKey.parse(value)
        except MalformedKey as exc:
            raise InvalidCaveat(f"{self.what}: {exc.message}") from None

    def to_json(self, value: Any) -> Any:
        return _b64.encode(value.raw)

    def from_json(self, value: Any, limits: Limits) -> Any:
        return PublicKey(_b64_bytes(value, self.key, 32))


class Raw(Spec):
    """Fixed-size bytes (a signature): written as unpadded base64url."""

    def __init__(self, key: str, what: str, size: int) -> None:
        self.key, self.what, self.size = key, what, size

    def convert(self, value: Any, limits: Limits) -> Any:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise InvalidCaveat(f"{self.what} is {self.size} bytes")
        return value

    def to_json(self, value: Any) -> Any:
        return _b64.encode(value)

    def from_json(self, value: Any, limits: Limits) -> Any:
        return _b64_bytes(value, self.key, self.size)


def _b64_bytes(value: object, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidCaveat(f"{what} must be base64url text")
    try:
        raw = _b64.decode(value)
    except ValueError:
        raise InvalidCaveat(f"{what} must be unpadded base64url") from None
    if len(raw) != size:
        raise InvalidCaveat(f"{what} must be {size} bytes")
    return raw


# ------------------------------------------------------------------ the kinds


def field(spec: Spec, **kwargs: Any) -> Any:
    """An attrs field of a caveat, declared with its ``Spec``."""
    return attrs.field(metadata={SPEC: spec}, **kwargs)


def _cache_field() -> Any:
    return attrs.field(default=None, init=False, eq=False, repr=False)


class Caveat:
    """Base class of all caveat kinds (see the module docstring for the contract)."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    #: The declared fields, in order: (attribute name, spec).
    FIELDS: ClassVar[tuple[tuple[str, Spec], ...]] = ()
    #: True for caveats about the chain of holders, which the verifier enforces itself.
    structural: ClassVar[bool] = False
    #: True for caveats that consume shared state (budgets, call limits) when a call is allowed.
    metered: ClassVar[bool] = False
    #: True for caveats whose check examines argument text (and so charges ``Call.work``).
    examines_text: ClassVar[bool] = False
    #: True for third-party caveats, which only a discharge satisfies (specs/SPEC.md §19).
    third_party: ClassVar[bool] = False

    # ------------------------------------------------------------ construction

    def _init(self, limits: Limits = DEFAULT_LIMITS, **values: Any) -> None:
        """Validate and normalize ``values`` through each field's spec, then the kind's own ``_validate``."""
        self.__attrs_init__(*[spec.convert(values[name], limits) for name, spec in self.FIELDS])  # type: ignore[attr-defined]
        self._validate()

    def _validate(self) -> None:
        """Checks across fields (for example min <= max); raise ``InvalidCaveat``."""

    @classmethod
    def from_json(cls: "type[C]", obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> C:
        """The caveat a JSON object states, through the same validation as the constructor."""
        inst = object.__new__(cls)
        inst._init(limits, **{name: spec.load(obj, limits) for name, spec in cls.FIELDS})
        return inst

    # ---------------------------------------------------------------- encoding

    def to_json(self) -> dict[str, Any]:
        """The caveat's JSON object: its kind under ``"k"`` and each field as declared."""
        out: dict[str, Any] = {"k": self.kind}
        for name, spec in self.FIELDS:
            out.update(spec.dump(getattr(self, name)))
        return out

    def memo(self, name: str, build: Callable[[], Any]) -> Any:
        """A value derived from this immutable caveat (a compiled pattern), built once."""
        cache = self._memo  # type: ignore[attr-defined]
        if cache is None:
            cache = {}
            object.__setattr__(self, "_memo", cache)
        try:
            return cache[name]
        except KeyError:
            value = cache[name] = build()
            return value

    def encode(self) -> bytes:
        """The canonical bytes that are signed into a token for this caveat (computed once)."""
        cached = self._encoded  # type: ignore[attr-defined]
        if cached is None:
            cached = canonical.dumps(self.to_json())
            object.__setattr__(self, "_encoded", cached)
        return cached

    # ---------------------------------------------------------------- checking

    def check(self, call: Call) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def applies_to(self, tool: str) -> bool:
        """True if this caveat constrains calls of ``tool`` (caveats scoped with ``for`` may not)."""
        return True


def caveat(kind: str) -> Callable[[type[C]], type[C]]:
    """Make ``cls`` a frozen caveat kind named ``kind``, collecting its fields' specs."""

    def decorate(cls: type[C]) -> type[C]:
        for name in ("_encoded", "_memo"):  # per-instance caches: the canonical bytes, compiled matchers
            cls.__annotations__.setdefault(name, "Any")
            if name not in cls.__dict__:
                setattr(cls, name, _cache_field())
        made = attrs.frozen(init=False)(cls)
        made.kind = kind
        made.FIELDS = tuple((f.name, f.metadata[SPEC]) for f in attrs.fields(made) if SPEC in f.metadata)
        return made

    return decorate


@attrs.frozen
class UnknownCaveat(Caveat):
    """A caveat this version of capkit cannot interpret. It always denies.

    ``problem`` says why (unknown kind, malformed fields, not canonical JSON);
    ``raw`` keeps the exact signed bytes so the token re-serializes unchanged.
    """

    raw: bytes = attrs.field(repr=False)
    problem: str
    code: str = Code.UNKNOWN_CAVEAT

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

    __slots__ = ("_kinds", "_third_party")

    def __init__(self, kinds: "tuple[type[Caveat], ...]", third_party: "Callable[..., Caveat] | None" = None) -> None:
        """``kinds`` by name; ``third_party`` builds the caveat of a third-party caveat that is not an approval
        (``ThirdParty``; None: third-party caveats are unknown caveats)."""
        table: dict[str, tuple[type[Caveat], frozenset[str], frozenset[str]]] = {}
        for kind in kinds:
            if not kind.kind or kind.kind in table:
                raise InvalidCaveat(f"caveat kind {kind.kind!r} is empty or registered twice")
            required = frozenset({"k"}).union(*(s.required_keys for _, s in kind.FIELDS))
            allowed = frozenset({"k"}).union(*(s.keys for _, s in kind.FIELDS))
            table[kind.kind] = (kind, required, allowed)
        self._kinds = table
        self._third_party = third_party

    def kinds(self) -> tuple[str, ...]:
        """Names of the registered kinds."""
        return tuple(self._kinds)

    def get(self, name: str) -> "type[Caveat] | None":
        """The class of kind ``name``, if registered."""
        entry = self._kinds.get(name)
        return None if entry is None else entry[0]

    def decode(self, raw: Any, limits: Limits = DEFAULT_LIMITS) -> Caveat:
        """The typed caveat for ``raw`` (a first-party caveat's bytes, or a ``RawThirdParty``), or an
        ``UnknownCaveat`` saying why there is none.

        Never raises: a caveat that cannot be interpreted still occupies its place
        in the chain and denies every call. A caveat is accepted only if its
        canonical re-encoding is byte-identical to ``raw``.
        """
        if type(raw) is not bytes:
            return self._decode_third_party(raw, limits)
        return self._decode_json(raw, limits, third_party=False)

    def _decode_json(self, raw: bytes, limits: Limits, *, third_party: bool) -> Caveat:
        """A caveat from canonical JSON bytes: a first-party caveat, or (``third_party``) an approval's id."""
        if len(raw) > limits.max_caveat_bytes:
            return UnknownCaveat(raw, f"caveat is longer than {limits.max_caveat_bytes} bytes", Code.TOO_LARGE)
        try:
            text = raw.decode("utf-8")
            obj, end = _raw_decode(text)
        except NotCanonical as exc:
            return UnknownCaveat(raw, f"not a canonical capkit caveat ({exc.message})")
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
        if kind.third_party != third_party:
            where = "a third-party" if kind.third_party else "a first-party"
            return UnknownCaveat(raw, f"a {kind.kind} caveat is only valid as {where} caveat", Code.MALFORMED_CAVEAT)
        if not (required <= obj.keys() <= allowed):
            return UnknownCaveat(raw, f"{kind.kind} caveat has missing or unexpected fields", Code.MALFORMED_CAVEAT)
        try:
            decoded = kind.from_json(obj, limits)
            if Caveat.encode(decoded) == raw:
                return decoded
        except InvalidCaveat as exc:
            return UnknownCaveat(raw, f"{kind.kind} caveat is invalid: {exc.message}", Code.MALFORMED_CAVEAT)
        except (ValueError, TypeError):  # e.g. a lone surrogate that cannot be encoded
            return UnknownCaveat(raw, f"{kind.kind} caveat cannot be encoded", Code.MALFORMED_CAVEAT)
        return UnknownCaveat(raw, f"{kind.kind} caveat is not in canonical form", Code.MALFORMED_CAVEAT)

    def _decode_third_party(self, raw: Any, limits: Limits) -> Caveat:
        """A third-party caveat: a capkit ``Approval`` when its id is one (and this registry knows the kind),
        otherwise a generic ``ThirdParty`` (both need a discharge)."""
        if self._third_party is None:
            return UnknownCaveat(raw, "a third-party caveat, which this verifier does not accept")
        if len(raw.cid) + len(raw.vid) > limits.max_caveat_bytes:
            return UnknownCaveat(raw, f"caveat is longer than {limits.max_caveat_bytes} bytes", Code.TOO_LARGE)
        try:
            location = None if raw.location is None else raw.location.decode("utf-8")
        except UnicodeDecodeError:
            return UnknownCaveat(raw, "a third-party caveat's location is not UTF-8 text", Code.MALFORMED_CAVEAT)
        problem = None if location is None else text_problem(location, 255)
        if problem is not None:  # no signature covers it (as in every macaroon), so it must at least be plain text
            return UnknownCaveat(raw, f"a third-party caveat's location {problem}", Code.MALFORMED_CAVEAT)
        if raw.cid.startswith(b'{"') and b'"k":"approval"' in raw.cid:
            decoded = self._decode_json(raw.cid, limits, third_party=True)
            if isinstance(decoded, UnknownCaveat):
                return UnknownCaveat(raw, decoded.problem, decoded.code)
            object.__setattr__(decoded, "vid", raw.vid)
            object.__setattr__(decoded, "location", location)
            return decoded
        return self._third_party(raw.cid, location, raw.vid)
