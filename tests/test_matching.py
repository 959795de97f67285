"""Globs, paths and domains: the pure matchers behind the text caveats."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capkit.core.caveats.matching import (
    GlobPattern,
    MatchError,
    canonical_domain,
    canonical_path,
    domain_is_under,
    glob_match,
    host_of,
    path_hazard,
    path_is_under,
)


@pytest.mark.parametrize(
    "pattern, value, expected",
    [
        ("bank.*", "bank.transfer", True),
        ("bank.*", "bank.", True),
        ("bank.*", "bankx.transfer", False),
        ("bank.*", "mail.send", False),
        ("*", "", True),
        ("*", "a/b", False),  # '*' stops at '/'
        ("**", "a/b/c", True),  # '**' crosses it
        ("?", "a", True),
        ("?", "/", False),
        ("?", "ab", False),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "axxbyy", False),
        ("[ab]", "a", False),  # no character classes: brackets are literal
        ("[ab]", "[ab]", True),
        ("*@example.com", "bob@example.com", True),
        ("*@example.com", "bob@example.com.evil", False),
        ("/srv/docs/*.md", "/srv/docs/a.md", True),
        ("/srv/docs/*.md", "/srv/docs/a/b.md", False),
        ("/srv/docs/**/*.md", "/srv/docs/a.md", True),  # a whole-segment '**/' may match no directory
        ("/srv/docs/**/*.md", "/srv/docs/a/b/c.md", True),
        ("/srv/docs/**", "/srv/docs/a/b", True),
        ("/srv/docs/**", "/srv/docsx/a", False),
        ("**/*.md", "a.md", True),
        ("**/*.md", "x/y/a.md", True),
        ("src/**.py", "src/a/b.py", True),
    ],
)
def test_glob(pattern, value, expected):
    assert glob_match(pattern, value) is expected


@pytest.mark.parametrize("pattern", ["***", "a/***", "**/**", "a/**/**/b"])
def test_redundant_or_ambiguous_globs_are_refused(pattern):
    with pytest.raises(MatchError):
        GlobPattern(pattern)


def _reference(pattern: str, value: str) -> bool:
    """An independent statement of the glob rules as a regular expression (for small inputs only)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(out), value, re.DOTALL) is not None


@given(st.text(alphabet="ab/*?.", max_size=10), st.text(alphabet="ab/.", max_size=10))
@settings(max_examples=3000)
def test_glob_agrees_with_an_independent_reference(pattern, value):
    try:
        compiled = GlobPattern(pattern)
    except MatchError:
        return
    assert compiled.match(value) is _reference(pattern, value)


def test_glob_cost_is_linear_in_the_value():
    # The pattern/value pairs that make a backtracking matcher quadratic or worse: one step per character here.
    hard = [("*a" * 200 + "b", "a" * 8000), ("**a" * 200 + "b", "a" * 8000), ("?" * 500 + "*b", "a" * 8000),
            ("*/" * 300 + "x", "a/" * 4000)]
    for pattern, value in hard:
        assert GlobPattern(pattern).match(value) is False
        assert GlobPattern(pattern).match(value[:4000]) is False


@given(st.text(max_size=30), st.text(max_size=30))
def test_glob_without_wildcards_is_equality(pattern, value):
    if "*" in pattern or "?" in pattern:
        return
    assert glob_match(pattern, value) is (pattern == value)


@given(st.text(max_size=20))
def test_globstar_matches_everything_and_star_everything_without_a_slash(value):
    assert glob_match("**", value)
    assert glob_match("*", value) is ("/" not in value)


@pytest.mark.parametrize("value, why", [
    ("/srv/docs/../../etc/passwd", "'..' segment"),
    ("/srv/docs/./x", "'.' segment"),
    ("..", "'..' segment"),
    ("/srv/docs\\x", "backslash"),
    ("/srv/docs/%2e%2e/x", "percent-encoded"),
    ("/srv/docs/%2F..", "percent-encoded"),
    ("/srv/docs/\u2025/x", "'..' segment"),  # two dot leader: NFKC '..'
    ("/srv/docs/a\uff0fb", "normalizes to '/'"),  # fullwidth solidus
    ("/srv/docs/a\x00", "control"),
])
def test_path_hazards_are_named(value, why):
    assert why in (path_hazard(value) or "")


@pytest.mark.parametrize("value", ["/srv/docs/a.md", "INV-7", "notes...txt", "Meeting\u2026", "a/b/c", "x.y.z"])
def test_ordinary_values_are_no_hazard(value):
    assert path_hazard(value) is None


@pytest.mark.parametrize(
    "path, base, expected",
    [
        ("/srv/docs/a.txt", "/srv/docs", True),
        ("/srv/docs", "/srv/docs", True),
        ("/srv/docs/", "/srv/docs", True),
        ("/srv//docs/./sub/a", "/srv/docs", True),
        ("/srv/docsx/a", "/srv/docs", False),
        ("/srv", "/srv/docs", False),
        ("docs/a.txt", "docs", True),
        ("./docs/a.txt", "docs", True),
        ("docs/a.txt", "/docs", False),  # relative is never under absolute
        ("/docs/a.txt", "docs", False),  # and the other way round
    ],
)
def test_path_under(path, base, expected):
    assert path_is_under(path, base) is expected


