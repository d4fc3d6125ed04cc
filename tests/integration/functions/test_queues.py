"""The queue functions are generated from the catalog: one trigger per catalog queue, and nothing else.

``dialogporten-unrouted`` has no trigger: what is parked there stays until an operator moves it.
"""

from __future__ import annotations

from collections import Counter

from shared.events.catalog import CATALOG, UNROUTED_QUEUE
from tests.conftest import app_functions


def test_every_catalog_queue_has_exactly_one_trigger_and_nothing_else() -> None:
    triggers: Counter[str] = Counter()
    names: dict[str, str] = {}
    for function in app_functions():
        for binding in function.get_bindings_dict()["bindings"]:
            if binding["type"] == "queueTrigger":
                assert binding["connection"] == "AzureWebJobsStorage"
                assert binding["name"] == "msg"
                triggers[binding["queueName"]] += 1
                names[binding["queueName"]] = function.get_function_name()
    expected = [row.queue for row in CATALOG]
    assert triggers == Counter(expected)
    for row in CATALOG:
        assert names[row.queue] == row.function_name


def test_nothing_consumes_the_parking_queue() -> None:
    queues = {b["queueName"] for f in app_functions() for b in f.get_bindings_dict()["bindings"] if "queueName" in b}
    assert UNROUTED_QUEUE not in queues
    assert "on_unrouted" not in {f.get_function_name() for f in app_functions()}


def test_function_names_are_unique_across_the_app() -> None:
    names = [f.get_function_name() for f in app_functions()]
    assert len(names) == len(set(names))
    assert {"webhook", "get_dialog"} <= set(names)


def test_queue_functions_have_no_other_bindings() -> None:
    queue_functions = {row.function_name for row in CATALOG}
    for function in app_functions():
        if function.get_function_name() in queue_functions:
            assert [b.type for b in function.get_bindings()] == ["queueTrigger"]
