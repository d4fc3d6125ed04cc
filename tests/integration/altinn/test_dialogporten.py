"""The Dialogporten client against the simulator's Dialogporten fake and its Maskinporten.

Every answer the fake gave in a test is checked against the pinned OpenAPI document afterwards,
so the fake cannot drift from Dialogporten's contract.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.dialogporten import sample_dialog
from devtools.checks import dialogporten_schema as schema
from shared.altinn import dialogporten as dp
from shared.altinn import maskinporten as mp
from shared.errors import RetryLater
from tests.sim_support import CLIENT_ID, KEY, KID


@pytest.fixture(autouse=True)
def every_answer_matches_the_openapi_document(sim: Simulator) -> Iterator[None]:
    yield
    document = schema.pinned()
    for route, answer in sim.dialogporten.responses:
        schema.validate_answer(
            document, route, "GET", status=answer.status, content_type=answer.content_type, body=answer.body
        )


def tokens(sim: Simulator, scope: str = dp.SCOPE, margin: float = mp.DEFAULT_REFRESH_MARGIN) -> mp.MaskinportenClient:
    return mp.MaskinportenClient(CLIENT_ID, mp.SigningKey(KEY, KID), scope, mp.simulated(sim.base_url), margin=margin)


def client(sim: Simulator, **kwargs: Any) -> dp.DialogportenClient:
    return dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim), **kwargs)


def test_a_dialog_is_fetched_and_typed(sim: Simulator) -> None:
    raw = sample_dialog(status="RequiresAttention")
    sim.dialogporten.put(raw)
    dialog = client(sim).get_dialog(raw["id"])
    assert isinstance(dialog, dp.Dialog)
    assert dialog.id == uuid.UUID(raw["id"])
    assert dialog.revision == uuid.UUID(raw["revision"])
    assert dialog.status is dp.DialogStatus.REQUIRES_ATTENTION
    assert dialog.service_resource == raw["serviceResource"]
    assert dialog.activities is not None
    assert dialog.activities[0].type is dp.ActivityType.DIALOG_CREATED
    assert dialog.model_extra == {"hasUnopenedContent": False, "isApiOnly": False}  # unknown fields are kept
    assert not dialog.deleted


def test_a_deleted_dialog_comes_back_typed_with_deleted_at(sim: Simulator) -> None:
    """DP-SO-DELETED: the service-owner GET answers 200 with ``deletedAt`` (never the end-user API's 410)."""
    raw = sample_dialog(deleted_at=datetime.now(UTC))
    sim.dialogporten.put(raw)
    fetched = client(sim).get_dialog(raw["id"])
    assert isinstance(fetched, dp.Dialog)
    assert fetched.deleted
    assert fetched.deleted_at is not None
    assert [a.status for _, a in sim.dialogporten.responses] == [200]


def test_a_dialog_not_yet_visible_comes_back_typed_and_says_so(sim: Simulator) -> None:
    """DP-SO-NOTVISIBLE: 200 before ``visibleFrom`` (never the end-user API's 404 with ``Expires``)."""
    visible = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    raw = sample_dialog(visible_from=visible)
    sim.dialogporten.put(raw)
    early = client(sim).get_dialog(raw["id"])
    assert (early.visible_from, early.is_visible, early.deleted) == (visible, False, False)
    sim.dialogporten.put(sample_dialog(raw["id"], visible_from=datetime.now(UTC) - timedelta(seconds=1)))
    assert client(sim).get_dialog(raw["id"]).is_visible
    assert client(sim).get_dialog(sample_dialog_put(sim)).is_visible  # no visibleFrom at all: visible


def sample_dialog_put(sim: Simulator) -> str:
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    return str(raw["id"])


def test_a_short_maintenance_window_is_waited_out_in_process(sim: Simulator) -> None:
    """DP-MAINT: 503 text/plain with ``Retry-After`` as an RFC 1123 date; within the call's 15 s, it waits."""
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    sim.dialogporten.maintenance(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2))
    started = time.monotonic()
    assert isinstance(client(sim).get_dialog(raw["id"]), dp.Dialog)
    assert time.monotonic() - started >= 0.9  # it waited as told before asking again
    assert [a.status for _, a in sim.dialogporten.responses] == [503, 200]


def test_a_long_maintenance_window_is_a_retry_later_until_its_announced_end(sim: Simulator) -> None:
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    sim.dialogporten.maintenance(end)
    started = time.monotonic()
    with pytest.raises(RetryLater) as later:
        client(sim).get_dialog(raw["id"])
    assert time.monotonic() - started < 5
    assert later.value.until == end
    assert not isinstance(later.value, dp.PermanentError)
    assert sim.dialogporten.requests == 1  # asked once: nothing to gain from asking again before the end


def test_a_maintenance_window_without_an_announced_end_is_an_ordinary_transient_failure(sim: Simulator) -> None:
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    sim.dialogporten.maintenance(datetime.now(UTC) + timedelta(hours=1), announce=False)
    slept: list[float] = []
    with pytest.raises(dp.DialogportenUnavailable) as unavailable:
        client(sim, sleep=slept.append).get_dialog(raw["id"])
    assert not isinstance(unavailable.value, RetryLater)
    assert sim.dialogporten.requests == dp.MAX_ATTEMPTS
    assert slept == [2.0, 4.0]  # backing off in the call, then left to the queue's retry


