"""The async storage SDK (``.aio`` over aiohttp) beside the synchronous one, on the operation the default
path adds per event: one table insert. Same account, same concurrency, interleaved rounds."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devtools.azurite import Azurite
from devtools.bench.common import spread, table
from shared import settings
from shared.stores import clients as storage


def _entities(count: int) -> list[dict[str, Any]]:
    dialogs = [str(uuid.uuid4()) for _ in range(max(1, count // 10))]
    return [{"PartitionKey": dialogs[i % len(dialogs)], "RowKey": uuid.uuid4().hex, "n": i} for i in range(count)]


def sync_inserts(clients: storage.StorageClients, name: str, count: int, concurrency: int) -> float:
    """Events/s: ``concurrency`` threads inserting through the app's own (synchronous) table client."""
    clients.tables.create_table_if_not_exists(name)
    client = clients.table(name)
    entities = _entities(count)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(client.create_entity, entities))
    return count / (time.perf_counter() - started)


def async_inserts(connection_string: str, name: str, count: int, concurrency: int) -> float:
    """Events/s: one event loop, ``concurrency`` inserts in flight through ``azure.data.tables.aio``."""
    from azure.data.tables.aio import TableServiceClient

    entities = _entities(count)

    async def run() -> float:
        async with TableServiceClient.from_connection_string(connection_string) as service:
            await service.create_table_if_not_exists(name)
            client = service.get_table_client(name)  # once, before any request is in flight
            limit = asyncio.Semaphore(concurrency)

            async def one(entity: dict[str, Any]) -> None:
                async with limit:
                    await client.create_entity(entity)

            started = time.perf_counter()
            await asyncio.gather(*(one(e) for e in entities))
            return count / (time.perf_counter() - started)

    result: list[float] = []
    # A thread of its own, so that a caller's running event loop (if any) is not in the way.
    worker = threading.Thread(target=lambda: result.append(asyncio.run(run())))
    worker.start()
    worker.join()
    return result[0]


def report(count: int = 1000, concurrency: int = 24, rounds: int = 3) -> str:
    try:
        import aiohttp  # noqa: F401 - the async SDK's transport
    except ImportError:
        return "## Async storage SDK\n\nSkipped: aiohttp is not installed (`make install` installs it).\n"
    sync_rates: list[float] = []
    async_rates: list[float] = []
    for round_no in range(rounds):
        with Azurite.on_free_ports() as azurite:
            clients = storage.build(settings.load({settings.STORAGE_CONNECTION: azurite.connection_string}))
            # Which goes first alternates: Azurite slows as it fills, which would favour the first.
            if round_no % 2:
                async_rates.append(async_inserts(azurite.connection_string, "benchasync", count, concurrency))
                sync_rates.append(sync_inserts(clients, "benchsync", count, concurrency))
            else:
                sync_rates.append(sync_inserts(clients, "benchsync", count, concurrency))
                async_rates.append(async_inserts(azurite.connection_string, "benchasync", count, concurrency))
    ratios = [a / s for a, s in zip(async_rates, sync_rates, strict=True)]

    return "\n".join(
        [
            "## Async storage SDK",
            "",
            f"{count} table inserts (the default path's one write per event), {concurrency} in flight, "
            f"{rounds} rounds, both on the same fresh Azurite each round, which first alternating:",
            "",
            table(
                [
                    ("client", "inserts/s min / median / max"),
                    ("sync TableClient, 24 threads (the app's)", spread(sync_rates, ".0f")),
                    ("azure.data.tables.aio, one event loop", spread(async_rates, ".0f")),
                    ("async / sync (same round)", spread(ratios, ".2f")),
                ]
            ),
            "",
        ]
    )


if __name__ == "__main__":
    print(report())
