"""The caveat kinds, for grants written in Python (the public name of ``capkit.core.caveats``)."""

from __future__ import annotations

from ..core.caveats import *  # noqa: F401,F403
from ..core.caveats import __all__  # noqa: F401