def test_a_token_the_server_no_longer_takes_is_refreshed_once() -> None:
    # Tokens live 1 s, and Dialogporten allows 2 s of clock skew; the client, like one whose clock runs behind,
    # keeps using them 5 s too long.
    with Simulator(Options(port=0, token_lifetime=1)) as sim:
        sim.register(Client(CLIENT_ID, KID, KEY.public_key()))
        raw = sample_dialog()
        sim.dialogporten.put(raw)
        dialogs = dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim, margin=-5))
        assert isinstance(dialogs.get_dialog(raw["id"]), dp.Dialog)
        time.sleep(3.2)
        assert isinstance(dialogs.get_dialog(raw["id"]), dp.Dialog)
        assert sim.tokens.issued == 2  # one fresh token after the 401
        assert [a.status for _, a in sim.dialogporten.responses] == [200, 401, 200]
        for route, answer in sim.dialogporten.responses:
            schema.validate_answer(
                schema.pinned(), route, "GET", status=answer.status, content_type=answer.content_type, body=answer.body
            )


def test_a_second_401_is_permanent_after_exactly_one_refresh(sim: Simulator) -> None:
    raw = sample_dialog()
    sim.dialogporten.put(raw)

    class Refused:
        """A token Dialogporten never takes (DP-AUTH-401), however often it is renewed."""

        invalidated = 0

        def token(self) -> mp.Token:
            return mp.Token("not.a.token", time.time() + 60)

        def invalidate(self) -> None:
            self.invalidated += 1

    tokens_ = Refused()
    with pytest.raises(dp.DialogportenRefused) as refused:
        dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens_).get_dialog(raw["id"])
    assert refused.value.status == 401
    assert tokens_.invalidated == 1
    assert sim.dialogporten.requests == 2


def test_a_token_without_the_scope_is_403_and_permanent(sim: Simulator) -> None:
    """DP-AUTH-403: a valid token lacking ``digdir:dialogporten.serviceprovider``."""
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    wrong_scope = dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim, scope="altinn:events.subscribe"))
    with pytest.raises(dp.DialogportenRefused) as refused:
        wrong_scope.get_dialog(raw["id"])
    assert refused.value.status == 403
    assert sim.dialogporten.requests == 1


def test_another_organisations_dialog_is_404_like_a_missing_one_and_permanent_with_the_reason(sim: Simulator) -> None:
    """DP-SO-404: the query filters by the caller's own resources, so another org's dialog is not found."""
    theirs = sample_dialog()
    sim.dialogporten.put(theirs, org_number="310000000")
    dialogs = client(sim)
    with pytest.raises(dp.DialogportenRefused) as foreign:
        dialogs.get_dialog(theirs["id"])
    assert foreign.value.status == 404
    assert "another organisation" in str(foreign.value)
    assert "was not found" in str(foreign.value)
    missing = str(uuid.uuid4())
    with pytest.raises(dp.DialogportenRefused) as not_found:
        dialogs.get_dialog(missing)
    assert not_found.value.status == 404
    with pytest.raises(dp.DialogportenRefused):
        dialogs.get_dialog("not-a-uuid")


def test_maskinporten_saying_not_now_is_never_a_refusal(sim: Simulator) -> None:
    """A 429 or 5xx from Maskinporten: a RetryLater when it names a time, else an ordinary transient failure."""
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    sim.tokens.not_now((429, format_datetime(at, usegmt=True)))
    with pytest.raises(RetryLater) as later:
        client(sim).get_dialog(raw["id"])
    assert later.value.until == at
    sim.tokens.not_now((503, None))
    with pytest.raises(dp.DialogportenUnavailable) as unavailable:
        client(sim).get_dialog(raw["id"])
    assert not isinstance(unavailable.value, dp.PermanentError | RetryLater)
    assert isinstance(client(sim).get_dialog(raw["id"]), dp.Dialog)  # and then a token, and the dialog


def test_16_workers_share_one_token_request(sim: Simulator) -> None:
    raws = [sample_dialog() for _ in range(16)]
    for raw in raws:
        sim.dialogporten.put(raw)
    dialogs = client(sim)
    barrier = threading.Barrier(16)
    results: list[object] = []
    lock = threading.Lock()

    def work(dialog_id: str) -> None:
        barrier.wait()
        fetched = dialogs.get_dialog(dialog_id)
        with lock:
            results.append(fetched)

    threads = [threading.Thread(target=work, args=(raw["id"],)) for raw in raws]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 16
    assert all(isinstance(r, dp.Dialog) for r in results)
    assert {str(r.id) for r in results if isinstance(r, dp.Dialog)} == {raw["id"] for raw in raws}
    assert sim.tokens.issued == 1


def test_a_server_that_never_answers_ends_within_the_budget(sim: Simulator) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        port = silent.getsockname()[1]
        dialogs = dp.DialogportenClient(
            f"http://127.0.0.1:{port}/dialogporten", tokens(sim), request_timeout=0.5, budget=2.0
        )
        started = time.monotonic()
        with pytest.raises(dp.DialogportenUnavailable):
            dialogs.get_dialog(str(uuid.uuid4()))
        assert time.monotonic() - started < 3.5
    finally:
        silent.close()


def test_16_workers_at_cold_start_share_the_process_client_and_one_token_request(sim: Simulator) -> None:
    from cryptography.hazmat.primitives import serialization

    from shared.altinn import clients as enrichment
    from shared.settings import MaskinportenSettings

    pem = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cfg = MaskinportenSettings(environment=sim.base_url, client_id=CLIENT_ID, kid=KID, private_key=pem.decode())
    raws = [sample_dialog() for _ in range(16)]
    for raw in raws:
        sim.dialogporten.put(raw)
    barrier = threading.Barrier(16)
    fetched: list[object] = []

    def work(dialog_id: str) -> None:
        barrier.wait()  # every worker asks for the process's client at the same moment
        fetched.append(enrichment.dialogporten(cfg).get_dialog(dialog_id))

    threads = [threading.Thread(target=work, args=(raw["id"],)) for raw in raws]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(fetched) == 16
    assert sim.tokens.issued == 1
