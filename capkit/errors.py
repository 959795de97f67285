"""Every exception capkit raises, under one root (the public name of ``capkit.core.errors``)."""

from __future__ import annotations

from .core.errors import *  # noqa: F401,F403
from .core.errors import __all__  # noqa: F401
