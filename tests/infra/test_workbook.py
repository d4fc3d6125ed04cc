"""The dashboard: deployed by main.bicep, a well-formed workbook, and every query replayed on real log lines.

No KQL engine and no Azure run here. What is checked instead:

- the Bicep wiring (module, name, source, outputs), read with pycep;
- ``infra/app/workbook.json`` against a strict structural check written from the
  Workbooks schema (microsoft/Application-Insights-Workbooks, ``schema/workbook.json``)
  and the rules that repository's pull-request validation applies (unique step
  names, unique parameter ids). The schema itself is not vendored and would not
  do: it checks only the first item of ``items`` (draft-07 tuple form), and its
  query and parameter definitions list almost no property;
- every query, replayed by ``tests/infra/kql.py`` on lines the app's own code
  writes (the webhook, the queue functions and the catch-up, run in-process),
  on lines cut as Application Insights cuts them, and on forged ones.

What stays untested offline: that Log Analytics accepts each query (its parser,
RE2, the ``{TimeRange}`` expansion), percentile estimates on large sets, how the
portal renders each visualization, and that ARM accepts the resource.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devtools.samples import sample_event
from shared import logs
from shared.altinn.events_api import Page
from shared.errors import EventsApiError
from shared.events import catalog
from shared.intake.plan import MAX_BODY_BYTES, Policy, WebhookRequest
from tests.infra import kql
from tests.infra.test_infra_templates import (
    HOST_POISON_LINE,
    MAIN,
    TRACE_MESSAGE_LIMIT,
    _alert_query,
    _kql_alert,
    module_params,
    parse,
    render,
    resource,
    variable,
)

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
WORKBOOK_BICEP = ROOT / "infra" / "app" / "workbook.bicep"
WORKBOOK_JSON = ROOT / "infra" / "app" / "workbook.json"
PLACEHOLDER = "__LOG_ANALYTICS_WORKSPACE_ID__"
#: Bicep's limit for loadTextContent() ("File functions for Bicep", learn.microsoft.com).
LOAD_TEXT_CONTENT_LIMIT = 131_072
WORKSPACE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-dialogporten-tt02"
    "/providers/Microsoft.OperationalInsights/workspaces/log-dp-events-abc123"
)
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
CREATED = "dialogporten.dialog.created.v1"
CREATED_QUEUE = catalog.queue_name_for(CREATED)
RESOURCE = "urn:altinn:resource:super-simple-service"


def workbook() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(WORKBOOK_JSON.read_text(encoding="utf-8"))
    return loaded


def queries(document: dict[str, Any] | None = None) -> dict[str, str]:
    """Every query item's query, by the item's name."""
    document = document or workbook()
    return {item["name"]: item["content"]["query"] for item in document["items"] if item["type"] == 3}


def replay(name: str, messages: list[str], *, grain: timedelta = timedelta(hours=1)) -> list[dict[str, Any]]:
    """The named query's result on AppTraces rows holding ``messages``, one a minute before NOW."""
    rows = [{"TimeGenerated": NOW - timedelta(minutes=i + 1), "Message": m} for i, m in enumerate(messages)]
    query = kql.expand_parameters(queries()[name], time_range=timedelta(days=1), grain=grain)
    return kql.run(query, rows, now=NOW)


def line(kind: str, outcome: str, **fields: Any) -> str:
    return logs.event_line(kind, outcome, fields)


def process_line(outcome: str, duration_ms: float = 12.5, **extra: Any) -> str:
    """A queue function's line, its fields in the order shared/processing.py's ``log()`` writes them
    (checked against the real lines in ``test_the_hand_built_process_line_has_the_real_lines_shape``)."""
    fields = {
        "queue": CREATED_QUEUE,
        "dequeue_count": 1,
        "message_id": "m-1",
        "event_id": "e-1",
        "event_type": CREATED,
        "dialog_id": "d-1",
        "duration_ms": duration_ms,
        **extra,
    }
    return line(logs.PROCESS, outcome, **fields)


# --------------------------------------------------------------------------- the Bicep wiring


def test_main_always_deploys_the_workbook_under_a_stable_guid() -> None:
    config = parse(MAIN)["modules"]["workbook"]["config"]
    assert "condition" not in config, "the dashboard is always deployed"
    assert parse(MAIN)["modules"]["workbook"]["detail"]["path"] == "app/workbook.bicep"
    params = {name: render(value) for name, value in module_params("workbook").items()}
    # Derived from deploy-time constants only: the same name on every redeploy, another per environment.
    assert params["name"] == "guid(resource_group().id, environmentName, dialogporten-events-workbook)"
    assert "environmentName" in params["displayName"]
    assert params["logAnalyticsId"] == "monitoring.outputs.logAnalyticsId"
    assert set(parse(MAIN)["parameters"]) >= {"alertEmail"}
    assert not [p for p in parse(MAIN)["parameters"] if "workbook" in p.lower()], "no parameter is needed"


