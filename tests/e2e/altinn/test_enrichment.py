"""Enrichment through the local runner and Azurite: a handler fetches the dialog from the simulator.

The simulator's Dialogporten answers as Dialogporten does before ``visibleFrom`` (404 + ``Expires``):
the message waits, invisible, without spending its attempts (host.json here allows 5 attempts one
second apart, far less than the wait), and the handler gets the dialog once it is visible. Past the
maximum wait the attempts count again and the message ends in poison with the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.dialogporten import sample_dialog
from shared.events.catalog import BY_TYPE, poison_queue_for
from shared.stores.clients import StorageClients
from tests.conftest import load_fixture
from tests.e2e.harness import Runner, post, recorded, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

#: A user's handler module, as the README shows it: the dialog in one line.
FETCHER = """
import json, os
from shared.events import DialogCreated
from shared.handlers.registry import HandlerContext, handles

@handles(DialogCreated, effects=os.environ.get("E2E_EFFECTS", "1") == "1")
def on_created(event: DialogCreated, ctx: HandlerContext) -> None:
    dialog = ctx.fetch_dialog(event)
    with open(os.environ["E2E_RECORD"], "a") as f:
        f.write(json.dumps({"id": event.id, "status": str(dialog.status), "revision": str(dialog.revision),
                            "dequeue_count": ctx.dequeue_count}) + "\\n")
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Options(port=0)) as simulator:
        simulator.register(Client("e2e-client", "e2e-kid", KEY.public_key()))
        simulator.dialogporten.hide_until_visible = True
        yield simulator


@pytest.fixture
def enriched(workdir: Path, start_runner: Callable[..., Runner], sim: Simulator) -> Callable[..., Runner]:
    handlers = workdir / "site" / "handlers"
    (handlers / "e2e_recorder.py").unlink()  # this test's handler records instead
    (handlers / "e2e_fetch.py").write_text(FETCHER, encoding="utf-8")

    def start(**env: str) -> Runner:
        settings = {
            "ALTINN_ENVIRONMENT": sim.base_url,
            "MASKINPORTEN_CLIENT_ID": "e2e-client",
            "MASKINPORTEN_KID": "e2e-kid",
            "MASKINPORTEN_KEY": PEM.decode(),
        }
        return start_runner(**{**settings, **env})

    return start


def created_event(dialog_id: str) -> dict[str, Any]:
    event: dict[str, Any] = load_fixture("dialog-created.json")
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    base = "https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs/"
    return {**event, "id": str(uuid.uuid4()), "time": now, "resourceinstance": dialog_id, "source": base + dialog_id}


@pytest.mark.parametrize("effects", ["1", "0"], ids=["claimed", "effects=False"])
def test_a_dialog_not_yet_visible_waits_without_spending_attempts_and_is_then_fetched(
    sim: Simulator, enriched: Callable[..., Runner], workdir: Path, effects: str
) -> None:
    visible = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=9)
    dialog = sample_dialog(visible_from=visible, status="Awaiting")
    sim.dialogporten.put(dialog)
    runner = enriched(E2E_EFFECTS=effects)
    event = created_event(dialog["id"])
    assert post(runner, event) == 200

    (seen,) = wait_for("the handler's record", lambda: recorded(workdir), runner, timeout=40)
    assert seen == {"id": event["id"], "status": "Awaiting", "revision": dialog["revision"], "dequeue_count": 1}
    assert datetime.now(UTC) >= visible
    lines = [x for x in runner.process_lines() if x.get("event_id") == event["id"]]
    put_back = [x for x in lines if x["outcome"] == "retry"]
    assert put_back  # fetched before visibleFrom, put back until Expires; then handled
    for line in put_back:
        assert "put back, visible again in" in line["reason"]
        assert line["dialog_id"] == dialog["id"]
        assert line["dequeue_count"] == 1  # never a spent attempt
    # Unclaimed (effects=False), the default dialog-state handler ran on the first try too and says
    # so on the second: processing then logs the event as a duplicate, after the fetching handler ran.
    assert lines[-1]["outcome"] == ("handled" if effects == "1" else "duplicate")
    statuses = [a.status for _, a in sim.dialogporten.responses]
    assert statuses[-1] == 200
    assert set(statuses[:-1]) == {404}


def test_past_the_maximum_wait_the_attempts_count_and_the_message_is_poisoned_with_the_reason(
    sim: Simulator, enriched: Callable[..., Runner], clients: StorageClients
) -> None:
    dialog = sample_dialog(visible_from=datetime.now(UTC) + timedelta(hours=1))
    sim.dialogporten.put(dialog)
    runner = enriched(DIALOG_NOT_VISIBLE_MAX_WAIT_SECONDS="1")
    event = created_event(dialog["id"])
    assert post(runner, event) == 200
    poison = clients.queue(poison_queue_for(BY_TYPE[event["type"]].queue))

    def poisoned() -> list[Any]:
        return [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]

    wait_for(
        "the poisoned line",
        lambda: any(x.get("outcome") == "poisoned" for x in runner.process_lines()),
        runner,
        timeout=40,
    )
    assert [m["id"] for m in poisoned()] == [event["id"]]  # the untouched event, kept
    lines = [x for x in runner.process_lines() if x.get("event_id") == event["id"]]
    assert lines[-1]["outcome"] == "poisoned"
    assert "is not visible until" in lines[-1]["reason"]
    assert lines[-1]["dequeue_count"] == 5


def test_with_no_maskinporten_settings_a_handler_that_fetches_is_poisoned_with_a_clear_reason(
    workdir: Path, start_runner: Callable[..., Runner], clients: StorageClients
) -> None:
    handlers = workdir / "site" / "handlers"
    (handlers / "e2e_recorder.py").unlink()  # this test's handler records instead
    (handlers / "e2e_fetch.py").write_text(FETCHER, encoding="utf-8")
    runner = start_runner()
    event = created_event(str(uuid.uuid4()))
    assert post(runner, event) == 200
    lines = wait_for(
        "the poisoned line",
        lambda: [x for x in runner.process_lines() if x.get("event_id") == event["id"] and x["outcome"] == "poisoned"],
        runner,
    )
    assert "Maskinporten is not configured" in lines[0]["reason"]
    assert lines[0]["dequeue_count"] == 1  # permanent: no retries
