"""The glue between the default handlers and the dialogs table (process-wide storage clients)."""

from __future__ import annotations

from shared import storage
from shared.dialogs import DialogStore
from shared.events import DialogportenEvent


def dialog_store() -> DialogStore:
    return DialogStore(storage.current().tables)


def record_dialog_state(event: DialogportenEvent) -> None:
    dialog_store().record(event)