def test_the_workbook_resource_is_a_shared_workbook_on_the_workspace() -> None:
    declared = parse(WORKBOOK_BICEP)["resources"]["workbook"]
    assert (declared["type"], declared["api_version"]) == ("Microsoft.Insights/workbooks", "2023-06-01")
    body = resource(WORKBOOK_BICEP, "workbook")
    assert body["kind"] == "shared"
    assert body["name"] == "name"
    properties = body["properties"]
    assert properties["category"] == "workbook"
    assert properties["sourceId"] == "logAnalyticsId"
    assert properties["serializedData"] == "serializedData"
    assert render(variable(WORKBOOK_BICEP, "serializedData")) == (
        f"replace(load_text_content(workbook.json), {PLACEHOLDER}, logAnalyticsId)"
    )


def test_outputs_give_the_workbook_id_and_its_portal_link() -> None:
    outputs = {name: render(o["value"]) for name, o in parse(MAIN)["outputs"].items()}
    assert outputs["WORKBOOK_ID"] == "workbook.outputs.id"
    assert outputs["WORKBOOK_URL"] == "${environment().portal}/#@/resource${workbook.outputs.id}/workbook"
    assert {render(o["value"]) for o in parse(WORKBOOK_BICEP)["outputs"].values()} == {"workbook.id", "workbook.name"}


def test_the_json_fits_load_text_content_and_its_placeholder_becomes_the_workspace() -> None:
    text = WORKBOOK_JSON.read_text(encoding="utf-8")
    assert len(text) <= LOAD_TEXT_CONTENT_LIMIT, "Bicep refuses a larger file in loadTextContent()"
    assert text.count(PLACEHOLDER) == 1
    deployed = json.loads(text.replace(PLACEHOLDER, WORKSPACE_ID))  # what replace() hands ARM
    assert deployed["fallbackResourceIds"] == [WORKSPACE_ID]
    assert deployed["items"] == workbook()["items"]


# --------------------------------------------------------------------------- structure


#: Item types and the schema definition each one follows; only those checked in depth are allowed.
ITEM_TYPES = {1: "markdown", 3: "query", 9: "parameter"}
ITEM_KEYS = frozenset({"type", "content", "name", "customWidth", "showPin", "styleSettings", "conditionalVisibility"})
TOP_KEYS = frozenset({"version", "items", "styleSettings", "defaultResourceIds", "fallbackResourceIds", "$schema"})
SCHEMA_ID = "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json"
QUERY_KEYS = frozenset(
    {
        "version",
        "query",
        "size",
        "title",
        "noDataMessage",
        "timeContext",
        "timeContextFromParameter",
        "queryType",
        "resourceType",
        "crossComponentResources",
        "visualization",
        "gridSettings",
        "chartSettings",
        "tileSettings",
        "showExportToExcel",
        "exportToExcelOptions",
    }
)
#: Query types: 0 is Logs (Log Analytics, KQL); the workbook's queries are all of that kind, on the workspace.
LOGS_QUERY = 0
WORKSPACE_RESOURCE_TYPE = "microsoft.operationalinsights/workspaces"
VISUALIZATIONS = frozenset(
    {"table", "timechart", "barchart", "areachart", "linechart", "piechart", "scatterchart", "tiles", "unstackedbar"}
)
PARAMETER_KEYS = frozenset(
    {"id", "version", "name", "label", "type", "isRequired", "value", "typeSettings", "description"}
)
TIME_RANGE_PARAMETER = 4
#: The formats a time range parameter offers in a query ({TimeRange:grain} etc.; Workbooks docs, "Time parameters").
TIME_RANGE_FORMATS = frozenset({None, "label", "value", "query", "start", "end", "grain"})
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def workbook_problems(document: Any) -> list[str]:
    """What is wrong with a workbook document (Notebook/1.0); empty when nothing is."""
    problems: list[str] = []
    if not isinstance(document, dict):
        return ["the workbook is not a JSON object"]
    problems += [f"unknown top-level key {key!r}" for key in sorted(set(document) - TOP_KEYS)]
    if document.get("version") != "Notebook/1.0":
        problems.append(f"version must be Notebook/1.0, not {document.get('version')!r}")
    if "$schema" in document and document["$schema"] != SCHEMA_ID:
        problems.append("$schema must be the Workbooks schema's $id")
    for key in ("fallbackResourceIds", "defaultResourceIds"):
        if key in document and not (
            isinstance(document[key], list) and all(isinstance(v, str) and v for v in document[key])
        ):
            problems.append(f"{key} must be a list of resource ids")
    items = document.get("items")
    if not isinstance(items, list) or not items:
        return [*problems, "items must be a non-empty list"]
    parameters: dict[str, int] = {}
    parameter_ids: list[str] = []
    names: list[str] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("content"), dict):
            problems.append(f"{where}: an item is an object with a content object")
            continue
        problems += [f"{where}: unknown key {key!r}" for key in sorted(set(item) - ITEM_KEYS)]
        if item.get("type") not in ITEM_TYPES:
            problems.append(f"{where}: item type {item.get('type')!r} is not one of {sorted(ITEM_TYPES)}")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: every step needs a name")
        else:
            names.append(name)
            where = f"{where} ({name})"
        width = item.get("customWidth")
        if width is not None and not (isinstance(width, str) and width.isdigit() and 1 <= int(width) <= 100):
            problems.append(f"{where}: customWidth is a percentage in a string, 1 to 100")
        content = item["content"]
        if item["type"] == 1:
            problems += [f"{where}: unknown markdown key {key!r}" for key in sorted(set(content) - {"json"})]
            if not isinstance(content.get("json"), str) or not content["json"].strip():
                problems.append(f"{where}: a text step needs its markdown in content.json")
        elif item["type"] == 9:
            problems += _parameter_problems(where, content, parameters, parameter_ids)
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == 3 and isinstance(item.get("content"), dict):
            problems += _query_problems(f"items[{index}] ({item.get('name')})", item["content"], parameters)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"step names must be unique: {duplicates}")
    duplicate_ids = sorted({i for i in parameter_ids if parameter_ids.count(i) > 1})
    if duplicate_ids:
        problems.append(f"parameter ids must be unique: {duplicate_ids}")
    return problems


