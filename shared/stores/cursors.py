"""Where catch-up resumes, per resource: the ``catchup`` table.

One row per resource (``PartitionKey`` ``cursor``): the id of the last event that is on the queues, and,
while a resource's first catch-up lasts, its look-back (``SkipBefore``), so that it holds over every run
that first catch-up takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

__all__ = ["CATCHUP_TABLE", "CursorStore", "Saved"]

CATCHUP_TABLE: Final = "catchup"


@dataclass(frozen=True, slots=True)
class Saved:
    """Where a resource's catch-up resumes, and the look-back of its first catch-up while that lasts."""

    cursor: str
    skip_before: datetime | None = None


class CursorStore:
    """Where the timer resumes, per resource: table :data:`CATCHUP_TABLE`, ``PartitionKey`` ``cursor``.

    ``SkipBefore`` is written with the first cursor and kept until a run reaches the end of the stream,
    so the first catch-up's look-back holds over every run it takes.
    """

    PARTITION: Final = "cursor"

    def __init__(self, tables: TableServiceClient) -> None:
        from shared.stores.tables import ensure_table

        self._table = ensure_table(tables, CATCHUP_TABLE)

    @staticmethod
    def _row_key(resource: str) -> str:
        # RowKey forbids / \ # ? and control characters; resource URNs are letters, digits, ':' '-' '_'.
        return re.sub(r"[/\\#?\x00-\x1f\x7f]", "_", resource)

    def get(self, resource: str) -> Saved | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            row = self._table.get_entity(self.PARTITION, self._row_key(resource))
        except ResourceNotFoundError:
            return None
        skip = row.get("SkipBefore")
        return Saved(str(row["Cursor"]), skip.astimezone(UTC) if isinstance(skip, datetime) else None)

    def put(self, resource: str, saved: Saved) -> None:
        from azure.data.tables import UpdateMode

        entity: dict[str, Any] = {
            "PartitionKey": self.PARTITION,
            "RowKey": self._row_key(resource),
            "Resource": resource,
            "Cursor": saved.cursor,
            "SavedAt": datetime.now(UTC),
        }
        if saved.skip_before is not None:
            entity["SkipBefore"] = saved.skip_before
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
