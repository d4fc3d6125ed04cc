"""A local simulator (a fake) of the Altinn side, dev-only: Maskinporten, the Altinn exchange, Events.

It implements the documented contracts closely enough that the operator CLI and the app run the
whole loop on one machine: subscribe, validation ping, pushed deliveries with Altinn's retry
schedule (time-scaled), dead letters, and the polling API for catch-up. Every rule cites its source
in the module that enforces it. It is never deployed (``.funcignore`` keeps ``devtools/`` out).
"""

from devtools.altinn_sim.server import Options, Simulator
from devtools.altinn_sim.tokens import Client

__all__ = ["Client", "Options", "Simulator"]
