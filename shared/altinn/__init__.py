"""The outside services (layer 3): Maskinporten, the Altinn token exchange, the events API, Dialogporten.

Every call goes through one HTTP client (:mod:`~shared.altinn.http`): no redirect followed, TLS only,
bounded. :mod:`~shared.altinn.clients` builds the process-wide token providers and API clients from the
settings. An altinn module may import :mod:`shared.events`, never :mod:`shared.stores`.
"""
