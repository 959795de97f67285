"""Globs, paths and domains: the pure matchers behind the text caveats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit.caveats.matching import (
    MatchError,
    canonical_domain,
    canonical_path,
    domain_is_under,
    glob_match,
    host_of,
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
        ("?", "a", True),
        ("?", "ab", False),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "axxbyy", False),
        ("[ab]", "a", False),  # no character classes: brackets are literal
        ("[ab]", "[ab]", True),
        ("*@example.com", "bob@example.com", True),
        ("*@example.com", "bob@example.com.evil", False),
    ],
)
def test_glob(pattern, value, expected):
    assert glob_match(pattern, value) is expected


def test_glob_has_no_backtracking_blowup():
    # A regex translation of this pattern backtracks exponentially-ish; ours is O(n*m).
    assert glob_match("*a" * 40 + "b", "a" * 4000) is False


@given(st.text(max_size=30), st.text(max_size=30))
def test_glob_without_wildcards_is_equality(pattern, value):
    if "*" in pattern or "?" in pattern:
        return
    assert glob_match(pattern, value) is (pattern == value)


@given(st.text(max_size=20))
def test_star_matches_everything(value):
    assert glob_match("*", value)


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
    "value, host",
    [
        ("bob@example.com", "example.com"),
        ("Bob@EXAMPLE.com.", "example.com"),
        ("bob@mail.example.com", "mail.example.com"),
        ("https://example.com/path", "example.com"),
        ("https://user:pw@Example.COM:8443/x?y#z", "example.com"),
        ("https://example.com@evil.com/", "evil.com"),  # userinfo trick: the host is evil.com
        ("example.com", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("exаmple.com", "xn--exmple-4nf.com"),  # Cyrillic 'а' is another domain
        ("ｅｘａｍｐｌｅ.com", "example.com"),  # UTS 46 maps fullwidth to ASCII
    ],
)
def test_host_of(value, host):
    assert host_of(value) == host


@pytest.mark.parametrize(
    "value",
    [
        "a@example.com,b@evil.com",  # a list smuggled into one address
        "a@b@example.com",
        "Bob <bob@example.com>",
        "bob@example.com evil.com",
        "https://evil.com\\@example.com",  # parsers disagree about backslashes
        "bob@",
        "@example.com",
        "https://[::1]/",
        "https:///path",
        "bob@exa mple.com",
        "bob@example..com",
        "bob@-example.com",
        "bob@xn--zz.com",  # not valid punycode
        "",
    ],
)
def test_unparseable_or_ambiguous_addresses_are_refused(value):
    with pytest.raises(MatchError):
        host_of(value)


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
    for bad in ["", ".", "a..b", "-a.com", "a-.com", "a" * 64 + ".com", "under score.com"]:
        with pytest.raises(MatchError):
            canonical_domain(bad)