@pytest.mark.parametrize(
    "path, why",
    [
        ("docs/../secrets", "'..'"),
        ("/srv/docs/../../etc/passwd", "'..'"),
        ("../docs/a", "'..'"),
        ("docs\\..\\secrets", "backslash"),
        ("docs/a\x00.txt", "control"),
        ("docs/%2e%2e/secrets", "percent-encoded"),
        ("docs\uff0f..\uff0fsecrets", "confusable"),  # fullwidth solidus
        ("docs/\u2024\u2024/secrets", "confusable"),  # one dot leader
        ("docs/cafe\u0301", "NFC"),
        ("", "empty"),
    ],
)
def test_dangerous_paths_are_refused(path, why):
    with pytest.raises(MatchError, match=why):
        path_is_under(path, "docs")


def test_canonical_path():
    assert canonical_path("/srv/docs/") == "/srv/docs"
    assert canonical_path("//srv/./docs") == "/srv/docs"
    assert canonical_path("/") == "/"
    assert canonical_path("./docs/") == "docs"
    with pytest.raises(MatchError):
        canonical_path("./")


@pytest.mark.parametrize(
    "value, kind, host",
    [
        ("bob@example.com", "email", "example.com"),
        ("Bob@EXAMPLE.com.", "email", "example.com"),
        ("bob.o'neil+tag@mail.example.com", "email", "mail.example.com"),
        ("https://example.com/path", "url", "example.com"),
        ("https://Example.COM:8443/x?y#z", "url", "example.com"),
        ("https://example.com/@evil.com", "url", "example.com"),  # a URL: its host is example.com
        ("example.com", "host", "example.com"),
        ("bücher.example", "host", "xn--bcher-kva.example"),
        ("BÜCHER.example", "host", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "host", "xn--bcher-kva.example"),
        ("exаmple.com", "host", "xn--exmple-4nf.com"),  # Cyrillic 'а' is another domain
        ("ｅｘａｍｐｌｅ.com", "host", "example.com"),  # UTS 46 maps fullwidth to ASCII
    ],
)
def test_host_of(value, kind, host):
    assert host_of(value, kind) == host


@pytest.mark.parametrize(
    "value, kind",
    [
        ("a@example.com,b@evil.com", "email"),  # a list smuggled into one address
        ("a@b@example.com", "email"),
        ("Bob <bob@example.com>", "email"),
        ("bob@example.com evil.com", "email"),
        ("https://example.com/@evil.com", "email"),  # a mail library reads a mailbox at evil.com: refused
        ("evil.com/@example.com", "email"),  # a fetcher reads evil.com: refused
        ("evil.com#@example.com", "email"),
        ("evil.com?@example.com", "email"),
        ("evil%40x@example.com", "email"),
        ("evil!x@example.com", "email"),
        ("https://evil.com\\@example.com", "url"),  # parsers disagree about backslashes
        ("https://example.com@evil.com/", "url"),  # user information: refused, whatever the host
        ("https://user:pw@example.com/", "url"),
        ("evil.com/@example.com", "url"),  # not a URL
        ("example.com", "url"),
        ("bob@example.com", "url"),
        ("https://[::1]/", "url"),
        ("https://127.0.0.1:8080/admin", "url"),  # IP literals are never domains
        ("https://0x7f.1/", "url"),
        ("https://2130706433/", "url"),
        ("https://ex%61mple.com/", "url"),
        ("https:///path", "url"),
        ("https://example.com:99999/", "url"),
        ("bob@", "email"),
        ("@example.com", "email"),
        ("bob@exa mple.com", "email"),
        ("bob@example..com", "email"),
        ("bob@-example.com", "email"),
        ("bob@xn--zz.com", "email"),  # not valid punycode
        ("bob@10.0.0.1", "email"),
        ("example.com/x", "host"),
        ("a@example.com", "host"),
        ("127.0.0.1", "host"),
        ("", "email"),
    ],
)
def test_values_not_of_the_stated_kind_are_refused(value, kind):
    with pytest.raises(MatchError):
        host_of(value, kind)


@pytest.mark.parametrize(
    "host, domain, expected",
    [
        ("example.com", "example.com", True),
        ("mail.example.com", "example.com", True),
        ("evil-example.com", "example.com", False),
        ("example.com.evil.com", "example.com", False),
        ("com", "example.com", False),
    ],
)
def test_domain_is_under(host, domain, expected):
    assert domain_is_under(host, domain) is expected


def test_canonical_domain_rejects_garbage():
    for bad in ["", ".", "a..b", "-a.com", "a-.com", "a" * 64 + ".com", "under score.com", "0.0.1", "0.1",
                "10.0.0.1", "127.1", "0x7f", "::1", "[::1]"]:
        with pytest.raises(MatchError):
            canonical_domain(bad)
