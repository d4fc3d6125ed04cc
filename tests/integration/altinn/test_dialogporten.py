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

import pytest

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.dialogporten import sample_dialog
from devtools.checks import dialogporten_schema as schema
from shared.altinn import dialogporten as dp
from shared.altinn import maskinporten as mp
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


def client(sim: Simulator, **kwargs: float) -> dp.DialogportenClient:
    return dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim), **kwargs)  # type: ignore[arg-type]


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


def test_a_deleted_dialog_is_given_as_such_with_deleted_at_or_410(sim: Simulator) -> None:
    raw = sample_dialog(deleted_at=datetime.now(UTC))
    sim.dialogporten.put(raw)
    fetched = client(sim).get_dialog(raw["id"])
    assert isinstance(fetched, dp.Dialog)
    assert fetched.deleted
    sim.dialogporten.gone_when_deleted = True
    gone = client(sim).get_dialog(raw["id"])
    assert gone == dp.DeletedDialog(raw["id"])
    assert gone.deleted


def test_404_before_visible_from_says_until_when_and_the_dialog_is_there_at_expires(sim: Simulator) -> None:
    visible = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    raw = sample_dialog(visible_from=visible)
    sim.dialogporten.put(raw)
    sim.dialogporten.hide_until_visible = True
    dialogs = client(sim)
    with pytest.raises(dp.DialogNotVisibleYet) as early:
        dialogs.get_dialog(raw["id"])
    assert early.value.until == visible
    assert isinstance(early.value, dp.TransientError)
    time.sleep(max(0.0, early.value.until.timestamp() - time.time()) + 0.05)
    assert isinstance(dialogs.get_dialog(raw["id"]), dp.Dialog)


@pytest.mark.parametrize("form", ["seconds", "rfc1123"])
def test_503_with_a_short_retry_after_is_waited_out_in_process(sim: Simulator, form: str) -> None:
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    moment = datetime.now(UTC) + timedelta(seconds=2)
    sim.dialogporten.fail_next(1, "1" if form == "seconds" else format_datetime(moment, usegmt=True))
    started = time.monotonic()
    assert isinstance(client(sim).get_dialog(raw["id"]), dp.Dialog)
    assert time.monotonic() - started >= 0.9  # it waited as told before asking again
    assert sim.dialogporten.requests == 2


def test_503_with_a_long_retry_after_is_left_to_the_queue_retry(sim: Simulator) -> None:
    raw = sample_dialog()
    sim.dialogporten.put(raw)
    sim.dialogporten.fail_next(1, "3600")
    started = time.monotonic()
    with pytest.raises(dp.DialogportenUnavailable) as unavailable:
        client(sim).get_dialog(raw["id"])
    assert time.monotonic() - started < 5
    assert unavailable.value.retry_after == pytest.approx(3600, abs=2)
    assert not isinstance(unavailable.value, dp.PermanentError)


def test_a_token_the_server_no_longer_takes_is_refreshed_once() -> None:
    # Tokens live 1 s; the client, like one whose clock runs behind, keeps using them 5 s too long.
    with Simulator(Options(port=0, token_lifetime=1)) as sim:
        sim.register(Client(CLIENT_ID, KID, KEY.public_key()))
        raw = sample_dialog()
        sim.dialogporten.put(raw)
        dialogs = dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim, margin=-5))
        assert isinstance(dialogs.get_dialog(raw["id"]), dp.Dialog)
        time.sleep(1.2)
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
    wrong_scope = dp.DialogportenClient(f"{sim.base_url}/dialogporten", tokens(sim, scope="altinn:events.subscribe"))
    with pytest.raises(dp.DialogportenRefused) as refused:
        wrong_scope.get_dialog(raw["id"])
    assert refused.value.status == 401
    assert sim.tokens.issued == 2
    assert sim.dialogporten.requests == 2


def test_other_4xx_are_permanent_with_the_reason(sim: Simulator) -> None:
    theirs = sample_dialog()
    sim.dialogporten.put(theirs, org_number="310000000")
    dialogs = client(sim)
    with pytest.raises(dp.DialogportenRefused) as forbidden:
        dialogs.get_dialog(theirs["id"])
    assert forbidden.value.status == 403
    missing = str(uuid.uuid4())
    with pytest.raises(dp.DialogportenRefused) as not_found:
        dialogs.get_dialog(missing)
    assert not_found.value.status == 404
    assert "not found" in str(not_found.value)
    with pytest.raises(dp.DialogportenRefused):
        dialogs.get_dialog("not-a-uuid")


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
