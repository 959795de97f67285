"""Pure matching functions used by caveat checks: globs, paths, domains and addresses.

None of them touches the filesystem or the network. Each returns a decision
or raises ``MatchError`` with a few words saying why a value cannot be judged
(the caller turns that into a denial). Every function runs in time linear in
the length of the value it examines (specs/SPEC.md §8, §13).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

import idna

from ..text import has_control
from ..errors import MatchError

__all__ = [
    "MatchError",
    "GlobPattern",
    "canonical_domain",
    "canonical_path",
    "domain_is_under",
    "glob_match",
    "host_of",
    "path_hazard",
    "path_is_under",
    "split_path",
    "ADDRESS_KINDS",
]


# --------------------------------------------------------------------- globs

_LITERAL, _ONE, _STAR, _GLOBSTAR = 0, 1, 2, 3


def _tokens(pattern: str) -> list[tuple[int, str]]:
    """The tokens of a glob: literal characters, ``?``, ``*`` and ``**``; raise ``MatchError``."""
    out: list[tuple[int, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            if j - i > 2:
                raise MatchError("a glob has three or more '*' in a row; write '**' for any depth")
            out.append((_STAR if j - i == 1 else _GLOBSTAR, ""))
            i = j
        elif ch == "?":
            out.append((_ONE, ""))
            i += 1
        else:
            out.append((_LITERAL, ch))
            i += 1
    return out


class GlobPattern:
    """A compiled glob pattern (specs/SPEC.md §8.3), matched in time linear in the value's length.

    ``*`` matches any run of characters except ``/``; ``**`` any run including
    ``/``; ``?`` one character except ``/``; every other character itself.
    ``**`` that is a whole path segment followed by ``/`` (``a/**/b``,
    ``**/b``) also matches zero segments (``a/b``), as in gitignore. There are
    no character classes and no escapes.

    Matching simulates the pattern's automaton over the value, one character
    at a time, with the set of live pattern positions as the bits of an
    integer: no backtracking, so the cost is one step per character of the
    value, each step a few operations on an integer of ``len(pattern)`` bits.
    """

    __slots__ = ("pattern", "_prefix", "_suffix", "_middle", "_kind", "_at_segment_start", "_advance", "_any_advance",
                 "_slash_advance", "_loop", "_slash_loop", "_eps", "_skip", "_start", "_final")

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str):
            raise MatchError("a glob pattern is text")
        self.pattern = pattern
        tokens = _tokens(pattern)
        for k in range(len(tokens) - 2):  # '**/**' says the same as '**' once
            if tokens[k][0] == _GLOBSTAR and tokens[k + 1] == (_LITERAL, "/") and tokens[k + 2][0] == _GLOBSTAR:
                raise MatchError("a glob has '**/**'; one '**' already matches any depth")
        # Literal characters at both ends are compared directly; the automaton runs on the rest.
        head = 0
        while head < len(tokens) and tokens[head][0] == _LITERAL:
            head += 1
        tail = len(tokens)
        while tail > head and tokens[tail - 1][0] == _LITERAL:
            tail -= 1
        # A whole-segment '**' may match nothing together with the '/' after it ('a/**/b' matches 'a/b',
        # '**/x' matches 'x'): keep the slashes around it with the automaton.
        def whole_segment(k: int) -> bool:  # a '**' at k that starts a path segment
            return tokens[k][0] == _GLOBSTAR and (k == 0 or tokens[k - 1] == (_LITERAL, "/"))

        if tail < len(tokens) and tokens[tail] == (_LITERAL, "/") and tail > head and whole_segment(tail - 1):
            tail += 1
        if head > 0 and head < tail and whole_segment(head):
            head -= 1
        middle = tokens[head:tail]
        self._at_segment_start = head == 0 or tokens[head - 1] == (_LITERAL, "/")
        self._prefix = "".join(c for _, c in tokens[:head])
        self._suffix = "".join(c for _, c in tokens[tail:])
        self._middle = middle
        if not middle:
            self._kind = "literal"
        elif middle == [(_STAR, "")]:
            self._kind = "star"
        elif middle == [(_GLOBSTAR, "")]:
            self._kind = "globstar"
        else:
            self._kind = "automaton"
            self._compile(middle)

    def _compile(self, tokens: list[tuple[int, str]]) -> None:
        literal: dict[str, int] = {}
        one = star = globstar = skip = 0
        m = len(tokens)
        for k, (kind, ch) in enumerate(tokens):
            bit = 1 << k
            if kind == _LITERAL:
                literal[ch] = literal.get(ch, 0) | bit
            elif kind == _ONE:
                one |= bit
            elif kind == _STAR:
                star |= bit
            else:
                globstar |= bit
                # A whole-segment '**' followed by '/' may match nothing together with that '/'.
                before = (k == 0 and self._at_segment_start) or (k > 0 and tokens[k - 1] == (_LITERAL, "/"))
                if before and k + 1 < m and tokens[k + 1] == (_LITERAL, "/"):
                    skip |= bit
        self._advance = {ch: bits | one for ch, bits in literal.items() if ch != "/"}
        self._any_advance = one
        self._slash_advance = literal.get("/", 0)
        self._loop = star | globstar
        self._slash_loop = globstar
        self._eps = star | globstar
        self._skip = skip
        self._final = 1 << m
        self._start = self._enter(1)

    def _enter(self, entered: int) -> int:
        """Positions live after entering ``entered``: a star may match nothing; a whole-segment '**/' too."""
        entered |= ((entered & self._eps) << 1) | ((entered & self._skip) << 2)
        return entered | ((entered & self._eps) << 1)

    def match(self, value: str) -> bool:
        """True if ``value`` matches the whole pattern."""
        prefix, suffix = self._prefix, self._suffix
        if len(value) < len(prefix) + len(suffix) or not value.startswith(prefix) or not value.endswith(suffix):
            return False
        kind = self._kind
        rest = value[len(prefix):len(value) - len(suffix)]
        if kind == "literal":
            return not rest
        if kind == "star":
            return "/" not in rest
        if kind == "globstar":
            return True
        return self._run(rest)

    def _run(self, value: str) -> bool:
        # Star positions loop on themselves and may also be skipped; every star is an epsilon position, and
        # no two star tokens are adjacent, so one epsilon step closes a set (two after a whole-segment skip).
        live = self._start
        advance, any_advance = self._advance, self._any_advance
        loop, eps, skip = self._loop, self._eps, self._skip
        slash_advance, slash_loop = self._slash_advance, self._slash_loop
        if not skip:
            for ch in value:
                if ch == "/":
                    entered = (live & slash_advance) << 1
                    stay = live & slash_loop
                else:
                    entered = (live & advance.get(ch, any_advance)) << 1
                    stay = live & loop
                live = entered | ((entered & eps) << 1) | stay | (stay << 1)
                if not live:
                    return False
            return bool(live & self._final)
        for ch in value:
            if ch == "/":
                entered = (live & slash_advance) << 1
                stay = live & slash_loop
            else:
                entered = (live & advance.get(ch, any_advance)) << 1
                stay = live & loop
            entered |= ((entered & eps) << 1) | ((entered & skip) << 2)
            live = entered | ((entered & eps) << 1) | stay | (stay << 1)
            if not live:
                return False
        return bool(live & self._final)

    def __repr__(self) -> str:
        return f"GlobPattern({self.pattern!r})"


def glob_match(pattern: str, value: str) -> bool:
    """True if ``value`` matches ``pattern`` (see ``GlobPattern``; compile once with ``GlobPattern`` to match many values)."""
    return GlobPattern(pattern).match(value)


# --------------------------------------------------------------------- paths

#: Characters whose compatibility form is a path separator or a dot: a path
#: that contains one could mean another path to a tool that normalizes (NFKC).
_PATH_SENSITIVE = frozenset("/\\.")
_PERCENT_PATH = re.compile(r"%(?:2[eEfF]|5[cC])")


def split_path(path: str) -> tuple[bool, tuple[str, ...]]:
    """Normalize a path lexically into (is_absolute, segments); raise ``MatchError``.

    Empty and ``.`` segments are dropped. ``..`` is refused outright: resolving
    it lexically is wrong when a directory is a symbolic link, so a path that
    needs it is never judged to be under anything. Backslashes, NUL and other
    control characters, percent-encoded dots and separators, and characters
    whose NFKC form contains ``/``, ``\\`` or ``.`` are refused as confusable.
    """
    if not path:
        raise MatchError("path is empty")
    if "\\" in path:
        raise MatchError("path contains a backslash")
    if has_control(path):
        raise MatchError("path contains a control character")
    if "%" in path and _PERCENT_PATH.search(path):
        raise MatchError("path contains a percent-encoded '.', '/' or '\\'")
    if not path.isascii():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in path):
            raise MatchError("path contains a lone surrogate")
        for ch in set(path):
            if ord(ch) > 0x7F and _PATH_SENSITIVE.intersection(unicodedata.normalize("NFKC", ch)):
                raise MatchError(f"path contains the confusable character U+{ord(ch):04X}")
        if not unicodedata.is_normalized("NFC", path):
            raise MatchError("path is not in Unicode NFC form")
    segments = tuple(s for s in path.split("/") if s and s != ".")
    if ".." in segments:
        raise MatchError("path contains '..'")
    return path.startswith("/"), segments


def path_hazard(value: str) -> str | None:
    """Why a text value could name another place than it seems to a tool that reads it as a path, or None.

    For the text kinds that can see a path (prefix, glob): a backslash, a
    control character, a ``.`` or ``..`` segment, or the same after NFKC
    normalization or after decoding percent-escapes of ``.``, ``/`` and ``\\``.
    ``/srv/docs/../../etc/passwd`` starts with ``/srv/docs/`` but is not there.
    """
    if "\\" in value:
        return "contains a backslash"
    if has_control(value):
        return "contains a control character"
    candidates = [value]
    if "%" in value and _PERCENT_PATH.search(value):
        return "contains a percent-encoded '.', '/' or '\\'"
    if not value.isascii():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            return "contains a lone surrogate"
        folded = unicodedata.normalize("NFKC", value)
        if folded != value:
            if "\\" in folded:
                return "contains a character that normalizes to a backslash"
            if folded.count("/") != value.count("/"):
                return "contains a character that normalizes to '/'"
            candidates.append(folded)
    for text in candidates:
        if "." in text:
            for segment in text.split("/"):
                if segment in (".", ".."):
                    return f"has a '{segment}' segment"
    return None


def canonical_path(path: str) -> str:
    """The normalized text of a path: one leading '/' if absolute, no '.', no trailing '/'."""
    absolute, segments = split_path(path)
    body = "/".join(segments)
    if absolute:
        return "/" + body
    if not body:
        raise MatchError("a relative path must name at least one segment")
    return body


def path_is_under(path: str, base: str) -> bool:
    """True if ``path`` is ``base`` or inside it (both normalized; absoluteness must agree)."""
    absolute, segments = split_path(path)
    base_absolute, base_segments = split_path(base)
    if absolute != base_absolute:
        return False
    return segments[: len(base_segments)] == base_segments


# ------------------------------------------------------------------- domains

#: What a domain caveat's argument holds.
ADDRESS_KINDS = ("email", "url", "host")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
#: A last label that URL parsers (WHATWG) read as an IPv4 number: decimal or 0x-hex digits.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)", re.ASCII)
#: The local part of a plain address: letters, digits and . _ + - = ' ~ (no '/', '#', '?', '%', '!', quotes).
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._+\-=~']+", re.ASCII)


def canonical_domain(host: str) -> str:
    """A host name as lowercase IDNA A-labels without a trailing dot; raise ``MatchError``.

    IP literals are never domains: a name whose last label is all digits (or
    0x-hex, as URL parsers read it) is an IPv4 address, and one with ``:`` or
    ``[`` an IPv6 address; both are refused.
    """
    if not isinstance(host, str) or not host or len(host) > 253 + 1:
        raise MatchError("host name is empty or too long")
    if host.endswith("."):
        host = host[:-1]
    if not host or host.startswith(".") or ".." in host:
        raise MatchError("host name has an empty label")
    if ":" in host or "[" in host or "]" in host:
        raise MatchError("host name is an IP address, not a domain")
    if host.isascii():
        host = host.lower()
        labels = host.split(".")
        for label in labels:
            if not _LABEL.fullmatch(label):
                raise MatchError(f"host name has an invalid label {label[:20]!r} "
                                 "(labels are letters, digits, '-' and '_', not starting or ending with '-')")
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except idna.IDNAError as exc:
                    raise MatchError("host name has an invalid IDNA label") from exc
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            raise MatchError("host name is an IP address, not a domain")
        return host
    try:
        encoded = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise MatchError("host name is not a valid internationalized domain name") from exc
    return canonical_domain(encoded)


def _email_host(value: str) -> str:
    local, at, host = value.rpartition("@")
    if not at or not local or "@" in local:
        raise MatchError("is not one plain email address (exactly one '@' with text before and after it)")
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise MatchError("has a local part outside the plain address grammar "
                         "(no '/', '#', '?', '%', '!', quotes, brackets or spaces)")
    return canonical_domain(host)


def _url_host(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme.isascii() or not scheme.isalpha():
        raise MatchError("is not a URL (scheme://host/...)")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise MatchError("is a URL with user information before its host, which parsers read differently")
    if "%" in authority:
        raise MatchError("is a URL with a percent-encoded host")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise MatchError("is a URL that cannot be parsed") from exc
    if not host:
        raise MatchError("is a URL without a host")
    if authority.startswith("["):
        raise MatchError("is a URL whose host is an IP address, not a domain")
    return canonical_domain(host)


def host_of(value: str, kind: str) -> str:
    """The canonical host of ``value`` read as ``kind``: an ``email`` address, a ``url`` or a ``host`` name.

    A value that is not of that kind is refused (``MatchError``): what a value
    *is* is stated by the grant, never guessed from its shape, since a mail
    library and a URL fetcher read ``https://example.com/@evil.com`` differently.
    Backslashes, white space and control characters are refused everywhere.
    """
    if not value:
        raise MatchError("is empty")
    if "\\" in value or has_control(value) or re.search(r"\s", value):
        raise MatchError("contains a backslash, space or control character")
    if kind == "email":
        return _email_host(value)
    if kind == "url":
        return _url_host(value)
    if kind == "host":
        if any(ch in value for ch in "/@:?#%"):
            raise MatchError("is not a bare host name")
        return canonical_domain(value)
    raise MatchError(f"unknown address kind {kind!r}")


def domain_is_under(host: str, domain: str) -> bool:
    """True if canonical ``host`` equals canonical ``domain`` or is a subdomain of it."""
    return host == domain or host.endswith("." + domain)