def _parameter_problems(
    where: str, content: dict[str, Any], parameters: dict[str, int], parameter_ids: list[str]
) -> list[str]:
    problems = []
    if content.get("version") != "KqlParameterItem/1.0":
        problems.append(f"{where}: a parameters step's version is KqlParameterItem/1.0")
    declared = content.get("parameters")
    if not isinstance(declared, list) or not declared:
        return [*problems, f"{where}: a parameters step lists its parameters in content.parameters"]
    for parameter in declared:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            problems.append(f"{where}: a parameter needs a name that is an identifier")
            continue
        problems += [f"{where}: {name}: unknown key {key!r}" for key in sorted(set(parameter) - PARAMETER_KEYS)]
        if name in parameters:
            problems.append(f"{where}: parameter {name} is declared twice")
        parameters[name] = parameter.get("type", -1)
        if not isinstance(parameter.get("id"), str) or not GUID.match(parameter["id"]):
            problems.append(f"{where}: {name}: id must be a lower-case GUID")
        else:
            parameter_ids.append(parameter["id"])
        if parameter.get("version") != "KqlParameterItem/1.0":
            problems.append(f"{where}: {name}: version must be KqlParameterItem/1.0")
        if not isinstance(parameter.get("type"), int):
            problems.append(f"{where}: {name}: type must be an integer")
        if parameter.get("type") == TIME_RANGE_PARAMETER:
            value = parameter.get("value")
            if not (isinstance(value, dict) and isinstance(value.get("durationMs"), int) and value["durationMs"] > 0):
                problems.append(f"{where}: {name}: a time range's value is {{durationMs: N}}")
            choices = parameter.get("typeSettings", {}).get("selectableValues", [])
            if not choices or not all(isinstance(c.get("durationMs"), int) for c in choices):
                problems.append(f"{where}: {name}: typeSettings.selectableValues lists {{durationMs: N}}")
    return problems


def _query_problems(where: str, content: dict[str, Any], parameters: dict[str, int]) -> list[str]:
    problems = [f"{where}: unknown query key {key!r}" for key in sorted(set(content) - QUERY_KEYS)]
    if content.get("version") != "KqlItem/1.0":
        problems.append(f"{where}: a query step's version is KqlItem/1.0")
    if not isinstance(content.get("query"), str) or not content["query"].strip():
        return [*problems, f"{where}: no query"]
    if content.get("queryType") != LOGS_QUERY or content.get("resourceType") != WORKSPACE_RESOURCE_TYPE:
        problems.append(f"{where}: queries are Logs queries (queryType 0) on {WORKSPACE_RESOURCE_TYPE}")
    if content.get("visualization") not in VISUALIZATIONS:
        shown = content.get("visualization")
        problems.append(f"{where}: visualization {shown!r} is not one of {sorted(VISUALIZATIONS)}")
    if not (isinstance(content.get("size"), int) and 0 <= content["size"] <= 4):
        problems.append(f"{where}: size is 0 to 4")
    if not isinstance(content.get("title"), str) or not content["title"]:
        problems.append(f"{where}: every chart needs a title")
    context = content.get("timeContextFromParameter")
    if not isinstance(context, str) or parameters.get(context) != TIME_RANGE_PARAMETER:
        problems.append(f"{where}: timeContextFromParameter must name a time range parameter, not {context!r}")
    for used in kql.parameters_used(content["query"]):
        name, _, option = used.strip("{}").partition(":")
        if name not in parameters:
            problems.append(f"{where}: the query reads {used}, which no parameter declares")
        elif parameters[name] == TIME_RANGE_PARAMETER and (option or None) not in TIME_RANGE_FORMATS:
            problems.append(f"{where}: {used} is not a time range format")
    return problems


def test_the_workbook_is_well_formed() -> None:
    assert workbook_problems(workbook()) == []


