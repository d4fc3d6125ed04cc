"""The runner's reading of host.json, local.settings.json, route templates and connections (no I/O beyond tmp files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.runner import ConfigError, ConnectionSettingError, HostConfig, load_local_settings, resolve_connection
from devtools.runner.routes import RouteTemplate
from shared.stores.devstorage import azurite_connection_string

GUID = "019ebbb5-ac51-75ab-a98b-786e3581350e"


def test_host_json_defaults_are_the_extensions() -> None:
    config = HostConfig.from_json({"version": "2.0"})
    assert config.route_prefix == "api"
    q = config.queues
    assert (q.batch_size, q.max_dequeue_count, q.visibility_timeout, q.max_polling_interval, q.message_encoding) == (
        16,
        5,
        0.0,
        60.0,
        "base64",
    )


def test_host_json_queue_settings_and_route_prefix() -> None:
    config = HostConfig.from_json(
        {
            "extensions": {
                "http": {"routePrefix": ""},
                "queues": {
                    "batchSize": 4,
                    "newBatchThreshold": 2,
                    "maxDequeueCount": 3,
                    "visibilityTimeout": "00:00:01.5",
                    "maxPollingInterval": 2000,
                    "messageEncoding": "None",
                },
            }
        }
    )
    assert config.route_prefix == ""
    assert config.queues.effective_new_batch_threshold == 2
    assert config.queues.visibility_timeout == 1.5
    assert config.queues.max_polling_interval == 2.0
    assert config.queues.message_encoding == "none"


@pytest.mark.parametrize(
    "queues",
    [
        {"batchSize": 33},
        {"maxDequeueCount": 0},
        {"visibilityTimeout": "30"},
        {"maxPollingInterval": "00:00:00.05"},
        {"messageEncoding": "utf8"},
        {"batchsize": 4},
    ],
)
def test_host_json_refuses_what_the_host_refuses(queues: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HostConfig.from_json({"extensions": {"queues": queues}})


def test_local_settings_values_do_not_override_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file"}}))
    env = {"B": "from-env"}
    assert load_local_settings(path, env) == ["A"]
    assert env == {"A": "from-file", "B": "from-env"}


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("dialogs/{dialogId}", "dialogs/abc", {"dialogId": "abc"}),
        ("dialogs/{dialogId}", "Dialogs/a%20b", {"dialogId": "a b"}),
        ("dialogs/{dialogId}", "dialogs", None),
        ("dialogs/{dialogId}", "dialogs/abc/more", None),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/x", None),
        ("items/{id:guid}", f"items/{GUID}", {"id": GUID}),
        ("items/{page?}", "items", {}),
        ("items/{page=1}", "items", {"page": "1"}),
        ("files/{*rest}", "files/a/b/c", {"rest": "a/b/c"}),
        ("events", "events/", {}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_unknown_route_constraint_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="not supported"):
        RouteTemplate("items/{id:regex(^a$)}")


def test_connections_resolve_like_the_host() -> None:
    assert resolve_connection("Storage", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}) == (
        azurite_connection_string()
    )
    plain = "DefaultEndpointsProtocol=http;X=1"
    assert resolve_connection("Mine", {"Mine": plain}) == plain
    with pytest.raises(ConnectionSettingError, match="identity-based"):
        resolve_connection("Mine", {"Mine__queueServiceUri": "https://x.queue.core.windows.net"})
    with pytest.raises(ConnectionSettingError, match="not set"):
        resolve_connection("Mine", {})
