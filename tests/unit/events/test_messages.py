"""Reading a stored queue body for display: which service a parked event's source belongs to."""

from __future__ import annotations

import pytest

from shared.events.messages import service_of
from tests.conftest import load_fixture


@pytest.mark.parametrize(
    ("source", "event_type", "service"),
    [
        # tests/fixtures/events: a real TT02 delivery, and the docs' example with its dialogporten.no host
        (load_fixture("tt02-dialog-created.json")["source"], None, "Dialogporten"),
        (load_fixture("seed-activity-signature-provided.json")["source"], None, "Dialogporten"),
        ("https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs/x", "dialogporten.dialog.future.v9",
         "Dialogporten"),
        # altinn-correspondence AltinnEventBus.CreateCloudEvent: {CorrespondenceBaseUrl}/correspondence/api/v1/...
        ("https://platform.tt02.altinn.no/correspondence/api/v1/correspondence", None, "Correspondence"),
        ("https://example.no/x", "no.altinn.correspondence.correspondencepublished", "Correspondence"),
        # altinn-broker AltinnEventBus.CreateCloudEvent: {PlatformGatewayUrl}broker/api/v1/filetransfer
        ("https://platform.altinn.no/broker/api/v1/filetransfer", None, "Broker"),
        ("https://platform.altinn.no/x", "no.altinn.broker.published", "Broker"),
        # altinn-events' app.instance.created examples
        ("https://ttd.apps.altinn.no/ttd/apps-test/instances/50015641/a72223a3-926b-4095-a2a6-bacc10815f2d",
         "app.instance.created", "app ttd/apps-test"),
        ("https://skd.apps.tt02.altinn.no/skd/mva-melding/instances/1/2", "app.instance.created",
         "app skd/mva-melding"),
        ("https://events.example.com/things/1", "com.example.thing", "events.example.com"),
        (None, None, None),
    ],
)  # fmt: skip
def test_the_service_a_source_belongs_to(source: str | None, event_type: str | None, service: str | None) -> None:
    assert service_of(source, event_type) == service
