"""A local simulator (a fake) of the Altinn side, dev-only: Maskinporten, the Altinn exchange, Events, Dialogporten.

Its rules are read from the services' own code, so that the operator CLI and the app run the whole loop on
one machine as they would against Altinn: subscribe, validation ping, pushed deliveries with Altinn's retry
schedule (time-scaled), dead letters, the polling API for catch-up, and the dialogs for enrichment. Every
rule cites the file it imitates in the docstring of the module that enforces it, and marks that line
(``devtools/checks/sim_rules.py`` checks both); ``tests/integration/devtools/altinn_sim/test_contract.py``
states the contract once, for the simulator and for TT02. It is never deployed (``.funcignore`` keeps
``devtools/`` out).
"""

from devtools.altinn_sim.server import Options, Simulator
from devtools.altinn_sim.tokens import Client

__all__ = ["Client", "Options", "Simulator"]
