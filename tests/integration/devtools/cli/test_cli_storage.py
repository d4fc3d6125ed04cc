"""dpctl against Azurite (and the simulator for catch-up): status, dialogs show, catch-up through the webhook's core."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared.events.catalog import BY_TYPE, UNROUTED_QUEUE
from shared.events.models import parse_event
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DialogStore
from tests.cli_support import dpctl
from tests.sim_support import CLIENT_ID, KEY, KID

pytestmark = pytest.mark.azurite
RESOURCE = "urn:altinn:resource:super-simple-service"
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture
def env(azurite: Azurite) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # Altinn holds an event back 30 s after it is registered; these tests read what they publish at once.
    with Simulator(Options(port=0, events_hold_back=0)) as simulator:
        simulator.register(Client(CLIENT_ID, KID, KEY.public_key()))
        yield simulator


def test_status_exits_0_when_clean_and_3_when_something_is_poisoned_or_parked(
    clients: StorageClients, env: dict[str, str]
) -> None:
    clean = dpctl("status", "--json", env=env)
    assert clean.code == 0
    assert (clean.json()["poisoned"], clean.json()["parked"]) == (0, 0)
    queue = BY_TYPE["dialogporten.dialog.seen.v1"].queue
    storage.send_creating_queue(clients.queue(queue), json.dumps(sample_event("dialogporten.dialog.seen.v1")))
    waiting = dpctl("status", "--json", env=env)
    assert waiting.code == 0  # work waiting is not trouble
    [row] = [r for r in waiting.json()["queues"] if r["queue"] == queue]
    assert row["depth"] == 1
    assert row["oldestAgeSeconds"] is not None

    storage.send_creating_queue(clients.queue(queue + "-poison"), "x")
    poisoned = dpctl("status", env=env)
    assert poisoned.code == 3
    assert "poisoned: 1, parked: 0" in poisoned.out

    clients.queue(queue + "-poison").clear_messages()
    storage.send_creating_queue(clients.queue(UNROUTED_QUEUE), "{}")
    parked = dpctl("status", "--json", env=env)
    assert (parked.code, parked.json()["parked"]) == (3, 1)


def test_dialogs_show_prints_the_row_or_says_there_is_none(clients: StorageClients, env: dict[str, str]) -> None:
    dialog = str(uuid.uuid4())
    DialogStore(clients.tables).record(parse_event(sample_event("dialogporten.dialog.created.v1", dialog_id=dialog)))
    shown = dpctl("dialogs", "show", dialog, "--json", env=env)
    assert shown.code == 0
    assert (shown.json()["dialogId"], shown.json()["eventsApplied"]) == (dialog, 1)
    missing = dpctl("dialogs", "show", str(uuid.uuid4()), env=env)
    assert missing.code == 1
    assert "no event has been applied" in missing.err
    assert dpctl("dialogs", "show", "nope", env=env).code == 1


def _queued(clients: StorageClients, event_type: str) -> list[dict[str, object]]:
    client = clients.queue(BY_TYPE[event_type].queue)
    try:
        return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]
    except Exception:
        return []


def test_catch_up_queues_every_event_as_the_webhook_would_and_prints_the_cursor(
    clients: StorageClients, env: dict[str, str], sim: Simulator
) -> None:
    created = [sample_event("dialogporten.dialog.created.v1", time=f"2026-03-16T11:00:0{i}.1234567Z") for i in range(3)]
    unknown = {**sample_event("dialogporten.dialog.seen.v1"), "type": "dialogporten.dialog.future.v9"}
    invalid = {**sample_event("dialogporten.dialog.seen.v1"), "time": "yesterday"}
    for event in [*created, unknown, invalid]:
        sim.publish(event)
    sim.publish(sample_event("dialogporten.dialog.created.v1", resource="urn:altinn:resource:other"))
    cli_env = {
        **env,
        "ALTINN_SIM_URL": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KID": KID,
        "MASKINPORTEN_KEY": PEM.decode(),
    }
    ran = dpctl("catch-up", "--resource", RESOURCE, "--since", "0", "--size", "2", "--json", env=cli_env)
    assert ran.code == 0, ran.err
    result = ran.json()
    assert (result["read"], result["accepted"], result["parked"], result["rejected"]) == (5, 3, 1, 1)
    assert result["rejectedEvents"][0]["eventId"] == invalid["id"]
    assert result["rejectedEvents"][0]["status"] == 400
    assert result["cursor"] == invalid["id"]
    # A page's sends run concurrently, as a batch's do: the queue holds every event, in no promised order.
    assert sorted(str(e["id"]) for e in _queued(clients, "dialogporten.dialog.created.v1")) == sorted(
        e["id"] for e in created
    )
    parked = [json.loads(m.content) for m in clients.queue(UNROUTED_QUEUE).peek_messages()]
    assert [e["id"] for e in parked] == [unknown["id"]]
    raw = clients.queues.get_queue_client(BY_TYPE["dialogporten.dialog.created.v1"].queue).peek_messages()
    assert json.loads(base64.b64decode(next(iter(raw)).content)) in created  # base64, as the webhook writes

    later = sample_event("dialogporten.dialog.created.v1")
    sim.publish(later)
    resumed = dpctl("catch-up", "--resource", RESOURCE, "--since", result["cursor"], "--json", env=cli_env).json()
    assert (resumed["read"], resumed["accepted"], resumed["cursor"]) == (1, 1, later["id"])

    by_time = dpctl(
        "catch-up", "--resource", RESOURCE, "--since", "2026-03-16T11:00:01.5Z", "--json", env=cli_env
    ).json()
    assert by_time["beforeSince"] == 2  # 11:00:00 and 11:00:01; the rest are queued again (the handlers deduplicate)
    assert by_time["accepted"] == 2


def test_catch_up_with_storage_down_stops_and_says_where_to_resume(sim: Simulator, azurite: Azurite) -> None:
    sim.publish(sample_event("dialogporten.dialog.created.v1"))
    dead = Azurite.on_free_ports()  # never started: nothing listens there
    cli_env = {
        "AzureWebJobsStorage": dead.connection_string,
        "ALTINN_SIM_URL": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KID": KID,
        "MASKINPORTEN_KEY": PEM.decode(),
    }
    ran = dpctl("catch-up", "--resource", RESOURCE, "--since", "0", env=cli_env)
    assert ran.code == 1
    assert "resume with: dpctl catch-up --resource urn:altinn:resource:super-simple-service --since 0" in ran.err
    assert "storage refused event" in ran.err
