"""Public suffixes (``co.uk``, ``com.au``, ``github.io``): domains under which anyone may register a name.

A domain caveat at a public suffix admits every registrant under it, so
``capkit suggest`` never proposes one and grant files and the command line
refuse one. The list is the Public Suffix List (ICANN and private sections)
as the ``publicsuffixlist`` package ships it; it is used outside the verifier
only, so a token's meaning never depends on the list's version.
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

__all__ = ["is_public_suffix", "public_suffix_problem", "registrable_domain"]


@lru_cache(maxsize=1)
def _list() -> PublicSuffixList:
    return PublicSuffixList(only_icann=False)


def is_public_suffix(domain: str) -> bool:
    """True if ``domain`` (canonical, lowercase A-labels) is a public suffix, or a bare top-level domain."""
    return "." not in domain or bool(_list().is_public(domain))


def registrable_domain(domain: str) -> str | None:
    """The shortest domain a registrant owns that ``domain`` is at or under (``bank.co.uk``), or None."""
    return _list().privatesuffix(domain)


def public_suffix_problem(domain: str) -> str | None:
    """Why a domain caveat at ``domain`` would be too wide, or None."""
    if is_public_suffix(domain):
        return (f"{domain} is a public suffix: anyone can register a name under it, so it would admit "
                "addresses of every registrant; name the registrant's domain instead")
    return None
