"""Each caveat kind: what it allows, what it denies (with which code and sentence), how it encodes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from capkit import InvalidCaveat
from capkit.caveats import (
    REGISTRY,
    Audience,
    Call,
    Domain,
    Eq,
    Expires,
    Glob,
    Max,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
    UnknownCaveat,
)

NOW = 1796083200


def c(tool="bank.transfer", audience=None, at=NOW, **args):
    return Call(tool, args, audience, at)


def code(caveat, call):
    failure = caveat.check(call)
    return None if failure is None else failure.code


def message(caveat, call):
    return caveat.check(call).message


# ------------------------------------------------------------------ tools


def test_tools_exact_and_glob():
    tools = Tools("bank.transfer", "mail.*")
    assert code(tools, c("bank.transfer")) is None
    assert code(tools, c("mail.send")) is None
    assert code(tools, c("bank.delete")) == "tool_not_granted"
    assert message(tools, c("bank.delete")) == "tool bank.delete is not granted (allowed: bank.transfer, mail.*)"


def test_tools_constructor_validates():
    with pytest.raises(InvalidCaveat):
        Tools()
    with pytest.raises(InvalidCaveat):
        Tools("bank transfer")
    with pytest.raises(InvalidCaveat):
        Tools("x" * 129)
    assert Tools("b", "a", "b").patterns == ("a", "b")  # a sorted set


# --------------------------------------------------------------- equality


def test_eq_text_is_exact():
    eq = Eq("currency", "USD")
    assert code(eq, c(currency="USD")) is None
    assert code(eq, c(currency="usd")) == "arg_not_allowed"
    assert message(eq, c(currency="EUR")) == "currency is 'EUR', must be 'USD'"
    assert code(eq, c(currency=5)) == "arg_invalid"
    assert code(eq, c()) == "arg_missing"
    assert code(eq, c(currency=["USD", "USD"])) is None
    assert code(eq, c(currency=["USD", "EUR"])) == "arg_not_allowed"


def test_eq_number_compares_decimals():
    eq = Eq("count", 3)
    assert code(eq, c(count=3)) is None
    assert code(eq, c(count=3.0)) is None
    assert code(eq, c(count="3.00")) == "arg_invalid"  # text is never a number
    assert code(eq, c(count=Decimal("3"))) is None
    assert code(eq, c(count=4)) == "arg_not_allowed"
    assert code(eq, c(count=True)) == "arg_invalid"  # a bool is never a number
    assert code(eq, c(count="three")) == "arg_invalid"


def test_eq_bool_is_strict():
    eq = Eq("dry_run", True)
    assert code(eq, c(dry_run=True)) is None
    assert code(eq, c(dry_run=1)) == "arg_not_allowed"
    assert code(eq, c(dry_run="true")) == "arg_not_allowed"
    assert code(eq, c(dry_run=False)) == "arg_not_allowed"


def test_one_of_text_and_lists():
    one_of = OneOf("recipient", ["landlord", "plumber"])
    assert code(one_of, c(recipient="landlord")) is None
    assert code(one_of, c(recipient=["landlord", "plumber"])) is None
    assert code(one_of, c(recipient=["landlord", "mallory"])) == "arg_not_allowed"
    assert code(one_of, c(recipient=[])) == "arg_not_allowed"  # an empty list is not "all allowed"
    assert message(one_of, c(recipient="mallory")) == "recipient 'mallory' is not one of 'landlord', 'plumber'"
    assert code(one_of, c(recipient=[["landlord"]])) == "arg_invalid"


def test_one_of_numbers():
    one_of = OneOf("account", [1001, 1002])
    assert one_of.numeric
    assert code(one_of, c(account=1001)) is None
    assert code(one_of, c(account="1002")) == "arg_invalid"  # text is never a number
    assert code(one_of, c(account=1003)) == "arg_not_allowed"


def test_one_of_constructor_validates():
    with pytest.raises(InvalidCaveat):
        OneOf("recipient", "landlord")  # a string is not a list of strings
    with pytest.raises(InvalidCaveat):
        OneOf("recipient", [])
    with pytest.raises(InvalidCaveat):
        OneOf("1bad", ["x"])
    with pytest.raises(InvalidCaveat):
        OneOf("recipient", [str(i) for i in range(300)])


# ---------------------------------------------------------- numeric bounds


def test_max_min_range():
    assert code(Max("amount", 50), c(amount=50)) is None
    assert code(Max("amount", 50), c(amount="50.00")) == "arg_invalid"
    assert code(Max("amount", 50), c(amount=50.01)) == "arg_out_of_range"
    assert message(Max("amount", 50), c(amount=500)) == "amount 500 exceeds max 50"
    assert code(Min("amount", "0.01"), c(amount=0)) == "arg_out_of_range"
    assert message(Min("amount", "0.01"), c(amount=0)) == "amount 0 is below min 0.01"
    assert code(Range("amount", 10, 20), c(amount=15)) is None
    assert code(Range("amount", 10, 20), c(amount=21)) == "arg_out_of_range"
    assert message(Range("amount", 10, 20), c(amount=9)) == "amount 9 is outside the range 10 to 20"
    with pytest.raises(InvalidCaveat):
        Range("amount", 20, 10)


def test_float_argument_at_the_bound_is_exact():
    # 98.7 as a JSON number must equal the bound 98.7, not 98.7000000000000028421709...
    assert code(Max("amount", Decimal("98.7")), c(amount=98.7)) is None
    assert code(Max("amount", Decimal("98.69")), c(amount=98.7)) == "arg_out_of_range"


@pytest.mark.parametrize("value", [True, "1e3", "1_000", "NaN", float("nan"), float("inf"), "١٠", None, {"v": 1}, [1]])
def test_numeric_bounds_deny_values_that_are_not_plain_numbers(value):
    assert code(Max("amount", 1000), c(amount=value)) == "arg_invalid"


def test_bounds_refuse_floats_and_garbage():
    for bad in (0.5, "1e3", True, float("nan")):
        with pytest.raises(InvalidCaveat):
            Max("amount", bad)


# ------------------------------------------------------------------- text


def test_prefix():
    prefix = Prefix("path", "/srv/")
    assert code(prefix, c(path="/srv/a")) is None
    assert code(prefix, c(path="/etc/passwd")) == "arg_not_allowed"


def test_path_under():
    under = PathUnder("path", "/srv/docs/")
    assert under.value == "/srv/docs"
    assert code(under, c(path="/srv/docs/report.pdf")) is None
    assert code(under, c(path="/srv/docs/../secrets")) == "arg_not_allowed"
    assert message(under, c(path="/srv/docs/../secrets")) == "path '/srv/docs/../secrets' is refused: path contains '..'"
    assert message(under, c(path="/etc/passwd")) == "path '/etc/passwd' is not under /srv/docs"
    assert code(under, c(path="srv/docs/a")) == "arg_not_allowed"
    with pytest.raises(InvalidCaveat):
        PathUnder("path", "docs/../x")


def test_glob_caveat():
    glob = Glob("to", "*@example.com")
    assert code(glob, c(to="a@example.com")) is None
    assert code(glob, c(to="a@evil.com")) == "arg_not_allowed"


def test_domain():
    domain = Domain("to", "Example.COM", kind="email")
    assert domain.value == "example.com"
    assert code(domain, c(to="alice@example.com")) is None
    assert code(domain, c(to="alice@mail.example.com")) is None
    assert code(domain, c(to=["a@example.com", "b@example.com"])) is None
    assert code(domain, c(to="alice@evil-example.com")) == "arg_not_allowed"
    assert code(domain, c(to=["a@example.com", "b@evil.com"])) == "arg_not_allowed"
    assert code(domain, c(to="a@example.com,b@evil.com")) == "arg_invalid"
    assert message(domain, c(to="x@evil.com")) == "to 'x@evil.com' is not at example.com or a subdomain of it"
    assert Domain("to", "bücher.example", kind="host").value == "xn--bcher-kva.example"


# ------------------------------------------------------------ time, audience


def test_expires_and_not_before():
    assert code(Expires(NOW + 1), c()) is None
    assert code(Expires(NOW), c()) == "expired"  # valid while time < expiry
    assert message(Expires(0), c()) == "the grant expired at 1970-01-01T00:00:00Z (call at 2026-12-01T00:00:00Z)"
    assert code(NotBefore(NOW), c()) is None
    assert code(NotBefore(NOW + 1), c()) == "not_yet_valid"
    assert Expires(dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)).at == NOW
    with pytest.raises(InvalidCaveat):
        Expires(dt.datetime(2026, 12, 1))  # naive datetimes are ambiguous
    assert Expires(NOW + 1.9).at == NOW + 1  # a fraction never lengthens a grant: expiry rounds down,
    assert NotBefore(NOW + 0.1).at == NOW + 1  # and not-before rounds up
    with pytest.raises(InvalidCaveat):
        Expires(-1)
    with pytest.raises(InvalidCaveat):
        Expires(float("nan"))


def test_audience():
    audience = Audience("bank-api")
    assert code(audience, c(audience="bank-api")) is None
    assert code(audience, c(audience="mail-api")) == "wrong_audience"
    assert code(audience, c()) == "wrong_audience"


# --------------------------------------------------------------- encoding

ALL = [
    Tools("bank.transfer", "bank.*"),
    Eq("currency", 'US"D\\'),
    Eq("count", 3),
    Eq("flag", True),
    Eq("flag", False),
    OneOf("recipient", ["landlord", "bob", "é"]),
    OneOf("account", [1, Decimal("2.50")]),
    Max("amount", 1250),
    Min("amount", "0.01"),
    Range("amount", -1, 100),
    Prefix("path", "/srv/"),
    PathUnder("path", "/srv/docs/"),
    Glob("to", "*@example.com"),
    Domain("to", "Bücher.example", kind="email"),
    Domain("site", "example.com", kind="url"),
    Domain("host", "example.com", kind="host"),
    Expires(NOW),
    NotBefore(0),
    Audience("bank-api", "ünï"),
    Eq("currency", "USD", tool="bank.transfer"),
    Eq("count", 3, tool="bank.*"),
    Eq("flag", True, tool="x"),
    OneOf("recipient", ["a", "b"], tool="bank.transfer"),
    OneOf("account", [1, 2], tool="bank.transfer"),
    Max("amount", 100, tool="bank.transfer"),
    Min("amount", 1, tool="bank.transfer"),
    Range("amount", 1, 5, tool="bank.transfer"),
    Prefix("path", "/srv/", tool="files.*"),
    PathUnder("path", "/srv", tool="files.read"),
    Glob("to", "*@x.com", tool="mail.send"),
    Domain("to", "example.com", kind="email", tool="mail.send"),
]


@pytest.mark.parametrize("caveat", ALL, ids=lambda cv: cv.kind + ("-for" if getattr(cv, "tool", None) else ""))
def test_every_kind_round_trips_through_its_canonical_bytes(caveat):
    from capkit.core import canonical

    raw = caveat.encode()
    assert raw == canonical.dumps(caveat.to_json())
    assert canonical.loads(raw) == caveat.to_json()
    assert REGISTRY.decode(raw) == caveat


def test_registry_covers_every_kind_once():
    assert sorted(REGISTRY.kinds()) == sorted(
        ["tools", "eq", "one_of", "max", "min", "range", "prefix", "path_under", "glob", "domain",
         "expires", "not_before", "audience", "holder", "delegate", "max_depth", "budget", "calls", "approval", "args_only", "date_window"]
    )


@pytest.mark.parametrize(
    "raw, code_",
    [
        (b'{"k":"launch_missiles"}', "unknown_caveat"),
        (b"time < 2030-01-01", "unknown_caveat"),  # a classic macaroon text caveat
        (b"\xff\xfe", "unknown_caveat"),
        (b"[]", "unknown_caveat"),
        (b'{"k":1}', "unknown_caveat"),
        (b'{"k":[1]}', "unknown_caveat"),
        (b'{"k":{"k":"max"}}', "unknown_caveat"),
        (b'{"k":"tools","v":"bank.*"}', "malformed_caveat"),
        (b'{"k":"tools","v":[]}', "malformed_caveat"),
        (b'{"k":"tools","v":[1]}', "malformed_caveat"),
        (b'{"arg":"r","k":"one_of","s":["b","a"]}', "malformed_caveat"),
        (b'{"arg":"amount","k":"max","max":"50","extra":1}', "malformed_caveat"),
        (b'{"arg":"amount","k":"max"}', "malformed_caveat"),
        (b'{"arg":"amount","k":"max","max":"50.0"}', "malformed_caveat"),
        (b'{"arg":"amount","k":"max","max":50}', "malformed_caveat"),
        (b'{"k":"max","arg":"amount","max":"50"}', "malformed_caveat"),  # keys not sorted
        (b'{"arg":"amount", "k":"max","max":"50"}', "malformed_caveat"),  # whitespace
        (b'{"arg":"amount","arg":"x","k":"max","max":"50"}', "malformed_caveat"),  # duplicate key
        (b'{"arg":"amou\\u006et","k":"max","max":"50"}', "malformed_caveat"),  # escape
        (b'{"k":"tools","v":["b","a"]}', "malformed_caveat"),  # set not sorted
        (b'{"k":"tools","v":["a","a"]}', "malformed_caveat"),  # set with duplicates
        (b'{"k":"expires","t":1.5}', "unknown_caveat"),  # floats are not canonical JSON here
        (b'{"k":"expires","t":true}', "malformed_caveat"),
        (b'{"arg":"x","k":"eq","s":"\\ud800"}', "malformed_caveat"),  # lone surrogate
        (b'{"arg":"x","k":"eq","n":"1","s":"a"}', "malformed_caveat"),
        (b'{"arg":"x","k":"prefix","v":"a\\u0000"}', "malformed_caveat"),
        (b'{"arg":"x","k":"path_under","v":"/a/"}', "malformed_caveat"),  # not the normalized base
        (b'{"arg":"x","k":"domain","v":"Example.com"}', "malformed_caveat"),  # not canonical case
        (b"[" * 600 + b"]" * 600, "unknown_caveat"),  # deep nesting
    ],
)
def test_uninterpretable_caveats_decode_to_a_denying_unknown(raw, code_):
    caveat = REGISTRY.decode(raw)
    assert isinstance(caveat, UnknownCaveat)
    assert caveat.code == code_
    failure = caveat.check(c())
    assert failure.code == code_
    assert caveat.encode() == raw  # its place in the chain is kept byte for byte


def test_oversized_caveat_is_too_large():
    caveat = REGISTRY.decode(b'{"k":"tools","v":["' + b"a" * 3000 + b'"]}')
    assert caveat.code == "too_large"


def test_unknown_caveat_cannot_be_added_to_a_token(keyring):
    from capkit import mint

    with pytest.raises(InvalidCaveat):
        mint(keyring, REGISTRY.decode(b'{"k":"zzz"}'), location="bank")
    with pytest.raises(InvalidCaveat):
        mint(keyring, "tools=bank.*", location="bank")  # type: ignore[arg-type]


def test_describe_speaks_plainly():
    assert Max("amount", 50).describe() == "amount at most 50"
    assert Tools("bank.transfer").describe() == "tool is bank.transfer"
    assert OneOf("recipient", ["landlord"]).describe() == "recipient must be one of 'landlord'"
    assert Expires(NOW).describe() == "until 2026-12-01T00:00:00Z"


def test_a_tool_scope_limits_a_caveat_to_matching_tools():
    scoped = Max("amount", 100, tool="bank.transfer")
    assert code(scoped, c("bank.transfer", amount=500)) == "arg_out_of_range"
    assert code(scoped, c("bank.transfer")) == "arg_missing"
    assert code(scoped, c("bank.balance")) is None  # other tools are not constrained by it
    assert code(Max("amount", 100, tool="bank.*"), c("bank.wire", amount=500)) == "arg_out_of_range"
    assert scoped.applies_to("bank.transfer") and not scoped.applies_to("bank.balance")
    assert scoped.describe() == "amount at most 100 (for tool bank.transfer)"
    assert scoped.encode() == b'{"arg":"amount","for":"bank.transfer","k":"max","max":"100"}'
    for bad in ("", "has space", "x" * 129, 5):
        with pytest.raises(InvalidCaveat):
            Max("amount", 1, tool=bad)  # type: ignore[arg-type]
    assert REGISTRY.decode(b'{"arg":"amount","for":"bad tool","k":"max","max":"1"}').code == "malformed_caveat"
    assert REGISTRY.decode(b'{"arg":"amount","for":null,"k":"max","max":"1"}').code == "malformed_caveat"
