"""The stores (layer 3): Azure Storage, and what the app keeps in it.

- :mod:`~shared.stores.clients`: the storage clients, built once per process;
- :mod:`~shared.stores.tables`, :mod:`~shared.stores.devstorage`: helpers they share;
- :mod:`~shared.stores.sink`: an event made durable on its queue (base64, no expiry, claim check);
- :mod:`~shared.stores.idempotency`: claims for handlers with outside effects;
- :mod:`~shared.stores.dialogs`: the dialog state, one row per event;
- :mod:`~shared.stores.cursors`: where catch-up resumes;
- :mod:`~shared.stores.poison`: why each poisoned message was poisoned.

A store may import :mod:`shared.events`, never :mod:`shared.altinn`.
"""
