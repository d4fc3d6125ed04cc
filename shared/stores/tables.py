"""Table Storage helpers shared by the stores (idempotency records, dialog rows): tables and keys."""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import ResourceNotFoundError

from shared.stores.clients import table_client

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

__all__ = ["ensure_table", "forget_tables", "insert", "record_key"]

#: Keys may not hold / \ # ? or control characters and are at most 1 KiB.
_SAFE_KEY = re.compile(r"[A-Za-z0-9._:@=+-]{1,200}")

_ENSURED: Final[weakref.WeakKeyDictionary[Any, set[str]]] = weakref.WeakKeyDictionary()
_ENSURING: Final = threading.Lock()


def ensure_table(tables: TableServiceClient, name: str) -> TableClient:
    """The table client, creating the table on first use per process (Bicep creates it in Azure)."""
    done = _ENSURED.setdefault(tables, set())
    if name not in done:
        with _ENSURING:  # the first invocations arrive together: one request, not one each
            if name not in done:
                tables.create_table_if_not_exists(name)
                done.add(name)
    return table_client(tables, name)


def insert(tables: TableServiceClient, name: str, entity: dict[str, Any]) -> Any:
    """``create_entity`` on table ``name`` without asking first whether the table exists.

    The insert of an event's row is the first storage request of a process's first queue
    message; in Azure, Bicep has created the table, so asking first would be a request (and a
    round trip on that first message) for nothing. A missing table (locally, on Azurite) is
    created when the insert says so, and the insert made again. Returns the SDK's metadata.
    """
    client = table_client(tables, name)
    try:
        return client.create_entity(entity)
    except ResourceNotFoundError:  # TableNotFound: nothing else makes an insert answer 404
        tables.create_table_if_not_exists(name)
        _ENSURED.setdefault(tables, set()).add(name)
        return client.create_entity(entity)


def forget_tables() -> None:
    """Forget which tables exist (tests delete them between cases)."""
    _ENSURED.clear()


def record_key(key: str) -> str:
    """``key`` as a table key: itself when it is safe as one, else its SHA-256."""
    if _SAFE_KEY.fullmatch(key):
        return key
    return "sha256-" + hashlib.sha256(key.encode("utf-8")).hexdigest()
