"""The handler examples of docs/handlers.md ("Writing your handler") run as written: the permanent error, the
handler context, the whole dialog from Dialogporten and "not now"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from devtools.samples import sample_event
from shared import settings
from shared.errors import CannotSucceed, PermanentError, RetryLater
from shared.events.models import parse_event
from shared.processing.registry import HandlerContext, Registry
from shared.stores import clients as storage
from shared.stores import devstorage
from tests import docs_support


def example(defining: str) -> dict[str, Any]:
    section = docs_support.section("## Writing your handler")
    [snippet] = [b for b in docs_support.python_blocks(section.text) if defining in b]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(section.page), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_the_cannot_succeed_example_poisons_a_foreign_service_only() -> None:
    handler = cast("Callable[[Any], None]", example("def open_case")["open_case"])
    ours = parse_event(sample_event("dialogporten.dialog.created.v1"))
    handler(ours)
    foreign = parse_event(sample_event("dialogporten.dialog.created.v1") | {"resource": "urn:altinn:resource:x"})
    with pytest.raises(CannotSucceed, match="no case type for x") as caught:
        handler(foreign)
    assert isinstance(caught.value, PermanentError)


def test_the_context_example_is_registered_to_receive_the_context() -> None:
    handler = cast("Callable[..., None]", example("def archive")["archive"])
    registry = Registry()
    registry.add_marked(handler)
    event = parse_event(sample_event("dialogporten.dialog.transmission.created.v1"))
    [binding] = registry.handlers_for(type(event))
    assert binding.fn is handler
    cfg = settings.load({settings.STORAGE_CONNECTION: devstorage.azurite_connection_string()})
    ctx = HandlerContext(storage.build(cfg), cfg, "dialogporten-dialog-transmission-created-v1", 1)
    binding(event, ctx)  # builds a table client from ctx; no I/O until used
    with pytest.raises(TypeError):
        handler(event)  # it needs the context: the binding is what passes it


def test_the_fetch_dialog_example_gets_the_dialog_from_the_simulated_dialogporten(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from devtools.altinn_sim import Client, Options, Simulator
    from devtools.altinn_sim.dialogporten import sample_dialog

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    handler = cast("Callable[..., None]", example("def follow_up")["follow_up"])
    registry = Registry()
    registry.add_marked(handler)
    with Simulator(Options(port=0)) as sim:
        sim.register(Client("readme-client", "readme-kid", key.public_key()))
        event = parse_event(sample_event("dialogporten.dialog.created.v1"))
        dialog = sample_dialog(event.dialog_id, status="Completed")
        sim.dialogporten.put(dialog)
        cfg = settings.load({
            settings.STORAGE_CONNECTION: devstorage.azurite_connection_string(),
            "ALTINN_ENVIRONMENT": sim.base_url,
            "MASKINPORTEN_CLIENT_ID": "readme-client",
            "MASKINPORTEN_KID": "readme-kid",
            "MASKINPORTEN_KEY": pem.decode(),
        })  # fmt: skip
        ctx = HandlerContext(storage.build(cfg), cfg, "dialogporten-dialog-created-v1", 1)
        [binding] = registry.handlers_for(type(event))
        binding(event, ctx)
        assert capsys.readouterr().out.split()[:2] == ["Completed", dialog["revision"]]
        sim.dialogporten.put({**dialog, "deletedAt": "2026-11-27T10:00:00.000Z"})
        binding(event, ctx)
        assert capsys.readouterr().out == ""  # a deleted dialog: nothing followed up
        ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
        sim.dialogporten.put({**dialog, "visibleFrom": ahead.isoformat().replace("+00:00", "Z")})
        with pytest.raises(RetryLater) as later:
            binding(event, ctx)
        assert later.value.until == ahead  # put back until end users can see it, no attempt spent
        assert capsys.readouterr().out == ""


def test_the_retry_later_example_puts_the_event_back_for_an_hour() -> None:
    namespace = example("def to_archive")
    namespace["archive_is_in_its_nightly_window"] = lambda: True
    handler = cast("Callable[[Any], None]", namespace["to_archive"])
    event = parse_event(sample_event("dialogporten.dialog.transmission.created.v1"))
    with pytest.raises(RetryLater) as later:
        handler(event)
    assert (later.value.seconds, later.value.reason) == (3600, "the archive is closed at night")
    namespace["archive_is_in_its_nightly_window"] = lambda: False
    handler(event)
