"""Moved to :mod:`shared.altinn.dialogporten`; this path stays for handlers that import from it."""

from shared.altinn.dialogporten import *  # noqa: F403
from shared.altinn.dialogporten import __all__  # noqa: F401 - re-exported
