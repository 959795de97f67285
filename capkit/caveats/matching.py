"""Pure matching functions used by caveat checks: globs, paths, domains.

None of them touches the filesystem or the network. Each returns a decision
or raises ``MatchError`` with a few words saying why a value cannot be judged
(the caller turns that into a denial).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

import idna

from .._text import has_control


class MatchError(ValueError):
    """A value cannot be matched (wrong shape); the message says why."""


# --------------------------------------------------------------------- globs


def glob_match(pattern: str, value: str) -> bool:
    """True if ``value`` matches ``pattern``: ``*`` is any run of characters, ``?`` one.

    No character classes and no escapes, so a pattern means the same in every
    implementation. Worst case O(len(pattern) * len(value)); no backtracking blow-up.
    """
    p = v = 0
    star = -1
    resume = 0
    np, nv = len(pattern), len(value)
    while v < nv:
        if p < np and (pattern[p] == "?" or (pattern[p] != "*" and pattern[p] == value[v])):
            p += 1
            v += 1
        elif p < np and pattern[p] == "*":
            star = p
            resume = v
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            v = resume
        else:
            return False
    while p < np and pattern[p] == "*":
        p += 1
    return p == np


# --------------------------------------------------------------------- paths

#: Characters whose compatibility form is a path separator or a dot: a path
#: that contains one could mean another path to a tool that normalizes (NFKC).
_PATH_SENSITIVE = frozenset("/\\.")


def split_path(path: str) -> tuple[bool, tuple[str, ...]]:
    """Normalize a path lexically into (is_absolute, segments); raise ``MatchError``.

    Empty and ``.`` segments are dropped. ``..`` is refused outright: resolving
    it lexically is wrong when a directory is a symbolic link, so a path that
    needs it is never judged to be under anything. Backslashes, NUL and other
    control characters, and characters whose NFKC form contains ``/``, ``\\``
    or ``.`` are refused as confusable.
    """
    if not path:
        raise MatchError("path is empty")
    if "\\" in path:
        raise MatchError("path contains a backslash")
    if has_control(path):
        raise MatchError("path contains a control character")
    if not path.isascii():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in path):
            raise MatchError("path contains a lone surrogate")
        for ch in path:
            if ord(ch) > 0x7F and _PATH_SENSITIVE.intersection(unicodedata.normalize("NFKC", ch)):
                raise MatchError(f"path contains the confusable character U+{ord(ch):04X}")
        if not unicodedata.is_normalized("NFC", path):
            raise MatchError("path is not in Unicode NFC form")
    segments = tuple(s for s in path.split("/") if s and s != ".")
    if ".." in segments:
        raise MatchError("path contains '..'")
    return path.startswith("/"), segments


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

_EMAIL_SPECIALS = frozenset('()<>[]:;@\\,"') | frozenset(" \t\r\n")


def canonical_domain(host: str) -> str:
    """A host name as lowercase IDNA A-labels without a trailing dot; raise ``MatchError``."""
    if not host or len(host) > 253 + 1:
        raise MatchError("host name is empty or too long")
    if host.endswith("."):
        host = host[:-1]
    if not host or host.startswith(".") or ".." in host:
        raise MatchError("host name has an empty label")
    if host.isascii():
        host = host.lower()
        for label in host.split("."):
            if not (0 < len(label) <= 63) or not all(c.isalnum() or c in "-_" for c in label):
                raise MatchError("host name has an invalid label")
            if label.startswith("-") or label.endswith("-"):
                raise MatchError("host name has a label that starts or ends with '-'")
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except idna.IDNAError as exc:
                    raise MatchError("host name has an invalid IDNA label") from exc
        return host
    try:
        encoded = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise MatchError("host name is not a valid internationalized domain name") from exc
    return canonical_domain(encoded)


def host_of(value: str) -> str:
    """The canonical host of an email address, a URL, or a bare host name.

    A value with ``://`` is a URL (its host, after any user info); a value with
    ``@`` is one email address (exactly one ``@``, no display name, no list);
    anything else is a host name. Backslashes, whitespace and control
    characters are refused everywhere, since parsers disagree about them.
    """
    if not value:
        raise MatchError("address is empty")
    if "\\" in value or has_control(value) or any(ch.isspace() for ch in value):
        raise MatchError("address contains a backslash, space or control character")
    if "://" in value:
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError as exc:
            raise MatchError("URL cannot be parsed") from exc
        if not parts.scheme.isalpha() or not host:
            raise MatchError("URL has no host")
        if host.startswith("["):
            raise MatchError("URL host is an IP literal, not a domain")
        return canonical_domain(host)
    if "@" in value:
        local, _, host = value.partition("@")
        if not local or "@" in host or _EMAIL_SPECIALS.intersection(local):
            raise MatchError("not a single plain email address")
        return canonical_domain(host)
    return canonical_domain(value)


def domain_is_under(host: str, domain: str) -> bool:
    """True if canonical ``host`` equals canonical ``domain`` or is a subdomain of it."""
    return host == domain or host.endswith("." + domain)
