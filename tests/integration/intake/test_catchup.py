"""Catch-up over real HTTP against the Altinn simulator's events API, onto a real Azurite.

The simulator's events API follows Altinn/altinn-events' own code (``devtools/altinn_sim/events.py`` cites
each file): a page is read ``size`` events at a time and only then are the caller's invisible events dropped,
so a short page comes in the middle of the stream; the end is an empty page.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared import settings
from shared.altinn import clients as enrichment
from shared.altinn.events_api import EventsApi, Page
from shared.altinn.maskinporten import AltinnExchange, MaskinportenClient, SigningKey, simulated
from shared.errors import CatchUpFailed
from shared.events import catalog
from shared.functions import catchup as timer
from shared.intake.catchup import catch_up
from shared.intake.plan import Policy
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from shared.stores.cursors import CursorStore, Saved
from shared.stores.sink import QueueSink
from tests.cli_support import dpctl
from tests.http_support import Trap

pytestmark = pytest.mark.azurite

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
RESOURCE = "urn:altinn:resource:super-simple-service"
CREATED = "dialogporten.dialog.created.v1"
QUEUE = catalog.queue_name_for(CREATED)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # Altinn holds an event back 30 s after it is registered; these tests read what they register at once.
    with Simulator(Options(port=0, events_hold_back=0)) as simulator:
        simulator.register(Client("catchup-client", "catchup-kid", KEY.public_key()))
        yield simulator


def tokens(sim: Simulator) -> AltinnExchange:
    scope = "altinn:events.subscribe altinn:serviceowner"
    return AltinnExchange(
        MaskinportenClient("catchup-client", SigningKey(KEY, "catchup-kid"), scope, simulated(sim.base_url))
    )


def event(age: timedelta = timedelta(0), resource: str = RESOURCE) -> dict[str, Any]:
    moment = (datetime.now(UTC) - age).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return sample_event(CREATED, time=moment, resource=resource)


def queued_ids(clients: StorageClients, queue: str = QUEUE) -> list[str]:
    """Every message's event id, read off the queue (and left invisible: each test has its own Azurite names)."""
    client = clients.queues.get_queue_client(queue)
    ids = []
    for message in client.receive_messages(messages_per_page=32, visibility_timeout=300):
        ids.append(json.loads(base64.b64decode(message.content))["id"])
    return ids


def app_settings(sim: Simulator, azurite: Azurite, resources: list[str]) -> settings.Settings:
    return settings.load(
        {
            settings.STORAGE_CONNECTION: azurite.connection_string,
            "ALTINN_ENVIRONMENT": sim.base_url,
            "MASKINPORTEN_CLIENT_ID": "catchup-client",
            "MASKINPORTEN_KID": "catchup-kid",
            "MASKINPORTEN_KEY": PEM.decode(),
            "CATCHUP_RESOURCES": ",".join(resources),
        }
    )


