"""The handler API: ``@handles`` and :class:`HandlerContext` (implemented in :mod:`shared.processing.registry`)."""

from shared.processing.registry import *  # noqa: F403
from shared.processing.registry import __all__  # noqa: F401 - re-exported
