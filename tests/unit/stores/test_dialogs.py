"""Dialog state as a pure merge: any order of a dialog's events gives the same row."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.samples import sample_event
from shared.events.catalog import CATALOG
from shared.events.models import DialogportenEvent, parse_event
from shared.stores.dialogs import DialogState, apply, conflicts, fold
from tests.conftest import app_handlers

DIALOG = "019ebbb5-ac51-75ab-a98b-786e3581350e"


def ev(kind: str, second: int, frac: str = "0000000", **overrides: Any) -> DialogportenEvent:
    moment = f"2026-03-16T11:00:{second:02d}.{frac}Z"
    obj = sample_event(f"dialogporten.dialog.{kind}.v1", dialog_id=DIALOG, time=moment)
    obj.update(overrides)
    return parse_event(obj)


def lifecycle() -> list[DialogportenEvent]:
    """created, updated, seen, several activities, a transmission, deleted, restored - in time order."""
    return [
        ev("created", 1),
        ev("updated", 2),
        ev("activity.information", 3),
        ev("seen", 4),
        ev("transmission.created", 5),
        ev("activity.transmission-opened", 6),
        ev("updated", 7),
        ev("deleted", 8),
        ev("activity.dialog-deleted", 8, "0000001"),
        ev("restored", 9),
        ev("activity.dialog-restored", 9, "0000001"),
        ev("seen", 10),
        ev("activity.form-submitted", 11),
    ]


LIFECYCLE = lifecycle()


def test_a_dialogs_lifecycle_in_order_gives_the_row_a_subscriber_expects() -> None:
    events = lifecycle()
    state = fold(events)
    assert state is not None
    assert state.dialog_id == DIALOG
    assert state.party == "urn:altinn:organization:identifier-no:991825827"
    assert state.service_resource == "super-simple-service"
    assert state.status == "active"
    assert state.created_at == "2026-03-16T11:00:01.0000000Z"
    assert state.updated_at == "2026-03-16T11:00:07.0000000Z"
    assert state.deleted_at == "2026-03-16T11:00:08.0000000Z"
    assert state.restored_at == "2026-03-16T11:00:09.0000000Z"
    assert state.last_seen_at == "2026-03-16T11:00:10.0000000Z"
    assert state.last_activity_type == "dialogporten.dialog.activity.form-submitted.v1"
    assert state.last_activity_id == events[-1].activity_id  # type: ignore[attr-defined]
    assert state.last_activity_at == "2026-03-16T11:00:11.0000000Z"
    assert (state.transmission_count, state.activity_count, state.events_applied) == (1, 5, 13)
    assert state.last_event_at == "2026-03-16T11:00:11.0000000Z"
    json_form = state.to_json()
    assert json_form["lastActivity"]["id"] == state.last_activity_id
    assert json_form["status"] == "active"


def test_a_delete_newer_than_every_restore_leaves_the_dialog_deleted() -> None:
    state = fold([ev("created", 1), ev("deleted", 2), ev("restored", 3), ev("deleted", 4)])
    assert state is not None
    assert state.status == "deleted"
    assert fold([ev("deleted", 4), ev("created", 1)]).status == "deleted"  # type: ignore[union-attr]
    assert fold([ev("restored", 5), ev("deleted", 4)]).status == "active"  # type: ignore[union-attr]


def test_a_dialog_first_heard_of_through_an_activity_is_known_and_active() -> None:
    state = apply(None, ev("activity.payment-made", 30))
    assert (state.status, state.created_at, state.activity_count, state.events_applied) == ("active", None, 1, 1)


def test_events_in_the_same_microsecond_are_ordered_by_their_seventh_digit() -> None:
    early, late = ev("activity.information", 5, "1234561"), ev("activity.closed", 5, "1234562")
    for order in ([early, late], [late, early]):
        state = fold(order)
        assert state is not None
        assert state.last_activity_type == "dialogporten.dialog.activity.closed.v1"


def test_the_row_survives_the_table_round_trip() -> None:
    state = fold(lifecycle())
    assert state is not None
    entity = state.to_entity()
    assert (entity["PartitionKey"], entity["RowKey"], entity["status"]) == (DIALOG, "dialog", "active")
    assert DialogState.from_entity(entity) == state


@settings(max_examples=200, deadline=None)
@given(st.permutations(LIFECYCLE))
def test_any_permutation_of_a_dialogs_events_gives_the_same_row(shuffled: list[DialogportenEvent]) -> None:
    assert fold(shuffled) == fold(LIFECYCLE)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([row.type for row in CATALOG]),
            st.integers(min_value=0, max_value=59),
            st.integers(min_value=0, max_value=9_999_999),
        ),
        min_size=1,
        max_size=15,
    ),
    st.randoms(use_true_random=False),
)
def test_any_stream_of_any_types_is_order_independent(spec: list[tuple[str, int, int]], rnd: Any) -> None:
    events = [
        parse_event(
            sample_event(
                t, dialog_id=DIALOG, event_id=str(uuid.UUID(int=i + 1)), time=f"2026-03-16T11:00:{s:02d}.{f:07d}Z"
            )
        )
        for i, (t, s, f) in enumerate(spec)
    ]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert fold(shuffled) == fold(events)


def test_every_catalog_type_has_a_default_handler() -> None:
    from shared.events import models as events

    for row in CATALOG:
        handlers = [b.fn for b in app_handlers().handlers_for(events.MODELS[row.type])]
        assert handlers, row.type
        assert handlers[0].__name__ == "keep_dialog_state"
    # Unknown types are parked on their queue, untouched: no handler consumes them.
    assert [b.fn for b in app_handlers().handlers_for(events.UnknownEvent)] == []


def test_a_users_handler_runs_after_the_default_for_its_type_only() -> None:
    from shared.events.models import ActivityPaymentMade, ActivitySignatureProvided
    from shared.handlers import handles
    from shared.processing.registry import app_registry

    @handles(ActivityPaymentMade)
    def on_paid(event: ActivityPaymentMade) -> None:
        return None

    registry = app_registry()
    registry.add_marked(on_paid)
    assert [b.fn.__name__ for b in registry.handlers_for(ActivityPaymentMade)] == ["keep_dialog_state", "on_paid"]
    assert on_paid not in [b.fn for b in registry.handlers_for(ActivitySignatureProvided)]
    registry.remove(on_paid)
    assert on_paid not in [b.fn for b in registry.handlers_for(ActivityPaymentMade)]


FORGED = {
    "time": "9999-12-31T23:59:59.9999999Z",
    "subject": "urn:altinn:person:identifier-no:01017012345",
    "resource": "urn:altinn:resource:forged-service",
}


def test_a_far_future_event_with_another_party_and_resource_does_not_take_the_dialog_over() -> None:
    genuine = fold(lifecycle())
    assert genuine is not None
    forged = ev("updated", 30, **FORGED)
    state = apply(genuine, forged)
    assert (state.party, state.service_resource) == (genuine.party, genuine.service_resource)
    assert conflicts(genuine, forged) == {
        "party": (genuine.party, FORGED["subject"]),
        "service_resource": ("super-simple-service", "forged-service"),
    }
    assert state.to_json()["party"] == "urn:altinn:organization:identifier-no:991825827"


def test_the_first_event_applied_sets_party_and_resource_and_agreeing_events_conflict_with_nothing() -> None:
    first = ev("seen", 1)
    state = apply(None, first)
    assert (state.party, state.service_resource) == (first.party, first.service_resource)
    assert all(conflicts(state, e) == {} for e in lifecycle())
    assert conflicts(None, first) == {}


def test_events_that_share_time_and_id_but_not_source_give_one_row_in_either_order() -> None:
    moment = "2026-03-16T11:00:05.0000000Z"
    shared_id = str(uuid.uuid4())
    a = ev("activity.information", 5, id=shared_id, source=f"https://a.test/dialogs/{DIALOG}/activities/1")
    b = ev("activity.payment-made", 5, id=shared_id, source=f"https://b.test/dialogs/{DIALOG}/activities/2")
    assert a.time_key == b.time_key == moment
    assert fold([a, b]) == fold([b, a])
    state = fold([b, a])
    assert state is not None
    assert state.last_event_type == "dialogporten.dialog.activity.payment-made.v1"  # b's source sorts last