def cli_env(sim: Simulator, azurite: Azurite) -> dict[str, str]:
    """dpctl's environment: the simulator, its registered client, and the test's Azurite."""
    return {
        "ALTINN_SIM_URL": sim.base_url,
        settings.STORAGE_CONNECTION: azurite.connection_string,
        "MASKINPORTEN_CLIENT_ID": "catchup-client",
        "MASKINPORTEN_KID": "catchup-kid",
        "MASKINPORTEN_KEY": PEM.decode(),
        "MASKINPORTEN_KEY_FILE": "",
    }


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The timer reads pages of 5 instead of 1000, so a stream of a few dozen events spans many pages."""

    def events_api(cfg: settings.MaskinportenSettings) -> EventsApi:
        return EventsApi(enrichment.environment(cfg).platform, enrichment.events_tokens(cfg), size=5)

    monkeypatch.setattr(enrichment, "events_api", events_api)
    enrichment._events_tokens.cache_clear()
    yield
    enrichment._events_tokens.cache_clear()


def test_a_short_page_in_the_middle_of_the_stream_is_not_its_end(sim: Simulator, clients: StorageClients) -> None:
    events = [event() for _ in range(40)]
    for e in events:
        sim.events.append(e)
    # Altinn drops what the caller may not see after reading `size` events: pages 1, 3 and 5 come back short.
    hidden = {events[i]["id"] for i in (1, 2, 11, 20, 21, 22, 23)}
    sim.events.invisible_ids = hidden
    api = EventsApi(sim.base_url, tokens(sim), size=5)

    result = catch_up(RESOURCE, "0", api=api, sink=QueueSink(clients), policy=Policy())

    visible = [e["id"] for e in events if e["id"] not in hidden]
    assert result.complete
    assert (result.counts["read"], result.counts["accepted"]) == (len(visible), len(visible))
    assert sorted(queued_ids(clients)) == sorted(visible)
    assert result.cursor == visible[-1]
    assert result.requests == sim.events.requests  # every page, then the empty one that ends the stream


def test_a_page_goes_onto_the_queues_and_the_cursor_stops_before_the_first_event_not_stored(
    sim: Simulator, clients: StorageClients
) -> None:
    events = [event() for _ in range(12)]
    for e in events:
        sim.events.append(e)

    class FailsOn:
        """Storage that refuses one event: nothing after the last event stored may be skipped by the cursor."""

        def __init__(self, sink: QueueSink, refused: str) -> None:
            self.sink, self.refused = sink, refused

        def put(self, queue: str, body: str, cloud_event: Any) -> None:
            from shared.intake.plan import StorageUnavailable

            if cloud_event.id == self.refused:
                raise StorageUnavailable("ServiceRequestError: storage down")
            self.sink.put(queue, body, cloud_event)

    api = EventsApi(sim.base_url, tokens(sim), size=100)
    with pytest.raises(Exception, match=r"storage refused event .*: ServiceRequestError: storage down") as caught:
        catch_up(RESOURCE, "0", api=api, sink=FailsOn(QueueSink(clients), events[7]["id"]), policy=Policy())
    assert caught.value.cursor == events[6]["id"]  # type: ignore[attr-defined]
    assert {e["id"] for e in events[:7]} <= set(queued_ids(clients))


def test_the_first_run_look_back_holds_over_a_cut_short_first_catch_up(
    sim: Simulator, clients: StorageClients, azurite: Azurite, small_pages: None
) -> None:
    old = [event(age=timedelta(days=3)) for _ in range(3)]  # older than the look-back (2 days)
    new = [event() for _ in range(4)]
    for e in [old[0], new[0], old[1], new[1], new[2], old[2], new[3]]:
        sim.events.append(e)
    cfg = app_settings(sim, azurite, [RESOURCE])
    sim.events.script[RESOURCE] = [None, (503, b'{"title":"Service Unavailable"}')]  # page 2 of run 1 fails

    (first,) = timer.run(cfg, clients)
    assert (first["outcome"], first["cursor"], first["accepted"]) == ("failed", new[2]["id"], 3)
    saved = CursorStore(clients.tables).get(RESOURCE)
    assert saved is not None
    assert saved.cursor == new[2]["id"]
    assert saved.skip_before is not None  # the first catch-up is not over: its look-back is kept

    (second,) = timer.run(cfg, clients)
    assert (second["outcome"], second["complete"]) == ("caught_up", True)
    assert 0 <= second["lag_seconds"] < 60  # the newest event read is a few seconds old
    assert (second["before_since"], second["accepted"]) == (1, 1)  # old[2] is still before the look-back
    assert sorted(queued_ids(clients)) == sorted(e["id"] for e in new)
    assert CursorStore(clients.tables).get(RESOURCE) == Saved(new[3]["id"])  # the look-back is over

    later = event(age=timedelta(days=3))  # once caught up, every event is new, whatever its time
    sim.events.append(later)
    (third,) = timer.run(cfg, clients)
    assert (third["accepted"], third["before_since"]) == (1, 0)


def test_one_resource_failing_stays_its_own_and_the_run_fails_after_every_resource(
    sim: Simulator,
    clients: StorageClients,
    azurite: Azurite,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy, down, broken, refused = (
        f"urn:altinn:resource:{name}" for name in ("healthy", "down", "broken", "refused")
    )
    events = {r: [event(resource=r) for _ in range(3)] for r in (healthy, down, broken, refused)}
    for batch in events.values():
        for e in batch:
            sim.events.append(e)
    sim.events.script[down] = [(502, b"Bad Gateway")]
    sim.events.script[broken] = [(200, b'{"events": []}')]
    sim.events.script[refused] = [(401, b""), (401, b"")]  # still refused after one fresh token
    cfg = app_settings(sim, azurite, [healthy, down, broken, refused])
    enrichment._events_tokens.cache_clear()
    enrichment._events_api.cache_clear()

    with caplog.at_level(logging.INFO, logger="dialogporten"):
        summaries = {s["resource"]: s for s in timer.run(cfg, clients)}

    assert summaries[healthy]["outcome"] == "caught_up"
    assert summaries[healthy]["accepted"] == 3
    assert sorted(queued_ids(clients)) == sorted(e["id"] for e in events[healthy])
    reasons = {
        down: "502 Bad Gateway",
        broken: "not an array",
        refused: "401",
    }
    failed_lines = [json.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records if '"failed"' in r.getMessage()]
    for resource, reason in reasons.items():
        assert summaries[resource]["outcome"] == "failed"
        assert reason in summaries[resource]["reason"]
        (line,) = [line for line in failed_lines if line["resource"] == resource]
        assert (line["cursor"], reason in line["reason"]) == ("0", True)  # logged with the resource and the cursor

    # Through the timer itself the run fails after every resource had its turn, so the host records it.
    monkeypatch.setattr(settings, "current", lambda: cfg)
    monkeypatch.setattr(storage, "current", lambda: clients)
    sim.events.script[down] = [(503, b"")]
    with pytest.raises(CatchUpFailed, match=down):
        timer.catch_up_events(None)


def test_a_refused_next_link_ends_the_run_with_the_page_queued_and_the_cursor_saved(
    sim: Simulator, clients: StorageClients, trap: Trap
) -> None:
    events = [event() for _ in range(7)]
    for e in events:
        sim.events.append(e)
    sim.events.next_base = trap.url  # Altinn builds `next` from its configured base URL
    api = EventsApi(sim.base_url, tokens(sim), size=5)
    saved: list[str] = []

    with pytest.raises(Exception, match="refused to follow the next link") as caught:
        catch_up(
            RESOURCE, "0", api=api, sink=QueueSink(clients), policy=Policy(), on_page=lambda r: saved.append(r.cursor)
        )

    assert caught.value.cursor == events[4]["id"] == saved[-1]  # type: ignore[attr-defined]
    assert sorted(queued_ids(clients)) == sorted(e["id"] for e in events[:5])
    assert trap.requests == []  # nothing, and no token, went to the other port


@pytest.fixture
def trap() -> Iterator[Trap]:
    with Trap() as server:
        yield server


def test_the_cursor_never_stalls_on_a_page_whose_events_have_no_id() -> None:
    """Altinn's events always have ids; were one page's not to, reading must stop, not ask for that page forever."""

    class NoIds:
        requests = 0

        def page(self, resource: str, after: str) -> Page:
            self.requests += 1
            return Page(
                [{"specversion": "1.0", "type": CREATED}], "https://platform.tt02.altinn.no/events/api/v1/events"
            )

    class Nowhere:
        def put(self, queue: str, body: str, cloud_event: Any) -> None:
            raise AssertionError("an invalid event is never sent")

    api = NoIds()
    with pytest.raises(Exception, match="no usable id"):
        catch_up(RESOURCE, "0", api=api, sink=Nowhere(), policy=Policy(), max_seconds=5)  # type: ignore[arg-type]
    assert api.requests == 1


def test_dpctl_catch_up_reads_past_short_pages_to_the_end(
    sim: Simulator, clients: StorageClients, azurite: Azurite
) -> None:
    events = [event() for _ in range(23)]
    for e in events:
        sim.events.append(e)
    # A third of the stream is not the caller's to see, never a whole page in a row (Altinn would then answer
    # an empty page mid-stream, which no client can tell from the end: see docs/operations.md, catch-up's limits).
    sim.events.invisible_ids = {e["id"] for i, e in enumerate(events) if i % 3 == 1}
    visible = [e["id"] for e in events if sim.events.visible(e)]
    assert 0 < len(visible) < len(events)
    env = cli_env(sim, azurite)
    ran = dpctl("catch-up", "--resource", RESOURCE, "--since", "0", "--size", "5", "--json", env=env)
    assert ran.code == 0, ran.err
    result = ran.json()
    assert (result["read"], result["accepted"], result["cursor"]) == (len(visible), len(visible), visible[-1])
    assert sorted(queued_ids(clients)) == sorted(visible)


def test_dpctl_catch_up_holds_events_to_the_apps_own_clock_skew_setting(
    sim: Simulator, clients: StorageClients, azurite: Azurite
) -> None:
    ahead = event(age=-timedelta(minutes=30))  # 30 minutes ahead of this clock
    sim.events.append(ahead)
    env = cli_env(sim, azurite)
    strict = dpctl("catch-up", "--resource", RESOURCE, "--since", "0", "--json", env=env)  # the default, 300 s
    assert (strict.code, strict.json()["rejected"]) == (0, 1)
    lenient = dpctl(
        "catch-up", "--resource", RESOURCE, "--since", "0", "--json", env=env | {"MAX_CLOCK_SKEW_SECONDS": "3600"}
    )
    assert (lenient.code, lenient.json()["accepted"], lenient.json()["rejected"]) == (0, 1, 0)
    assert queued_ids(clients) == [ahead["id"]]
