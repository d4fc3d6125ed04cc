"""dpctl's output, as az's: each command's JSON holds to a schema of its own (devtools/cli/schemas), ``--query``
picks from it, every ``--output`` format prints the same data, and a piped long command shows progress lines.

Run against the real things a user has here: Azurite, the Altinn simulator, a webhook receiver.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from devtools.altinn_sim import Simulator
from devtools.azurite import Azurite
from devtools.cli.app import app
from devtools.samples import sample_event
from shared.events.catalog import BY_TYPE, UNROUTED_QUEUE
from shared.stores.clients import StorageClients
from tests.cli_support import Ran, dpctl
from tests.sim_support import CLIENT_ID, KEY, KID, Receiver

pytestmark = pytest.mark.azurite

SCHEMAS = Path(__file__).resolve().parents[4] / "devtools" / "cli" / "schemas"
RESOURCE = "urn:altinn:resource:super-simple-service"
QUEUE = BY_TYPE["dialogporten.dialog.created.v1"].queue
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
#: camelCase, as az and Altinn: one spelling for one thing.
FIELD = re.compile(r"[a-z][a-zA-Z0-9]*")


def schema(command: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{command.replace(' ', '-')}.schema.json").read_text())
    return loaded


def holds(ran: Ran, command: str) -> Any:
    assert ran.code in (0, 3), (command, ran.code, ran.err)
    data = ran.json()
    jsonschema.validate(data, schema(command))
    return data


@pytest.fixture
def env(azurite: Azurite, sim: Simulator) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "ALTINN_SIM_URL": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KID": KID,
        "MASKINPORTEN_KEY": PEM.decode(),
        "MASKINPORTEN_KEY_FILE": "",
        "FUNCTION_KEY": "",
    }


def _encoded(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def _poison_and_park(clients: StorageClients) -> list[dict[str, Any]]:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(3)]
    for event in events:
        poisoned.send_message(_encoded(event), time_to_live=-1)
    parked = clients.queues.create_queue(UNROUTED_QUEUE)
    parked.send_message(_encoded({**sample_event("dialogporten.dialog.seen.v1"), "type": "dialogporten.dialog.x.v9"}))
    return events


def test_every_command_has_a_schema_and_every_schema_a_command() -> None:
    commands = set()
    for info in app.registered_commands:
        commands.add(info.name or "")
    for group in app.registered_groups:
        typer_app = group.typer_instance
        assert typer_app is not None
        for info in typer_app.registered_commands:
            commands.add(f"{group.name} {info.name or info.callback.__name__}")  # type: ignore[union-attr]
        if typer_app.registered_callback is not None and typer_app.registered_callback.invoke_without_command:
            commands.add(str(group.name))
    names = {f"{name}".replace(" ", "-").replace("_", "-") for name in commands} - {"auth-keygen"}
    assert names == {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}


def test_one_name_for_one_thing_in_every_schema() -> None:
    def fields(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                yield key
                yield from fields(value)
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    yield from fields(node[key])
            for option in node.get("anyOf", []):
                yield from fields(option)

    for path in SCHEMAS.glob("*.schema.json"):
        names = set(fields(json.loads(path.read_text())))
        assert all(FIELD.fullmatch(name) for name in names), (path.name, sorted(names))
        # the synonyms today's output mixed: the one name stays
        assert not names & {"replayed", "message_id", "event_id", "dialog_id", "inserted_on", "before_since"}


def test_each_commands_json_holds_to_its_schema(
    clients: StorageClients, env: dict[str, str], sim: Simulator, receiver: Receiver
) -> None:
    events = _poison_and_park(clients)
    holds(dpctl("status", "-o", "json", env=env), "status")
    holds(dpctl("poison", "list", "-o", "json", env=env), "poison list")
    shown = holds(dpctl("poison", "show", QUEUE, "-o", "json", env=env), "poison show")
    holds(dpctl("poison", "replay", QUEUE, "--dry-run", "-o", "json", env=env), "poison replay")
    holds(dpctl("poison", "discard", QUEUE, shown[0]["messageId"], "-o", "json", env=env), "poison discard")
    holds(dpctl("poison", "replay", QUEUE, "--limit", "1", "-o", "json", env=env), "poison replay")
    parked = holds(dpctl("parked", "list", "-o", "json", env=env), "parked list")
    holds(dpctl("parked", "reroute", "--dry-run", "-o", "json", env=env), "parked reroute")
    holds(dpctl("parked", "discard", parked[0]["messageId"], "--json", env=env), "parked discard")
    holds(dpctl("send", "--url", receiver.url, "--count", "5", "-o", "json", env=env), "send")
    for event in events:
        sim.publish(event)
    holds(dpctl("catch-up", "--resource", RESOURCE, "--since", "0", "-o", "json", env=env), "catch-up")
    holds(dpctl("auth", "-o", "json", env=env), "auth")
    created = holds(
        dpctl("subscriptions", "create", "--endpoint", receiver.url, "--resource", RESOURCE, "-o", "json", env=env),
        "subscriptions create",
    )
    number = str(created["id"])
    holds(dpctl("subscriptions", "list", "-o", "json", env=env), "subscriptions list")
    holds(dpctl("subscriptions", "show", number, "-o", "json", env=env), "subscriptions show")
    holds(dpctl("subscriptions", "wait", number, "--timeout", "30", "-o", "json", env=env), "subscriptions wait")
    holds(dpctl("subscriptions", "delete", number, "-o", "json", env=env), "subscriptions delete")
    # a dialog the default handlers recorded
    from shared.events.models import parse_event
    from shared.stores.dialogs import DialogStore

    dialog = parse_event(events[0])
    DialogStore(clients.tables).record(dialog)
    holds(dpctl("dialogs", "show", str(dialog.dialog_id), "-o", "json", env=env), "dialogs show")


def test_times_are_iso_8601_in_utc_in_every_command(clients: StorageClients, env: dict[str, str]) -> None:
    _poison_and_park(clients)
    shown = dpctl("poison", "show", QUEUE, "--json", env=env).json()
    parked = dpctl("parked", "list", "--json", env=env).json()
    for moment in [m["insertedOn"] for m in shown] + [p["insertedOn"] for p in parked]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", moment), moment
    table = dpctl("poison", "show", QUEUE, env=env).out
    assert shown[0]["insertedOn"] in table  # the table shows the same text


def test_query_picks_from_the_result_in_any_format(clients: StorageClients, env: dict[str, str]) -> None:
    events = _poison_and_park(clients)
    query = "[?readable].eventId"
    picked = dpctl("poison", "show", QUEUE, "-o", "json", "--query", query, env=env)
    assert (picked.code, picked.json()) == (0, [e["id"] for e in events])
    # anywhere on the line, as az's; and the same data in every format
    tsv = dpctl("--query", "queues[?poison].[queue, poison]", "status", "-o", "tsv", env=env)
    assert (tsv.code, tsv.out) == (3, f"{QUEUE}\t3\n")
    yaml_out = dpctl("poison", "show", QUEUE, "--query", query, "--output", "yaml", env=env)
    assert yaml.safe_load(yaml_out.out) == [e["id"] for e in events]
    table = dpctl("poison", "show", QUEUE, "--query", "[0].{id: eventId, type: eventType}", env=env)
    assert events[0]["id"] in table.out
    assert "dialogporten.dialog.created.v1" in table.out
    jsonc = dpctl("poison", "show", QUEUE, "-o", "jsonc", "--query", query, env=env)
    assert json.loads(jsonc.out) == [e["id"] for e in events]
    none = dpctl("status", "-o", "none", env=env)
    assert (none.code, none.out) == (3, "")  # the exit code alone still says "something is poisoned"


def test_a_query_that_is_not_jmespath_or_an_unknown_format_is_a_usage_error(env: dict[str, str]) -> None:
    bad = dpctl("status", "--query", "[?", env=env)
    assert bad.code == 2
    assert "not a JMESPath expression" in bad.err
    assert dpctl("status", "-o", "xml", env=env).code == 2


def test_a_piped_send_prints_progress_lines_on_stderr(receiver: Receiver, env: dict[str, str]) -> None:
    receiver.delay = 0.05
    ran = dpctl(
        "send", "--url", receiver.url, "--count", "30", "--concurrency", "1", "-o", "json",
        env={**env, "DPCTL_PROGRESS_SECONDS": "0.2"},
    )  # fmt: skip
    assert ran.code == 0, ran.err
    lines = [line for line in ran.err.splitlines() if " sending: " in line]
    assert len(lines) >= 3, ran.err
    counts = [int(re.search(r"sending: (\d+)/30 done", line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert counts == sorted(counts)
    assert counts[0] < 30
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", lines[0])  # each line says when
    assert ran.json()["sent"] == 30  # stdout keeps only the result


def test_a_piped_replay_and_catch_up_print_progress_lines(
    clients: StorageClients, env: dict[str, str], sim: Simulator
) -> None:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    for _ in range(40):
        poisoned.send_message(_encoded(sample_event("dialogporten.dialog.created.v1")), time_to_live=-1)
    replay = dpctl("poison", "replay", QUEUE, "-o", "json", env={**env, "DPCTL_PROGRESS_SECONDS": "0.05"})
    assert replay.code == 0, replay.err
    assert " replaying: " in replay.err
    for _ in range(30):
        sim.publish(sample_event("dialogporten.dialog.created.v1"))
    caught = dpctl(
        "catch-up", "--resource", RESOURCE, "--since", "0", "--size", "1", "--json",
        env={**env, "DPCTL_PROGRESS_SECONDS": "0.05"},
    )  # fmt: skip
    assert caught.code == 0, caught.err
    assert " reading events: " in caught.err