def _item(document: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [item for item in document["items"] if item.get("name") == name]
    item: dict[str, Any] = found
    return item


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "wrong version": (lambda d: d.update(version="Notebook/2.0"), "version must be Notebook/1.0"),
    "metrics step": (lambda d: d["items"].append({"type": 10, "content": {}, "name": "m"}), "item type 10"),
    "twice the same name": (
        lambda d: _item(d, "catchup-runs").update(name="catchup-lag"),
        "step names must be unique",
    ),
    "undeclared parameter": (
        lambda d: _item(d, "catchup-runs")["content"].update(
            query=_item(d, "catchup-runs")["content"]["query"] + "\n| where resource == '{Resource}'"
        ),
        "reads {Resource}, which no parameter declares",
    ),
    "unknown time format": (
        lambda d: _item(d, "handling-time")["content"].update(
            query=_item(d, "handling-time")["content"]["query"].replace("{TimeRange:grain}", "{TimeRange:bin}")
        ),
        "{TimeRange:bin} is not a time range format",
    ),
    "time context from nowhere": (
        lambda d: _item(d, "handling-time")["content"].update(timeContextFromParameter="Range"),
        "timeContextFromParameter must name a time range parameter",
    ),
    "misspelt visualization": (
        lambda d: _item(d, "handling-time")["content"].update(visualization="timechartt"),
        "visualization 'timechartt'",
    ),
    "metrics query type": (
        lambda d: _item(d, "handling-time")["content"].update(queryType=1),
        "queryType 0",
    ),
    "misspelt query key": (
        lambda d: _item(d, "handling-time")["content"].update(queryy="x"),
        "unknown query key 'queryy'",
    ),
    "too wide": (lambda d: _item(d, "handling-time").update(customWidth="150"), "customWidth"),
    "parameter id not a guid": (
        lambda d: _item(d, "parameters")["content"]["parameters"][0].update(id="time-range"),
        "id must be a lower-case GUID",
    ),
    "untitled chart": (lambda d: _item(d, "catchup-runs")["content"].pop("title"), "needs a title"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_structural_check_refuses_a_broken_workbook(mutation: str) -> None:
    """The check is not vacuous: each broken copy is refused for its own reason."""
    broken = copy.deepcopy(workbook())
    mutate, expected = MUTATIONS[mutation]
    mutate(broken)
    problems = workbook_problems(broken)
    assert any(expected in p for p in problems), problems


def test_the_workbook_shows_every_part_the_operator_needs() -> None:
    names = set(queries())
    assert {
        "events-by-outcome",
        "events-per-type",
        "handling-time",
        "poisoned-and-parked",
        "catchup-runs",
        "catchup-lag",
        "refusals-by-reason",
    } <= names


# --------------------------------------------------------------------------- the alert's robustness rules


def _code(query: str) -> str:
    """The query without its comment lines."""
    return re.sub(r"^\s*//.*\n", "", query, flags=re.MULTILINE)


def _regexes(query: str) -> list[str]:
    """The regular expression of every extract() (verbatim strings, @'...' or @"...")."""
    verbatim = re.compile(r"extract\(@'([^']*)'" + r'|extract\(@"([^"]*)"')
    return [a or b for a, b in verbatim.findall(query)]


def unbounded(pattern: str) -> list[str]:
    """The quantifiers of a regular expression that have no upper bound (``*``, ``+``, ``{n,}``)."""
    bare = re.sub(r"\\.", "", pattern)  # escapes
    bare = re.sub(r"\[(?:[^\]\\]|\\.)*\]", "", bare)  # character classes
    return re.findall(r"[*+]|\{\d+,\}", bare)


@pytest.mark.parametrize("name", sorted(queries()))
def test_every_query_reads_lines_as_the_alert_does(name: str) -> None:
    """The outcome from the head with the alert's own expression; no parse_json; only bounded expressions."""
    query, alert = _code(queries()[name]), _alert_query()
    assert "parse_json" not in query, "a line cut at 32,768 characters is no longer JSON"
    for fragment in (
        'Message startswith_cs "dialogporten." or Message startswith_cs "Message has reached MaxDequeueCount of "',
        "extend head = substring(Message, 0, 128)",
        """extract(@'^dialogporten\\.[a-z_.]{1,40} \\{"outcome":"([a-z_]{1,20})"', 1, head)""",
    ):
        assert fragment in alert, f"the alert changed: {fragment}"
        assert fragment in query, f"{name} does not read lines as the alert does: {fragment}"
    patterns = _regexes(query)
    assert patterns
    for pattern in patterns:
        assert not unbounded(pattern), f"{name}: {pattern!r} is unbounded"
        re.compile(pattern)  # also read by RE2 in Log Analytics: see kql._NOT_RE2


def test_the_bound_check_is_not_vacuous() -> None:
    assert unbounded(r',"reason":"(.*)"') == ["*"]
    assert unbounded(r',"read":([0-9]+)') == ["+"]
    assert unbounded(r"x{2,}") == ["{2,}"]
    assert unbounded(r',"reason":"((?:[^"\\]|\\.){1,120})') == []
    assert unbounded(r"a\+[*+]") == []


# --------------------------------------------------------------------------- real lines from the app's code


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def app_lines() -> Iterator[dict[str, list[str]]]:
    """What the app logs, by part: the webhook, a queue function and the catch-up, each run in-process.

    Storage is replaced by stand-ins (a dict for the webhook's queues, a list for the poison
    queue, a fake events API), which changes nothing in what is logged.
    """
    capture = _Lines()
    logger = logging.getLogger(logs.LOGGER_NAME)
    previous = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    lines: dict[str, list[str]] = {}
    monkeypatch = pytest.MonkeyPatch()
    try:
        for part, produce in (("ingest", _webhook), ("process", _queue_function), ("catchup", _catch_up)):
            start = len(capture.messages)
            produce(monkeypatch)
            lines[part] = capture.messages[start:]
        yield lines
    finally:
        monkeypatch.undo()
        logger.removeHandler(capture)
        logger.setLevel(previous)


class _MemorySink:
    def __init__(self) -> None:
        self.queues: dict[str, list[str]] = {}

    def put(self, queue: str, body: str, event: Any) -> None:
        self.queues.setdefault(queue, []).append(body)


def _post(body: bytes, content_type: str = "application/json; charset=utf-8", policy: Policy | None = None) -> int:
    from shared.intake import plan

    request = WebhookRequest("POST", {"content-type": content_type}, body, "http://localhost/api/events")
    return plan.handle(request, _MemorySink(), policy or Policy()).status


def _webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    event = sample_event(CREATED, resource=RESOURCE)
    assert _post(json.dumps(event).encode()) == 200  # accepted
    unknown = {**sample_event(CREATED), "type": "dialogporten.dialog.archived.v2"}
    assert _post(json.dumps(unknown).encode()) == 200  # parked
    assert _post(b"{not json") == 400
    other = Policy(allowed_resources=frozenset({"urn:altinn:resource:another"}))
    assert _post(json.dumps(event).encode(), policy=other) == 403
    assert _post(b"x" * (MAX_BODY_BYTES + 1)) == 413
    assert _post(json.dumps(event).encode(), content_type="text/plain") == 415


class _PoisonQueue:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_message(self, body: Any, **kwargs: Any) -> None:
        self.sent.append(body)


def _queue_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """processing.process_message with a stand-in handler: handled, duplicate, retry, poisoned (twice)."""
    from shared.events.messages import serialize_event
    from shared.events.models import DialogportenEvent
    from shared.processing import pipeline as processing
    from shared.processing.hostconfig import QueueSettings
    from shared.processing.registry import Registry

    poison = _PoisonQueue()
    clients: Any = SimpleNamespace(queue=lambda name: poison)
    behaviour: dict[str, Any] = {}

    def handler(event: Any) -> Any:
        if "raise" in behaviour:
            raise behaviour["raise"]
        return behaviour.get("return")

    # The stand-in handler is the only one, and declares no outside effects (no idempotency claim).
    registry = Registry()
    registry.add(handler, DialogportenEvent, effects=False)
    body = serialize_event(sample_event(CREATED, event_id="e-real", dialog_id="0195a1b2-0000-7000-8000-000000000001"))
    settings = QueueSettings(max_dequeue_count=5)
    no_settings: Any = None  # read only by effectful handlers (the idempotency store) and not-visible-yet dialogs

    def deliver(count: int, raw: str = body) -> Any:
        return processing.process_message(
            raw,
            queue=CREATED_QUEUE,
            dequeue_count=count,
            clients=clients,
            cfg=no_settings,
            registry=registry,
            queue_settings=settings,
        )

    assert deliver(1) == processing.HANDLED
    behaviour["return"] = False
    assert deliver(1) == processing.DUPLICATE
    behaviour["raise"] = RuntimeError("the handler's database is down")
    with pytest.raises(RuntimeError):
        deliver(1)  # retry
    assert deliver(5) == processing.POISONED  # the last attempt
    assert deliver(1, "{not an event") == processing.POISONED  # can never succeed
    assert len(poison.sent) == 2


class _EventsApi:
    """Altinn's events API as catch-up reads it: pages, then the empty page; or a refusal."""

    def __init__(self, pages: list[list[dict[str, Any]]], fail: str | None = None) -> None:
        self.pages, self.fail, self.requests = pages, fail, 0

    def page(self, resource: str, cursor: str) -> Page:
        self.requests += 1
        if self.fail:
            raise EventsApiError(self.fail)
        return Page(self.pages.pop(0) if self.pages else [], "https://platform.tt02.altinn.no/events/api/v1/app")


class _Cursors:
    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}

    def get(self, resource: str) -> Any:
        return self.saved.get(resource)

    def put(self, resource: str, saved: Any) -> None:
        self.saved[resource] = saved


def _catch_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """One caught-up run (two events, then the end of the stream) and one failed run, as the timer logs them."""
    from shared.altinn import clients as enrichment
    from shared.functions import catchup as timer
    from shared.stores.cursors import Saved

    moment = (datetime.now(UTC) - timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    events = [sample_event(CREATED, resource=RESOURCE, time=moment) for _ in range(2)]
    for api, urn in (
        (_EventsApi([events]), RESOURCE),
        (_EventsApi([], fail='GET /events: 502 "Bad Gateway"'), "urn:altinn:resource:down"),
    ):
        monkeypatch.setattr(enrichment, "events_api", lambda cfg, api=api: api)
        cursors: Any = _Cursors()
        cursors.put(urn, Saved("0"))
        cfg: Any = SimpleNamespace(maskinporten=None)
        timer._one(
            urn, cfg=cfg, cursors=cursors, sink=_MemorySink(), policy=Policy(), max_seconds=30, fields={"resource": urn}
        )


def test_the_app_wrote_the_lines_the_workbook_reads(app_lines: dict[str, list[str]]) -> None:
    outcomes = {
        part: [re.match(r'^dialogporten\.\w+ \{"outcome":"(\w+)"', m).group(1) for m in lines]  # type: ignore[union-attr]
        for part, lines in app_lines.items()
    }
    assert outcomes == {
        "ingest": ["accepted", "parked", "rejected", "rejected", "rejected", "rejected"],
        "process": ["handled", "duplicate", "retry", "poisoned", "poisoned"],
        # The catch-up puts its events on the queues through the webhook's intake, which logs them.
        "catchup": ["accepted", "accepted", "caught_up", "failed"],
    }
    assert all(m.startswith("dialogporten.ingest ") for m in app_lines["ingest"])
    assert all(m.startswith("dialogporten.process ") for m in app_lines["process"])
    kinds = [m.split(" ", 1)[0] for m in app_lines["catchup"]]
    assert kinds == [logs.INGEST, logs.INGEST, "dialogporten.catchup", "dialogporten.catchup"]


def test_the_hand_built_process_line_has_the_real_lines_shape(app_lines: dict[str, list[str]]) -> None:
    """The hand-built lines below put their fields where processing.py does."""
    real = json.loads(app_lines["process"][0].split(" ", 1)[1])
    built = json.loads(process_line("handled").split(" ", 1)[1])
    assert list(real) == list(built)


def _all(app_lines: dict[str, list[str]]) -> list[str]:
    return [m for part in ("ingest", "process", "catchup") for m in app_lines[part]]


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        out[key[0] if len(keys) == 1 else key] = row
    return out


def test_events_by_outcome_counts_what_the_app_did(app_lines: dict[str, list[str]]) -> None:
    host = HOST_POISON_LINE.format(queue=CREATED_QUEUE + "-poison")
    rows = replay("events-by-outcome", [*_all(app_lines), host, process_line("deferred")])
    counts: dict[str, int] = {}
    for row in rows:
        assert isinstance(row["TimeGenerated"], datetime)  # the timechart's axis
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + row["events"]
    # rejected has its own charts; catch-up's failed is not an event's outcome.
    assert counts == {
        "accepted": 3,  # one by the webhook, two by the catch-up
        "parked": 1,
        "handled": 1,
        "duplicate": 1,
        "retry": 1,
        "deferred": 1,
        "poisoned": 3,
    }


def test_events_per_type_and_outcome(app_lines: dict[str, list[str]]) -> None:
    rows = _by(replay("events-per-type", _all(app_lines)), "event_type")
    assert set(rows) == {CREATED, "dialogporten.dialog.archived.v2", "(none)"}
    created = rows[CREATED]
    assert {k: created[k] for k in ("accepted", "handled", "duplicate", "retry", "poisoned", "parked")} == {
        "accepted": 3,
        "handled": 1,
        "duplicate": 1,
        "retry": 1,
        "poisoned": 1,
        "parked": 0,
    }
    assert rows["dialogporten.dialog.archived.v2"]["parked"] == 1
    assert rows["(none)"]["poisoned"] == 1  # a message that was not an event has no type
    accepted = replay("accepted-by-type", _all(app_lines))
    assert [(r["event_type"], r["events"]) for r in accepted] == [(CREATED, 3)]  # the webhook's and the catch-up's


def test_handling_time_reads_the_real_duration(app_lines: dict[str, list[str]]) -> None:
    [handled] = [m for m in app_lines["process"] if '"outcome":"handled"' in m]
    duration = json.loads(handled.split(" ", 1)[1])["duration_ms"]
    [row] = replay("handling-time", _all(app_lines))
    assert row["p50_ms"] == row["p95_ms"] == duration
    [per_type] = replay("handling-time-per-type", _all(app_lines))
    assert (per_type["event_type"], per_type["handled"], per_type["max_ms"]) == (CREATED, 1, duration)


def test_handling_time_percentiles_are_nearest_rank() -> None:
    """p50 and p95 of 1..20 ms: the 10th and 19th values. Kusto estimates them within 1 % of the rank,
    which for 20 values (0.2 of a rank) leaves exactly these."""
    messages = [process_line("handled", duration_ms=float(ms)) for ms in range(20, 0, -1)]
    messages += [process_line("duplicate", duration_ms=999.0), process_line("retry", duration_ms=999.0)]
    [row] = replay("handling-time", messages, grain=timedelta(days=1))
    assert (row["p50_ms"], row["p95_ms"]) == (10.0, 19.0)
    [per_type] = replay("handling-time-per-type", messages)
    assert (per_type["handled"], per_type["p50_ms"], per_type["p95_ms"], per_type["max_ms"]) == (20, 10.0, 19.0, 20.0)


def test_poisoned_and_parked_count_the_hosts_line_too(app_lines: dict[str, list[str]]) -> None:
    host = HOST_POISON_LINE.format(queue=CREATED_QUEUE + "-poison")
    [totals] = replay("poisoned-and-parked", [*_all(app_lines), host])
    assert totals == {"poisoned": 3, "parked": 1, "moved_by_host": 1}
    by_queue = _by(replay("poisoned-and-parked-by-queue", [*_all(app_lines), host]), "outcome", "queue")
    assert by_queue[("poisoned", CREATED_QUEUE)]["events"] == 3  # the host's line names the poison queue
    assert by_queue[("parked", catalog.UNROUTED_QUEUE)]["events"] == 1
    [empty] = replay("poisoned-and-parked", [])
    assert empty == {"poisoned": 0, "parked": 0, "moved_by_host": 0}  # zeros, not an empty chart


def test_the_poison_counts_agree_with_the_alert(app_lines: dict[str, list[str]]) -> None:
    host = HOST_POISON_LINE.format(queue=CREATED_QUEUE + "-poison")
    messages = [*_all(app_lines), host]
    alerted = [m for m in messages if _kql_alert(_alert_query(), m) is not None]
    [totals] = replay("poisoned-and-parked", messages)
    assert totals["poisoned"] + totals["parked"] == len(alerted)


def test_catch_up_runs_and_lag(app_lines: dict[str, list[str]]) -> None:
    runs = _by(replay("catchup-runs", _all(app_lines)), "resource")
    caught_up = runs[RESOURCE]
    assert caught_up["outcome"] == "caught_up"
    assert (caught_up["events_read"], caught_up["events_accepted"], caught_up["api_requests"]) == (2, 2, 2)
    assert caught_up["complete"] == "true"
    assert 30 <= caught_up["lag_seconds"] < 120  # the newest event read was 40 s old
    assert caught_up["reason"] == ""
    failed = runs["urn:altinn:resource:down"]
    assert failed["outcome"] == "failed"
    assert failed["lag_seconds"] is None
    assert 'GET /events: 502 \\"Bad Gateway\\"' in failed["reason"]  # still JSON-escaped
    [lag] = replay("catchup-lag", _all(app_lines))
    assert (lag["resource"], lag["lag_seconds"]) == (RESOURCE, caught_up["lag_seconds"])


def test_refusals_by_status_and_reason(app_lines: dict[str, list[str]]) -> None:
    rows = replay("refusals-by-reason", _all(app_lines))
    assert sorted(r["status"] for r in rows) == [400, 403, 413, 415]
    for row in rows:
        assert row["refusals"] == 1
        assert row["reason"] not in ("", "(none)")
        assert len(row["reason"]) <= 120
    by_status = replay("refusals-by-status", _all(app_lines))
    assert sorted(r["status"] for r in by_status) == ["400", "403", "413", "415"]
    # Only 4xx: a 5xx (storage down) is an outcome "failed", and a 503 rejection would not count here.
    forged = line(logs.INGEST, "rejected", status=503, reason="x")
    assert replay("refusals-by-reason", [forged]) == []


# --------------------------------------------------------------------------- cut, forged and future lines


def test_a_line_cut_by_application_insights_still_counts() -> None:
    """Its outcome is read from the head; fields past the cut read as unknown, never as garbage."""
    cut = (
        'dialogporten.process {"outcome":"handled","event_id":"' + "x" * 40_000
        + '","event_type":"dialogporten.dialog.created.v1","queue":"q-1","duration_ms":5.0}'
    )[:TRACE_MESSAGE_LIMIT]  # fmt: skip
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.split(" ", 1)[1])
    assert [(r["outcome"], r["events"]) for r in replay("events-by-outcome", [cut])] == [("handled", 1)]
    [row] = replay("events-per-type", [cut])
    assert (row["event_type"], row["handled"]) == ("(none)", 1)
    assert replay("handling-time", [cut]) == []  # no duration: not a zero in the percentiles
    parked = ('dialogporten.ingest {"outcome":"parked","event_id":"' + "x" * 40_000 + '"}')[:TRACE_MESSAGE_LIMIT]
    [by_queue] = replay("poisoned-and-parked-by-queue", [parked])
    assert (by_queue["outcome"], by_queue["queue"]) == ("parked", "unknown")


def test_fields_forged_inside_a_value_are_never_read() -> None:
    """JSON escapes the quotes of a value, so a key written into an event id does not match."""
    forged_id = '","event_type":"forged.type","duration_ms":99999,"queue":"forged-queue","status":499,"x":"'
    handled = process_line("handled", duration_ms=7.0, event_id=forged_id)
    [row] = replay("handling-time-per-type", [handled])
    assert (row["event_type"], row["max_ms"]) == (CREATED, 7.0)
    poisoned = process_line("poisoned", event_id=forged_id)
    [by_queue] = replay("poisoned-and-parked-by-queue", [poisoned])
    assert by_queue["queue"] == CREATED_QUEUE
    accepted = line(logs.INGEST, "accepted", event_id='{"outcome":"rejected","status":400}', event_type=CREATED)
    assert replay("refusals-by-reason", [accepted]) == []
    outcome_in_id = line(logs.INGEST, "accepted", event_id='"outcome":"poisoned"', event_type=CREATED)
    assert [r["outcome"] for r in replay("events-by-outcome", [outcome_in_id])] == ["accepted"]


def test_the_coming_deferred_outcome_is_charted() -> None:
    """A message put back without spending an attempt: a process line with outcome deferred."""
    deferred = process_line("deferred", reason="the dialog is not visible yet")
    assert [(r["outcome"], r["events"]) for r in replay("events-by-outcome", [deferred])] == [("deferred", 1)]
    [row] = replay("events-per-type", [deferred])
    assert (row["event_type"], row["deferred"]) == (CREATED, 1)
    assert replay("handling-time", [deferred]) == []  # only handled lines time the handlers


def test_lines_of_other_kinds_and_old_lines_are_left_out() -> None:
    others = [
        line("dialogporten.housekeeping", "purged", purged_idempotency_records=3),
        line("dialogporten.state", "conflict", event_type=CREATED),
        "Executed 'Functions.dialog_created' (Succeeded, Duration=12ms)",
        "dialogporten.process is not a structured line",
    ]
    for name in queries():
        rows = replay(name, others)
        if name == "poisoned-and-parked":
            assert rows == [{"poisoned": 0, "parked": 0, "moved_by_host": 0}]
        else:
            assert rows == [], (name, rows)
    old = [{"TimeGenerated": NOW - timedelta(days=2), "Message": process_line("handled")}]
    query = queries()["events-by-outcome"]
    expanded = kql.expand_parameters(query, time_range=timedelta(days=1), grain=timedelta(hours=1))
    assert kql.run(expanded, old, now=NOW) == []  # outside {TimeRange}


# --------------------------------------------------------------------------- the replay itself


def test_the_replay_agrees_with_the_alerts_own_replay() -> None:
    """tests/infra/kql.py runs the alert's query too, and finds what test_infra_templates' replay finds."""
    messages = [
        process_line("poisoned"),
        line(logs.INGEST, "parked", queue=catalog.UNROUTED_QUEUE, event_type="x.y"),
        process_line("handled"),
        HOST_POISON_LINE.format(queue=CREATED_QUEUE + "-poison"),
        'dialogporten.process {"outcome":"poisoned","event_id":"' + "x" * 40_000 + '"}',
        line(logs.INGEST, "accepted", event_id='{"outcome":"poisoned","queue":"forged-queue"}'),
    ]
    rows = [
        {"TimeGenerated": NOW, kql.INGESTION_TIME: NOW - timedelta(minutes=1), "Message": m[:TRACE_MESSAGE_LIMIT]}
        for m in messages
    ]
    found = [r["queue"] for r in kql.run(_alert_query(), rows, now=NOW)]
    assert found == [q for q in (_kql_alert(_alert_query(), m) for m in messages) if q is not None]
    assert found == [CREATED_QUEUE, catalog.UNROUTED_QUEUE, CREATED_QUEUE + "-poison", "unknown"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('AppTraces | extend x = extract(@"a(b)", 1, Message) | project x', [{"x": ""}]),  # no match: ""
        ("AppTraces | extend x = toint(extract(@'(\\d{1,3})', 1, Message)) | project x", [{"x": None}]),
        ('AppTraces | extend x = coalesce(extract(@"(q)", 1, Message), "dflt") | project x', [{"x": "dflt"}]),
        ("AppTraces | extend x = substring(Message, 2, 100) | project x", [{"x": "llo"}]),
        ("AppTraces | where toint(extract(@'(\\d)', 1, Message)) > 1", []),  # null > 1 is not true
        ("AppTraces | summarize n = count()", [{"n": 1}]),
        ("AppTraces | where Message == 'nothing' | summarize n = count(), m = max(Message)", [{"n": 0, "m": None}]),
    ],
)
def test_the_replays_semantics(query: str, expected: list[dict[str, Any]]) -> None:
    assert kql.run(query, [{"TimeGenerated": NOW, "Message": "hello"}], now=NOW) == expected


