"""A dev-only local runner for v2 Python Function apps (``python -m devtools.runner``), apart from the deployed code.

It loads ``function_app.app``, indexes it with ``app.get_functions()`` and runs the very same
functions Azure runs: HTTP triggers on a real server, queue triggers against Azurite with the
host's ``host.json`` semantics. See :mod:`devtools.runner.cli` for the command line.
"""

from devtools.runner.config import ConfigError, HostConfig, QueueOptions, load_local_settings
from devtools.runner.functions import load_app, read_functions
from devtools.runner.runner import ConnectionSettingError, Runner, load_host_config, resolve_connection

__all__ = [
    "ConfigError",
    "ConnectionSettingError",
    "HostConfig",
    "QueueOptions",
    "Runner",
    "load_app",
    "load_host_config",
    "load_local_settings",
    "read_functions",
    "resolve_connection",
]