def test_the_replay_orders_descending_by_default_nulls_last() -> None:
    rows = [{"TimeGenerated": NOW, "Message": m} for m in ("2", "", "10")]
    result = kql.run("AppTraces | extend n = toint(Message) | order by n | project n", rows, now=NOW)
    assert result == [{"n": 10}, {"n": 2}, {"n": None}]
    result = kql.run("AppTraces | extend n = toint(Message) | order by n asc | take 1 | project n", rows, now=NOW)
    assert result == [{"n": 2}]


@pytest.mark.parametrize(
    "query",
    [
        "AppTraces | extend x = parse_json(Message)",  # not replayed: the workbook must not use it
        "AppTraces | where Message has 'x'",
        "AppTraces | extend x = extract(@'(?=a)(a)', 1, Message)",  # lookahead: RE2 has none
        "AppTraces | extend x = extract(@'(a)\\1', 1, Message)",  # a back-reference: RE2 has none
        "AppTraces | summarize count()",  # an unnamed aggregate
        "AppTraces | summarize n = dcount(Message)",
        "AppTraces | join (AppTraces) on Message",
        "AppRequests | take 1",
        "AppTraces | where TimeGenerated {Other}",
    ],
)
def test_the_replay_refuses_what_it_does_not_implement(query: str) -> None:
    def replayed() -> None:
        text = kql.expand_parameters(query, time_range=timedelta(days=1), grain=timedelta(hours=1))
        kql.run(text, [{"TimeGenerated": NOW, "Message": "a"}], now=NOW)

    with pytest.raises(kql.KqlUnsupported):
        replayed()
